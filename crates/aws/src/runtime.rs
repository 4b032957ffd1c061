//! What both binaries need from their process: configuration from the environment (through a
//! small trait, so tests pass a map) and JSON logs.
//!
//! Configuration is declared once per binary as a clap `Parser` whose every argument names its
//! variable (`#[arg(long, env = "RELAY_...")]`, with its default and type); [`parse_env`] reads
//! exactly those variables from an [`Env`] and reports a bad one by its variable name.

use std::collections::HashMap;

pub trait Env {
    /// The variable's value; unset and blank are the same.
    fn get(&self, key: &str) -> Option<String>;
}

pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn get(&self, key: &str) -> Option<String> {
        std::env::var(key).ok().filter(|v| !v.trim().is_empty())
    }
}

impl Env for HashMap<String, String> {
    fn get(&self, key: &str) -> Option<String> {
        HashMap::get(self, key)
            .cloned()
            .filter(|v| !v.trim().is_empty())
    }
}

/// Parses `P` from `env`: each argument that declares `env = "RELAY_..."` takes that variable's
/// value (trimmed; unset and blank are the same), clap supplies defaults and types. Only `env`
/// is read (not the process environment behind it), so tests pass a map. Errors name the
/// variable: `RELAY_X is required`, `RELAY_X="v" is not valid: ...`.
pub fn parse_env<P: clap::Parser>(env: &dyn Env) -> Result<P, crate::Error> {
    let cmd = P::command();
    let mut names = HashMap::new();
    let mut argv = vec![cmd.get_name().to_owned()];
    for arg in cmd.get_arguments() {
        let (Some(name), Some(long)) = (arg.get_env().and_then(|n| n.to_str()), arg.get_long())
        else {
            continue;
        };
        names.insert(long.to_owned(), name.to_owned());
        if let Some(v) = env.get(name) {
            argv.push(format!("--{long}={}", v.trim()));
        }
    }
    let cmd = cmd
        .mut_args(|a| a.env(None::<&'static str>))
        .disable_help_flag(true)
        .disable_version_flag(true);
    cmd.try_get_matches_from(argv)
        .and_then(|m| P::from_arg_matches(&m))
        .map_err(|e| config_error(&e, &names))
}

/// A clap error as a configuration error naming the variable (`names`: long flag → variable).
fn config_error(e: &clap::Error, names: &HashMap<String, String>) -> crate::Error {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let context = |k| match e.get(k) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        Some(ContextValue::Strings(v)) => v.first().cloned(),
        _ => None,
    };
    let name = context(ContextKind::InvalidArg)
        .and_then(|a| {
            let long = a.strip_prefix("--")?.split([' ', '=']).next()?.to_owned();
            names.get(&long).cloned()
        })
        .unwrap_or_else(|| "a RELAY_ variable".to_owned());
    let text = match (e.kind(), context(ContextKind::InvalidValue)) {
        (ErrorKind::MissingRequiredArgument, _) => format!("{name} is required"),
        (_, Some(value)) => {
            let why = std::error::Error::source(e)
                .map(|s| format!(": {s}"))
                .or_else(|| {
                    context(ContextKind::ValidValue).map(|_| match e.get(ContextKind::ValidValue) {
                        Some(ContextValue::Strings(v)) => format!(" (one of {})", v.join(", ")),
                        _ => String::new(),
                    })
                })
                .unwrap_or_default();
            format!("{name}={value:?} is not valid{why}")
        }
        (kind, None) => format!("{name}: {kind}"),
    };
    crate::Error::Config(text)
}

/// `RELAY_USERNAME_ATTRIBUTES`, the pool's `UsernameAttributes` (comma-separated; empty for a
/// username pool): parsed once here for every binary. Only `email` and `phone_number` exist.
pub fn username_attributes(
    value: Option<&str>,
) -> Result<Vec<replication::SignInAlias>, crate::Error> {
    replication::SignInAlias::parse_list(value.unwrap_or_default())
        .map_err(|e| crate::Error::Config(format!("RELAY_USERNAME_ATTRIBUTES: {e}")))
}

/// JSON logs to stderr, one line per event, `RUST_LOG` filter (default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Whether this process runs under the Lambda runtime (`AWS_LAMBDA_RUNTIME_API` is set).
pub fn lambda_mode() -> bool {
    std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some()
}

/// The value, or the binary's message on stderr and exit `code` (2: configuration, 1: runtime).
pub fn or_exit<T, E: std::fmt::Display>(bin: &str, code: i32, r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| {
        eprintln!("{bin}: {e}");
        std::process::exit(code)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, clap::Parser)]
    #[command(name = "t")]
    struct Args {
        #[arg(long, env = "RELAY_NAME")]
        name: String,
        #[arg(long, env = "RELAY_COUNT", default_value_t = 7)]
        count: u32,
        #[arg(long, env = "RELAY_MODE", default_value = "allow")]
        mode: Mode,
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
    enum Mode {
        Allow,
        Refuse,
    }

    fn vars(list: &[(&str, &str)]) -> HashMap<String, String> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn parse_env_reads_declared_variables_with_defaults() {
        let a: Args = parse_env(&vars(&[("RELAY_NAME", " x "), ("RELAY_COUNT", "  ")])).unwrap();
        assert_eq!((a.name.as_str(), a.count, a.mode), ("x", 7, Mode::Allow));
        let a: Args = parse_env(&vars(&[("RELAY_NAME", "x"), ("RELAY_MODE", "refuse")])).unwrap();
        assert_eq!(a.mode, Mode::Refuse);
    }

    #[test]
    fn parse_env_errors_name_the_variable() {
        let e = parse_env::<Args>(&vars(&[])).unwrap_err().to_string();
        assert_eq!(e, "RELAY_NAME is required");
        let e = parse_env::<Args>(&vars(&[("RELAY_NAME", "x"), ("RELAY_COUNT", "lots")]))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("RELAY_COUNT=\"lots\" is not valid"), "{e}");
        let e = parse_env::<Args>(&vars(&[("RELAY_NAME", "x"), ("RELAY_MODE", "maybe")]))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("RELAY_MODE=\"maybe\" is not valid"), "{e}");
    }

    #[test]
    fn username_attributes_are_split_trimmed_and_checked() {
        use replication::SignInAlias::{Email, PhoneNumber};
        assert_eq!(
            username_attributes(Some(" email , phone_number,")),
            Ok(vec![Email, PhoneNumber])
        );
        assert_eq!(username_attributes(Some("  ")), Ok(vec![]));
        assert_eq!(username_attributes(None), Ok(vec![]));
        let err = username_attributes(Some("email,nickname"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("RELAY_USERNAME_ATTRIBUTES") && err.contains("nickname"));
    }
}
