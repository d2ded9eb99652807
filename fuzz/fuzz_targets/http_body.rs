//! The bodies the admin API accepts, and the watched desired-state file.
//!
//! - `POST /bindings/{listener}`: the body read as the handler reads it
//!   ([`BindingChange::parse`]), its command ([`BindingChange::command`],
//!   validated) applied at several clocks to an empty state and to the
//!   state the file below gives.
//! - `POST /actuator/bindings/{name}`: [`StateChange::parse`] and its
//!   action.
//! - the watched desired-state file: [`file_source::parse`] of the input as
//!   `f.json` and as `f.toml`; a pause set that parses becomes a state as
//!   the file source makes it, and the targets an agent holds from it are
//!   computed.
//!
//! Every error is formatted, as the API answers it.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use switchyard_control::file_source;
use switchyard_control::model::{DesiredState, Pause};
use switchyard_control::request::{BindingChange, StateChange};
use switchyard_control::targets::{self, Overrides};

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

fn command(data: &[u8], from_file: Option<&DesiredState>) {
    let body = match BindingChange::parse(data) {
        Ok(b) => b,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    for listener in ["l", "orders-in"] {
        let cmd = match body.command(listener, Some("http:fuzz".into())) {
            Ok(c) => c,
            Err(e) => {
                let _ = e.to_string();
                continue;
            }
        };
        let _ = cmd.target();
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

    command(data, from_file.as_ref());
    match StateChange::parse(data) {
        Ok(change) => {
            let _ = change.action().map_err(|e| e.to_string());
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
