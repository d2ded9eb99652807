//! The TOML files an operator writes: the `switchyard run` file
//! ([`RunConfig::from_toml_str`]) and the application file of
//! switchyard-config ([`AppConfig::from_toml_str`]), parsed and validated.
//! What is done with a parsed file runs too: the librdkafka client
//! properties it maps to, its `Debug` form (which redacts secrets), and
//! [`redact_url`]. Every error is formatted, as the binary prints it.
//!
//! The input must be UTF-8 (a file that is not is refused before parsing).
//! Inputs holding `${file:` are skipped: such a reference reads the named
//! file (a secret), and a fuzzer that finds `${file:/dev/zero}` would only
//! exhaust memory. `${env:NAME}` references are resolved.

#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard_config::{redact_url, AppConfig, RunConfig};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = redact_url(text);
    if text.contains("${file:") {
        return;
    }
    match RunConfig::from_toml_str(text) {
        Ok(run) => {
            let _ = format!("{run:?}");
            let _ = run.consumer.to_client_config().map_err(|e| e.to_string());
            let _ = run.kafka.client_config();
            let _ = run.validate().map_err(|e| e.to_string());
            for l in &run.listeners {
                if let Some(d) = &l.delivery {
                    let _ = d.validate(&l.name).map_err(|e| e.to_string());
                }
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    match AppConfig::from_toml_str(text) {
        Ok(app) => {
            let _ = format!("{app:?}");
            let _ = app.consumer.to_client_config().map_err(|e| e.to_string());
            for w in app.validate().into_iter().flatten() {
                let _ = w.to_string();
            }
            for l in &app.listeners {
                let _ = app.listener(&l.name);
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
