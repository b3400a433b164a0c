//! The configuration loader (`heartbeat_core::load::resolve`, what the CLI and the adapters
//! call) on any text in any of its formats, in either layout, with environment overrides.
//!
//! It must not panic; what it accepts must validate (with errors or without) and build the
//! state machines exactly when it is valid; its errors must print; and it must take time linear
//! in the input (libFuzzer's `-timeout` catches a slow input; the YAML nesting pre-check is what
//! keeps the YAML parser linear).
//!
//! Input layout, so that seeds are plain files: byte 0 picks the format (`y`, `t`, `j`, or any
//! byte modulo 3), byte 1 modulo 4 is how many environment overrides follow the text, each after
//! a NUL byte as `KEY=VALUE` (`HEARTBEAT_` is prefixed when missing); the rest is the file's text.
//!
//! Run from core/fuzz: `RUSTC_BOOTSTRAP=1 cargo fuzz run config -- -max_total_time=60 -timeout=10`.
#![no_main]

use heartbeat_core::load::{self, LoadError, ENV_PREFIX};
use heartbeat_core::{Client, Instant, Server};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [format, overrides, rest @ ..] = data else {
        return;
    };
    let path = match format {
        b'y' => "fuzz.yaml",
        b't' => "fuzz.toml",
        b'j' => "fuzz.json",
        b => ["fuzz.yml", "fuzz.toml", "fuzz.json"][usize::from(b % 3)],
    };
    // The CLI refuses text that is not UTF-8 before the loader sees it.
    let Ok(rest) = core::str::from_utf8(rest) else {
        return;
    };
    let mut parts: Vec<&str> = rest.split('\0').collect();
    let n = usize::from(overrides % 4).min(parts.len() - 1);
    let env: Vec<(String, String)> = parts
        .split_off(parts.len() - n)
        .into_iter()
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let k = if k.starts_with(ENV_PREFIX) {
                k.to_owned()
            } else {
                format!("{ENV_PREFIX}{k}")
            };
            (k, v.to_owned())
        })
        .collect();
    let text = parts.join("\0");

    let result = load::resolve(Some((path, &text)), env.iter().map(|(k, v)| (k, v)));
    match result {
        Ok((config, applied)) => {
            assert!(applied <= env.len());
            let validation = config.validate();
            let _ = config.guarantees();
            for e in &validation.errors {
                assert!(!e.to_string().is_empty());
            }
            let valid = validation.errors.is_empty();
            let client = Client::new(&config.client, Instant::ZERO, 1);
            let server = Server::new(&config.server, Instant::ZERO);
            if valid {
                assert!(client.is_ok() && server.is_ok(), "{config:?}");
            }
        }
        Err(e) => {
            let shown = e.to_string();
            assert!(!shown.is_empty());
            if let LoadError::Parse { line, .. } = e {
                // A position inside the text (or 0 when the parser gave none). YAML also breaks
                // lines at CR, NEL, LS and PS, and libyaml puts the end of a text without a
                // final line break on the line after its last.
                let breaks = text
                    .chars()
                    .filter(|c| matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}'))
                    .count();
                assert!(line <= breaks + 2, "{line}: {shown}");
            }
        }
    }
    // The environment alone, as a tool without a file runs.
    if let Err(e) = load::resolve(None, env.iter().map(|(k, v)| (k, v))) {
        assert!(e.is_override(), "{e}");
    }
});
