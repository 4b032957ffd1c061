//! What both binaries need from their process: configuration from the environment (through a
//! small trait, so tests pass a map) and JSON logs.

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

/// `RELAY_USERNAME_ATTRIBUTES`, the pool's `UsernameAttributes` (comma-separated; empty for a
/// username pool): parsed once here for every binary. Only `email` and `phone_number` exist.
pub fn username_attributes(env: &dyn Env) -> Result<Vec<String>, String> {
    let list: Vec<String> = env
        .get("RELAY_USERNAME_ATTRIBUTES")
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    match list.iter().find(|a| *a != "email" && *a != "phone_number") {
        Some(bad) => Err(format!(
            "RELAY_USERNAME_ATTRIBUTES: {bad:?} is not email or phone_number"
        )),
        None => Ok(list),
    }
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
pub fn or_exit<T>(bin: &str, code: i32, r: Result<T, String>) -> T {
    r.unwrap_or_else(|e| {
        eprintln!("{bin}: {e}");
        std::process::exit(code)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(v: &str) -> HashMap<String, String> {
        [("RELAY_USERNAME_ATTRIBUTES".to_owned(), v.to_owned())].into()
    }

    #[test]
    fn username_attributes_are_split_trimmed_and_checked() {
        assert_eq!(
            username_attributes(&env(" email , phone_number,")),
            Ok(vec!["email".to_owned(), "phone_number".to_owned()])
        );
        assert_eq!(username_attributes(&env("  ")), Ok(vec![]));
        let err = username_attributes(&env("email,nickname")).unwrap_err();
        assert!(err.starts_with("RELAY_USERNAME_ATTRIBUTES") && err.contains("nickname"));
    }
}
