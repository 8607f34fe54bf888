//! Option values: clap value parsers built from the library's own types
//! (the type's `FromStr` decides and its error is the message; the choices
//! `--help` shows come from the type's own list), and the one-line report of
//! a rejected value.

use std::error::Error;
use std::ffi::OsStr;
use std::marker::PhantomData;
use std::str::FromStr;

use clap::builder::{PossibleValue, TypedValueParser};
use clap::error::{ContextKind, ErrorKind};
use isobench_harness::container::CgroupError;

/// A value parsed by `T`'s `FromStr`, whose choices `--help` lists: for a
/// list type (`native,vm`), the words a list is made of.
#[derive(Clone)]
pub struct Choice<T> {
    choices: Vec<PossibleValue>,
    parsed: PhantomData<fn() -> T>,
}

/// `T` parsed by its `FromStr`, `--help` listing `words`.
pub fn choice<T>(words: impl IntoIterator<Item = &'static str>) -> Choice<T> {
    Choice { choices: words.into_iter().map(PossibleValue::new).collect(), parsed: PhantomData }
}

/// `T` parsed by its `FromStr`, `--help` listing `words`, each with what it
/// stands for.
pub fn described_choice<T>(words: impl IntoIterator<Item = (&'static str, String)>) -> Choice<T> {
    Choice { choices: words.into_iter().map(|(w, help)| PossibleValue::new(w).help(help)).collect(), parsed: PhantomData }
}

impl<T> TypedValueParser for Choice<T>
where
    T: FromStr + Clone + Send + Sync + 'static,
    T::Err: Into<Box<dyn Error + Send + Sync + 'static>>,
{
    type Value = T;

    fn parse_ref(&self, cmd: &clap::Command, arg: Option<&clap::Arg>, value: &OsStr) -> Result<T, clap::Error> {
        (T::from_str).parse_ref(cmd, arg, value)
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(self.choices.iter().cloned()))
    }
}

/// A cgroup limit (`--cpus`, `--memory`, `--pids`) parsed by one of
/// `Limits`'s parse functions; the error says why (clap names the option).
pub fn limit<T: 'static>(parse: fn(&str) -> Result<T, CgroupError>) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static {
    move |s| {
        parse(s).map_err(|e| match e {
            CgroupError::InvalidLimit { why, .. } => why.to_string(),
            other => other.to_string(),
        })
    }
}

/// Parses the command line. A rejected value is one line on stderr
/// (`error: invalid value 'kvmx' for '--env <LIST>': unknown environment
/// "kvmx"; choose from ...`) and clap's exit status, and so are an
/// unexpected argument (with the note that `--json` takes no value, for the
/// old `startup --json FILE`), a value given to a flag and two arguments
/// that conflict; help, version and the other errors (a missing argument)
/// are clap's own.
pub fn parse_or_exit<P: clap::Parser>() -> P {
    P::try_parse().unwrap_or_else(|e| {
        if let Some(line) = one_line(&e).or_else(|| unexpected(&e, &std::env::args().collect::<Vec<_>>())) {
            eprintln!("error: {line}");
            std::process::exit(e.exit_code());
        }
        e.exit()
    })
}

/// An unexpected argument as one line, with clap's suggestion (after
/// `--json`, `args` being the command line: that it takes no value), a
/// value given to a flag, or two arguments that exclude each other.
fn unexpected(e: &clap::Error, args: &[String]) -> Option<String> {
    if e.kind() == ErrorKind::ArgumentConflict {
        let (arg, prior) = (e.get(ContextKind::InvalidArg)?, e.get(ContextKind::PriorArg)?);
        return Some(format!("the argument '{arg}' cannot be used with '{prior}'"));
    }
    if e.kind() == ErrorKind::TooManyValues {
        let (arg, value) = (e.get(ContextKind::InvalidArg)?, e.get(ContextKind::InvalidValue)?);
        return Some(format!("unexpected value '{value}' for '{arg}': it takes none"));
    }
    if e.kind() != ErrorKind::UnknownArgument {
        return None;
    }
    let arg = e.get(ContextKind::InvalidArg)?.to_string();
    let after_json = args.windows(2).any(|w| w[0] == "--json" && w[1] == arg);
    let tip = match (after_json, e.get(ContextKind::SuggestedArg)) {
        (true, _) => {
            "; --json takes no value: it prints JSON on stdout (`isobench startup --samples FILE` writes every sample to a file)".to_string()
        }
        (false, Some(s)) => format!("; did you mean '{s}'?"),
        (false, None) => String::new(),
    };
    Some(format!("unexpected argument '{arg}'{tip}"))
}

/// A rejected value's error as one line, from clap's context: the value,
/// the option and the parser's reason (or the possible values).
fn one_line(e: &clap::Error) -> Option<String> {
    if !matches!(e.kind(), ErrorKind::ValueValidation | ErrorKind::InvalidValue) {
        return None;
    }
    let (arg, value) = (e.get(ContextKind::InvalidArg)?, e.get(ContextKind::InvalidValue)?);
    let why = match (e.source(), e.get(ContextKind::ValidValue)) {
        (Some(reason), _) => format!(": {reason}"),
        (None, Some(valid)) => format!("; possible values: {valid}"),
        (None, None) => String::new(),
    };
    Some(format!("invalid value '{value}' for '{arg}'{why}"))
}

/// `--image-packages`: a comma-separated list of Debian package names,
/// returned sorted, each once, comma-joined (`distro::parse_packages`).
pub fn image_packages(s: &str) -> Result<String, String> {
    match isobench_harness::container::rootfs::distro::parse_packages(s) {
        Ok(list) if list.is_empty() => Err("no package named".into()),
        Ok(list) => Ok(list.join(",")),
        Err(e) => Err(e.to_string().trim_start_matches("--image-packages: ").to_string()),
    }
}
