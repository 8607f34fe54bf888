//! The layering of docs/ARCHITECTURE.md, checked against the code: every
//! top-level module of harness/src is on a layer of that table, no module
//! uses one of a higher layer, and modules of one layer do not use each other
//! in a circle.
//!
//! The table is read from the document itself, so the two cannot drift
//! apart. Uses are the `crate::…` and `super::…` paths of the sources (a
//! `use crate::{a, b::c}` group counts each member), outside comments and
//! outside `#[cfg(test)]` modules, whose test-only uses are not layering.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Module name → layer, from the "Layers of the harness" table.
fn layers_from_the_document() -> BTreeMap<String, u32> {
    let doc = std::fs::read_to_string(repo().join("docs/ARCHITECTURE.md")).expect("docs/ARCHITECTURE.md");
    let section = doc.split("## Layers of the harness").nth(1).expect("a 'Layers of the harness' section");
    let mut layers = BTreeMap::new();
    for line in section.lines().take_while(|l| !l.starts_with("## ")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // | layer | modules | what |  →  ["", layer, modules, what, ""]
        let Some(layer) = cells.get(1).and_then(|c| c.parse::<u32>().ok()) else { continue };
        for module in cells[2].split(',') {
            let name = module.trim().trim_matches('`');
            assert!(!name.is_empty(), "an empty module name on layer {layer}");
            assert!(layers.insert(name.to_string(), layer).is_none(), "{name} is on two layers");
        }
    }
    assert!(layers.len() >= 10, "the layer table was not found or is incomplete: {layers:?}");
    layers
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a source file: `container/net/link.rs` → [container, net, link].
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

/// The source without comments, string literals' contents and
/// `#[cfg(test)]` items.
fn code_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if text[i..].starts_with("//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if text[i..].starts_with("/*") {
            let end = text[i + 2..].find("*/").map_or(b.len(), |e| i + 2 + e + 2);
            i = end;
        } else if b[i] == b'"' {
            // Skip a string literal (escapes included); raw strings in this
            // code base hold no `crate::`.
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if text[i..].starts_with("#[cfg(test)]") {
            // Drop the item that follows: up to the end of its braces or its `;`.
            let rest = &text[i..];
            let (mut depth, mut j) = (0usize, "#[cfg(test)]".len());
            let rb = rest.as_bytes();
            while j < rb.len() {
                match rb[j] {
                    b'{' => depth += 1,
                    b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            j += 1;
                            break;
                        }
                    }
                    b';' if depth == 0 => {
                        j += 1;
                        break;
                    }
                    _ => {}
                }
                j += 1;
            }
            i += j;
        } else {
            let ch = text[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// Every path that starts with `crate` or `super` in `code`, with `{…}`
/// groups expanded: `crate::{a, b::{c, d}}` → [crate::a, crate::b::c, crate::b::d].
fn paths(code: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let b = code.as_bytes();
    for start in 0..b.len() {
        let at_word = start == 0 || !(b[start - 1].is_ascii_alphanumeric() || b[start - 1] == b'_' || b[start - 1] == b':');
        if at_word && (code[start..].starts_with("crate::") || code[start..].starts_with("super::")) {
            expand(&code[start..], Vec::new(), &mut found);
        }
    }
    found
}

/// Reads one path (with groups) at the start of `s`, prefixed by `prefix`.
fn expand(s: &str, prefix: Vec<String>, out: &mut Vec<Vec<String>>) -> usize {
    let mut path = prefix;
    let mut i = 0;
    let b = s.as_bytes();
    loop {
        let start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            i += 1;
        }
        if i > start {
            path.push(s[start..i].to_string());
        }
        if s[i..].starts_with("::{") {
            i += 3;
            loop {
                while i < b.len() && (b[i] == b' ' || b[i] == b'\n' || b[i] == b',') {
                    i += 1;
                }
                if i >= b.len() || b[i] == b'}' {
                    return i + 1;
                }
                i += expand(&s[i..], path.clone(), out);
                // Skip an `as name` or anything else up to the member's end.
                while i < b.len() && b[i] != b',' && b[i] != b'}' {
                    i += 1;
                }
            }
        } else if s[i..].starts_with("::") && s[i + 2..].starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
            i += 2;
        } else {
            out.push(path);
            return i;
        }
    }
}

/// Resolves `crate::x::…` and `super::…` written in module `here` to the
/// top-level module it names (`None`: the crate root itself).
fn top_level(here: &[String], path: &[String]) -> Option<String> {
    let mut base: Vec<String> = Vec::new();
    let mut rest = path;
    if rest.first().is_some_and(|p| p == "crate") {
        rest = &rest[1..];
    } else {
        base = here.to_vec();
        while rest.first().is_some_and(|p| p == "super") {
            base.pop();
            rest = &rest[1..];
        }
    }
    base.extend(rest.iter().cloned());
    base.into_iter().next().filter(|m| !m.is_empty() && m != "self")
}

/// (from, to) pairs of distinct top-level modules.
fn uses() -> BTreeSet<(String, String)> {
    let src = repo().join("harness/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut edges = BTreeSet::new();
    for file in files {
        let here = module_of(&src, &file);
        let Some(from) = here.first().cloned() else { continue };
        let code = code_only(&std::fs::read_to_string(&file).unwrap());
        for p in paths(&code) {
            if let Some(to) = top_level(&here, &p) {
                if to != from {
                    edges.insert((from.clone(), to));
                }
            }
        }
    }
    edges
}

#[test]
fn every_module_is_on_a_layer_of_the_document() {
    let layers = layers_from_the_document();
    let src = repo().join("harness/src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let modules: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod ").or_else(|| l.trim().strip_prefix("mod ")))
        .map(|m| m.trim_end_matches(';'))
        .collect();
    assert!(!modules.is_empty());
    for m in &modules {
        assert!(layers.contains_key(*m), "harness/src/lib.rs declares `{m}`, which docs/ARCHITECTURE.md's layer table does not place");
    }
    for m in layers.keys() {
        assert!(modules.contains(&m.as_str()), "docs/ARCHITECTURE.md places `{m}`, which harness/src/lib.rs does not declare");
    }
}

#[test]
fn no_module_uses_a_higher_layer() {
    let layers = layers_from_the_document();
    let edges = uses();
    assert!(edges.iter().any(|(f, t)| f == "runner" && t == "env"), "the scanner found no runner -> env use: it is broken");
    let upward: Vec<String> = edges
        .iter()
        .filter(|(f, t)| layers.get(f).zip(layers.get(t)).is_some_and(|(lf, lt)| lt > lf))
        .map(|(f, t)| format!("{f} (layer {}) uses {t} (layer {})", layers[f], layers[t]))
        .collect();
    assert!(upward.is_empty(), "uses against docs/ARCHITECTURE.md's layering:\n{}", upward.join("\n"));
}

#[test]
fn modules_of_one_layer_do_not_use_each_other_in_a_circle() {
    let layers = layers_from_the_document();
    let edges: Vec<(String, String)> = uses().into_iter().filter(|(f, t)| layers.contains_key(f) && layers.get(f) == layers.get(t)).collect();
    // Depth-first search for a back edge.
    fn visit(n: &str, edges: &[(String, String)], path: &mut Vec<String>, done: &mut BTreeSet<String>) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == n) {
            let mut circle = path[at..].to_vec();
            circle.push(n.to_string());
            return Some(circle);
        }
        if done.contains(n) {
            return None;
        }
        path.push(n.to_string());
        for (_, t) in edges.iter().filter(|(f, _)| f == n) {
            if let Some(c) = visit(t, edges, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for (f, _) in &edges {
        if let Some(circle) = visit(f, &edges, &mut Vec::new(), &mut done) {
            panic!("a circle within one layer: {}", circle.join(" -> "));
        }
    }
}

#[test]
fn the_scanner_reads_groups_super_and_skips_comments_and_tests() {
    let code = code_only(
        "use crate::{a::X, b::{c, d as e}};\n// crate::commented\nlet s = \"crate::quoted\";\nuse super::f;\n#[cfg(test)]\nmod tests { use crate::tested; }\nfn g() { crate::h::i(); }\n",
    );
    let here = vec!["m".to_string(), "n".to_string()];
    let tops: BTreeSet<String> = paths(&code).iter().filter_map(|p| top_level(&here, p)).collect();
    let want: BTreeSet<String> = ["a", "b", "m", "h"].into_iter().map(String::from).collect();
    assert_eq!(tops, want);
}
