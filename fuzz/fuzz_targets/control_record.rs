//! A record of the control topic: the desired-state document of one
//! application, keyed by the application's name.
//!
//! The whole input is decoded as a document ([`DesiredState::decode`]); then
//! it is split into a key and a payload for [`decode_record`] and the
//! [`Reducer`], the way a reader of the control topic sees a record. What an
//! agent computes from a decoded state (the targets to hold, the start
//! floors, the next expiry) and what a writer does on top of it (the next
//! version, encoded) runs on every state that decodes.
//!
//! Input layout for the record: byte 0 holds flags (bit 0: no key, bit 1:
//! no payload, a tombstone) and byte 1 the key's length (at most what is
//! left); the key follows, the rest is the payload.

#![no_main]

use std::collections::BTreeSet;

use libfuzzer_sys::fuzz_target;
use switchyard_control::log::{decode_record, AppState, Reducer};
use switchyard_control::model::DesiredState;
use switchyard_control::targets::{self, Override, Overrides};
use switchyard_runtime::PauseTarget;

const NOWS: [i64; 5] = [i64::MIN, -1, 0, 1_763_740_000_000, i64::MAX];

fn exercise(state: &DesiredState) {
    let _ = state.validate();
    let encoded = state.encode();
    let _ = DesiredState::decode(&encoded, "fuzz: encoded");
    for now in NOWS {
        let _ = state.try_next(Some("fuzz"), now);
        let _ = targets::next_expiry(Some(state), now);
    }
    let mut paused = Overrides::new();
    let listeners: BTreeSet<&str> = state
        .pauses
        .iter()
        .map(|p| p.listener.as_str())
        .chain(state.owners.keys().map(String::as_str))
        .chain(state.handoff.keys().map(String::as_str))
        .chain(state.joined.keys().map(String::as_str))
        .chain(["", "l"])
        .collect();
    for listener in listeners {
        paused.insert(listener.to_string(), Override::Paused);
        let slots: BTreeSet<&str> = state
            .owners
            .get(listener)
            .into_iter()
            .flat_map(|m| m.values().map(String::as_str))
            .chain(["", "blue"])
            .collect();
        for slot in slots {
            for now in NOWS {
                let _ = targets::wanted_in_slot(Some(state), &paused, listener, slot, now);
            }
            let _ = targets::start_floors(Some(state), listener, slot);
            let _ = targets::joins(Some(state), listener, slot);
        }
        for key in state
            .owners
            .get(listener)
            .into_iter()
            .flat_map(|m| m.keys())
        {
            let t = targets::parse_owner_key(key);
            let _ = targets::describe(&t);
        }
        for key in state
            .handoff
            .get(listener)
            .into_iter()
            .flat_map(|m| m.keys())
        {
            if let PauseTarget::Partition(topic, partition) = targets::parse_owner_key(key) {
                let _ = targets::handoff_offset(Some(state), listener, &topic, partition);
                let _ = targets::handoff_done(Some(state), listener, &topic, partition);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(state) = DesiredState::decode(data, "fuzz") {
        exercise(&state);
    }

    let (flags, rest) = match data {
        [f, rest @ ..] => (*f, rest),
        [] => (0, data),
    };
    let (key_len, rest) = match rest {
        [n, rest @ ..] => (*n as usize, rest),
        [] => (0, rest),
    };
    let (key, payload) = rest.split_at(key_len.min(rest.len()));
    let key = (flags & 1 == 0).then_some(key);
    let payload = (flags & 2 == 0).then_some(payload);

    if let Ok((_app, Some(AppState::Valid(state)))) = decode_record(key, payload) {
        exercise(&state);
    }
    let mut reducer = Reducer::default();
    let _ = reducer.apply_record(key, payload);
    let _ = reducer.apply_record(key, None);
    let _ = reducer.apply_record(key, payload);
    if let Some(app) = key.and_then(|k| std::str::from_utf8(k).ok()) {
        let _ = reducer.state(app);
        let _ = reducer.version(app);
    }
});
