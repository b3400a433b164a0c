//! `Message::from_json` on any text: it never panics, takes out exactly the texts that
//! `serde_json` reads as a heartbeat (spelled without escapes, in at most `MAX_HEARTBEAT_LEN`
//! bytes), and what it takes out encodes back to a text it decodes the same way.
//!
//! Run from core/fuzz: `RUSTC_BOOTSTRAP=1 cargo fuzz run wire -- -max_total_time=60`.
#![no_main]

use heartbeat_core::wire::{MAX_ENCODED_LEN, MAX_HEARTBEAT_LEN};
use heartbeat_core::{DecodeError, Message};
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;

/// What a full JSON parser reads as a heartbeat: exactly these two members, no duplicates
/// (serde's derive rejects those), `seq` a u64.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Exact {
    r#type: String,
    seq: u64,
}

fn reference(text: &str) -> Result<Message, DecodeError> {
    if text.len() > MAX_HEARTBEAT_LEN || text.contains('\\') {
        return Err(DecodeError::NotHeartbeat);
    }
    // serde's derived struct also reads a JSON array (`["pong", 0]`) field by field; a
    // heartbeat is an object only (an array is the application's, issue 10).
    if !text
        .trim_start_matches([' ', '\t', '\n', '\r'])
        .starts_with('{')
    {
        return Err(DecodeError::NotHeartbeat);
    }
    match serde_json::from_str::<Exact>(text) {
        Ok(Exact { r#type, seq }) if r#type == "ping" => Ok(Message::Ping { seq }),
        Ok(Exact { r#type, seq }) if r#type == "pong" => Ok(Message::Pong { seq }),
        _ => Err(DecodeError::NotHeartbeat),
    }
}

fuzz_target!(|data: &[u8]| {
    // WebSocket text frames are UTF-8 (the adapters' WebSocket libraries check it).
    let Ok(text) = core::str::from_utf8(data) else {
        return;
    };
    let decoded = Message::from_json(text);
    assert_eq!(decoded, reference(text), "{text:?}");
    if let Ok(message) = decoded {
        let mut buf = [0; MAX_ENCODED_LEN];
        assert_eq!(Message::from_json(message.to_json(&mut buf)), Ok(message));
    }
});
