//! Unit tests, one file per module under test. All pure: no broker needed.

mod consumer;
mod file;
mod group_protocol;
mod listener;
mod properties;
mod run;
mod validate;

use crate::ConfigError;

/// Asserts that the error's message mentions every one of `parts`.
#[track_caller]
fn assert_mentions(err: &ConfigError, parts: &[&str]) {
    let message = err.to_string();
    for part in parts {
        assert!(
            message.contains(part),
            "expected `{part}` in error message: {message}"
        );
    }
}
