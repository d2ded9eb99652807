//! The bodies the admin API accepts, and the watched desired-state file.
//!
//! - `POST /bindings/{listener}`: the JSON body is read as the handler
//!   reads it (crates/control/src/http.rs: any JSON value, then the
//!   `Body` fields with unknown fields refused), turned into a
//!   [`BindingCommand`] through [`Action::from_binding_state`], validated
//!   and applied at several clocks to an empty state and to the state the
//!   file below gives. The handler's body type is private to the crate, so
//!   it is mirrored here field for field; everything after it is the
//!   crate's public code.
//! - `POST /actuator/bindings/{name}`: the `{"state": ...}` body
//!   (crates/control/src/actuator.rs, private as well, mirrored), then
//!   [`Action::from_binding_state`].
//! - the watched desired-state file: [`file_source::parse`] of the input as
//!   `f.json` and as `f.toml`; a pause set that parses becomes a state as
//!   the file source makes it, and the targets an agent holds from it are
//!   computed.
//!
//! Every error is formatted, as the API answers it.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use serde_json::Value;
use switchyard_control::command::{Action, BindingCommand};
use switchyard_control::file_source;
use switchyard_control::model::{DesiredState, Pause};
use switchyard_control::targets::{self, Overrides};

/// The body of `POST /bindings/{listener}` (`Body` in http.rs).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Body {
    state: String,
    topic: Option<String>,
    partition: Option<i32>,
    reason: Option<String>,
    expires_in_ms: Option<u64>,
    version: Option<u64>,
}

/// The body of `POST /actuator/bindings/{name}` (`ChangeState` in
/// actuator.rs).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeState {
    state: String,
}

const NOWS: [i64; 5] = [i64::MIN, -1, 0, 1_763_740_000_000, i64::MAX];

fn file_state(pauses: Vec<Pause>) -> DesiredState {
    let mut s = DesiredState::new("a").next(Some("file:f.json"), 1_763_740_000_000);
    s.pauses = pauses;
    s
}

fn holdings(state: &DesiredState) {
    let _ = state.encode();
    for p in &state.pauses {
        for now in NOWS {
            let _ = targets::wanted_in_slot(Some(state), &Overrides::new(), &p.listener, "", now);
            let _ = targets::next_expiry(Some(state), now);
        }
    }
}

fn command(value: &Value, from_file: Option<&DesiredState>) {
    let body: Body = match serde_json::from_value(value.clone()) {
        Ok(b) => b,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let action = match Action::from_binding_state(&body.state) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    for listener in ["l", "orders-in"] {
        let cmd = BindingCommand {
            listener: listener.into(),
            action,
            topic: body.topic.clone(),
            partition: body.partition,
            reason: body.reason.clone(),
            issuer: Some("http:fuzz".into()),
            expires_in_ms: body.expires_in_ms,
        };
        let _ = cmd.target();
        if let Err(e) = cmd.validate() {
            let _ = e.to_string();
        }
        for now in NOWS {
            let mut state = DesiredState::new("a");
            match cmd.apply(&mut state, now) {
                Ok(()) => holdings(&state),
                Err(e) => {
                    let _ = e.to_string();
                }
            }
            if let Some(base) = from_file {
                let mut state = base.clone();
                if cmd.apply(&mut state, now).is_ok() {
                    holdings(&state);
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let from_file = std::str::from_utf8(data).ok().and_then(|text| {
        let json = file_source::parse(Path::new("f.json"), text);
        let toml = file_source::parse(Path::new("f.toml"), text);
        for r in [&json, &toml] {
            if let Err(e) = r {
                let _ = e.to_string();
            }
        }
        json.or(toml).ok().map(file_state)
    });
    if let Some(state) = &from_file {
        holdings(state);
    }

    let value: Value = match serde_json::from_slice(data) {
        Ok(v) => v,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    command(&value, from_file.as_ref());
    if let Ok(change) = serde_json::from_value::<ChangeState>(value) {
        let _ = Action::from_binding_state(&change.state).map_err(|e| e.to_string());
    }
});
