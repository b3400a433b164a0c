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

/// The deepest nesting of flow collections libyaml's scanner reports before its first error,
/// and whether it read the whole text.
fn libyaml_flow_depth(text: &str) -> (usize, bool) {
    use core::mem::MaybeUninit;
    use unsafe_libyaml::*;
    // SAFETY: the parser is initialized before use and deleted once; every token scanned is
    // deleted; the input outlives the parser.
    unsafe {
        let mut parser = MaybeUninit::<yaml_parser_t>::uninit();
        if yaml_parser_initialize(parser.as_mut_ptr()).fail {
            return (0, false);
        }
        let parser = parser.as_mut_ptr();
        yaml_parser_set_encoding(parser, YAML_UTF8_ENCODING);
        yaml_parser_set_input_string(parser, text.as_ptr(), text.len() as u64);
        let (mut depth, mut max, mut complete) = (0usize, 0usize, false);
        loop {
            let mut token = MaybeUninit::<yaml_token_t>::uninit();
            if yaml_parser_scan(parser, token.as_mut_ptr()).fail {
                break;
            }
            let token = token.as_mut_ptr();
            let kind = (*token).type_;
            yaml_token_delete(token);
            match kind {
                YAML_FLOW_SEQUENCE_START_TOKEN | YAML_FLOW_MAPPING_START_TOKEN => {
                    depth += 1;
                    max = max.max(depth);
                }
                YAML_FLOW_SEQUENCE_END_TOKEN | YAML_FLOW_MAPPING_END_TOKEN => {
                    depth = depth.saturating_sub(1);
                }
                YAML_STREAM_END_TOKEN => {
                    complete = true;
                    break;
                }
                _ => {}
            }
        }
        yaml_parser_delete(parser);
        (max, complete)
    }
}

/// The loader's pre-check never sees less nesting than libyaml (else the quadratic parse it
/// guards against is back), and on text libyaml scans to the end, exactly as much.
fn check_flow_depth(text: &str) {
    let (depth, complete) = libyaml_flow_depth(text);
    if depth > 0 {
        assert!(
            load::yaml_flow_too_deep(text, depth - 1).is_some(),
            "libyaml nests {depth} deep, the pre-check less"
        );
    }
    if complete {
        assert_eq!(
            load::yaml_flow_too_deep(text, depth),
            None,
            "the pre-check nests deeper than libyaml's {depth}"
        );
    }
}

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

    if path.ends_with(".yaml") || path.ends_with(".yml") {
        check_flow_depth(&text);
    }
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
