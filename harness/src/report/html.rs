//! report.html: report.md rendered to one self-contained HTML file (the SVG
//! charts inlined, a small stylesheet, no external assets), so it survives
//! being mailed or attached to a design review.

use std::path::Path;

use pulldown_cmark::{html, Options, Parser};

/// Cells take the alignment their Markdown column gives (`---:` numbers to
/// the right, `---` text to the left): pulldown-cmark writes it on each cell.
const STYLE: &str = "body{font-family:sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}\
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}th,td{border:1px solid #ccc;padding:0.25em 0.6em}\
th{background:#f3f3f3}code{background:#f5f5f5;padding:0 0.2em}\
figure{margin:1em 0}svg{max-width:100%;height:auto}";

/// Renders `markdown` (whose images are `plots/*.svg` relative to `dir`) to
/// HTML with every SVG inlined; an image that cannot be read stays a link.
pub fn render(markdown: &str, dir: &Path) -> String {
    let mut body = String::new();
    html::push_html(&mut body, Parser::new_ext(markdown, Options::ENABLE_TABLES));
    // pulldown-cmark writes <img src="plots/x.svg" alt="x" />: inline the file.
    let mut out = String::with_capacity(body.len());
    let mut rest = body.as_str();
    while let Some(start) = rest.find("<img src=\"") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 10..];
        let Some(end_src) = after.find('"') else { break };
        let src = &after[..end_src];
        let Some(end_tag) = after.find("/>").map(|i| i + 2).or_else(|| after.find('>').map(|i| i + 1)) else { break };
        match std::fs::read_to_string(dir.join(src)) {
            Ok(svg) if src.ends_with(".svg") && !src.contains("..") => {
                out.push_str("<figure>");
                // Drop any XML prolog: only the <svg> element belongs in HTML.
                out.push_str(&svg[svg.find("<svg").unwrap_or(0)..]);
                out.push_str("</figure>");
            }
            _ => out.push_str(&rest[start..start + 10 + end_tag]),
        }
        rest = &after[end_tag..];
    }
    out.push_str(rest);
    format!("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>isobench report</title><style>{STYLE}</style></head>\n<body>\n{out}</body></html>\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_render_and_svgs_are_inlined() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("plots")).unwrap();
        std::fs::write(d.path().join("plots/m.svg"), "<svg width=\"10\" height=\"10\"><text>native</text></svg>").unwrap();
        let md = "# t\n\n| a | b |\n|---|---:|\n| x | 1 |\n\n![m](plots/m.svg)\n\n![gone](plots/nope.svg)\n";
        let html = render(md, d.path());
        assert!(html.contains("<table>") && html.contains("<td>x</td>"), "{html}");
        // Text keeps to the left, numbers to the right, as the Markdown says.
        assert!(html.contains("<td style=\"text-align: right\">1</td>"), "{html}");
        assert!(!STYLE.contains("text-align"), "no blanket alignment overrides the columns': {STYLE}");
        assert!(html.contains("<figure><svg width=\"10\""), "{html}");
        assert!(!html.contains("src=\"plots/m.svg\""), "inlined, not linked: {html}");
        assert!(html.contains("src=\"plots/nope.svg\""), "a missing chart stays a link");
        assert!(!html.contains("http://") && !html.contains("https://"), "no external assets");
    }
}
