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
        HashMap::get(self, key).cloned().filter(|v| !v.trim().is_empty())
    }
}

/// JSON logs to stderr, one line per event, `RUST_LOG` filter (default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().json().with_current_span(true).with_span_list(false).with_env_filter(filter).with_writer(std::io::stderr).try_init();
}
