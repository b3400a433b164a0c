//! Decoding text frames: exact heartbeats are taken out, everything else is application data,
//! and no text a peer sends can make the decoder recurse, allocate or read more than it needs.

use heartbeat_core::wire::MAX_HEARTBEAT_LEN;
use heartbeat_core::{DecodeError, Message};
use proptest::prelude::*;
use serde::Deserialize;

/// Runs `f` on a thread with a 64 KiB stack, where a decoder that recursed once per nesting
/// level of a hostile frame would overflow (and abort the whole test binary).
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(64 * 1024)
        .spawn(f)
        .expect("a thread")
        .join()
        .expect("no panic")
}

fn not_heartbeat(text: &str) {
    assert_eq!(
        Message::from_json(text),
        Err(DecodeError::NotHeartbeat),
        "{text:?}"
    );
}

/// `{"a":[[[[...` with `len` bytes in all, as measured crashing the server and the client.
fn open_brackets(len: usize) -> String {
    let mut text = String::from(r#"{"a":"#);
    text.push_str(&"[".repeat(len - text.len()));
    text
}

/// Valid JSON nested `depth` deep: `{"a":{"a":...{}...}}`.
fn nested_objects(depth: usize) -> String {
    let mut text = r#"{"a":"#.repeat(depth);
    text.push_str("{}");
    text.push_str(&"}".repeat(depth));
    text
}

#[test]
fn a_66_kb_deeply_nested_frame_is_application_data_without_recursion() {
    let result = on_small_stack(|| Message::from_json(&open_brackets(66_000)));
    assert_eq!(result, Err(DecodeError::NotHeartbeat));
}

#[test]
fn a_1_mb_deeply_nested_frame_is_application_data_without_recursion() {
    let result = on_small_stack(|| {
        [
            open_brackets(1 << 20),
            nested_objects((1 << 20) / 6),
            // The heartbeat's own members first, then the deep value.
            format!(r#"{{"type":"ping","seq":1,"a":{}"#, "[".repeat(1 << 20)),
        ]
        .map(|text| Message::from_json(&text))
    });
    assert_eq!(result, [const { Err(DecodeError::NotHeartbeat) }; 3]);
}

#[test]
fn application_messages_naming_ping_or_pong_reach_the_application() {
    not_heartbeat(r#"{"type":"chat","seq":"a1","body":"ping"}"#);
    not_heartbeat(r#"[{"type":"ping","seq":1}]"#);
    not_heartbeat("{\"type\":\"ping\",\"seq\":1}\n{\"type\":\"ping\",\"seq\":2}");
    not_heartbeat(r#"{"type":"pong","seq":"x"}"#);
    not_heartbeat(r#"{"type":"ping"}"#);
    not_heartbeat(r#"{"type":"ping","seq":1,"body":"hi"}"#);
    not_heartbeat(r#"{"type":"trade","px":1}"#);
    not_heartbeat("ping");
    not_heartbeat("hello");
    not_heartbeat("");
}

#[test]
fn exact_heartbeats_decode_with_any_json_whitespace_and_either_member_order() {
    let cases = [
        (r#"{"type":"ping","seq":7}"#, Message::Ping { seq: 7 }),
        (r#"{"seq":7,"type":"pong"}"#, Message::Pong { seq: 7 }),
        (r#"{"type":"pong","seq":0}"#, Message::Pong { seq: 0 }),
        (
            r#" { "seq" : 9 , "type" : "ping" } "#,
            Message::Ping { seq: 9 },
        ),
        (
            "\r\n\t{\n  \"type\": \"ping\",\n  \"seq\": 18446744073709551615\n}\n",
            Message::Ping { seq: u64::MAX },
        ),
        (
            "{\"seq\"\t:\t10\r,\r\"type\"\n:\n\"pong\"}",
            Message::Pong { seq: 10 },
        ),
    ];
    for (text, message) in cases {
        assert_eq!(Message::from_json(text), Ok(message), "{text:?}");
    }
}

#[test]
fn near_misses_are_application_data() {
    for text in [
        // Extra, duplicate or missing members.
        r#"{"type":"ping","seq":1,"x":0}"#,
        r#"{"x":0,"type":"ping","seq":1}"#,
        r#"{"type":"ping","seq":1,"seq":2}"#,
        r#"{"type":"ping","type":"ping","seq":1}"#,
        r#"{"type":"ping","type":"pong"}"#,
        r#"{"seq":1,"seq":1}"#,
        r#"{"seq":1}"#,
        r#"{}"#,
        // Not a non-negative integer in u64.
        r#"{"type":"ping","seq":1.0}"#,
        r#"{"type":"ping","seq":1e3}"#,
        r#"{"type":"ping","seq":1E3}"#,
        r#"{"type":"ping","seq":-1}"#,
        r#"{"type":"ping","seq":-0}"#,
        r#"{"type":"ping","seq":+1}"#,
        r#"{"type":"ping","seq":01}"#,
        r#"{"type":"ping","seq":00}"#,
        r#"{"type":"ping","seq":18446744073709551616}"#,
        r#"{"type":"ping","seq":99999999999999999999999}"#,
        r#"{"type":"ping","seq":"1"}"#,
        r#"{"type":"ping","seq":null}"#,
        r#"{"type":"ping","seq":}"#,
        // Other types and spellings.
        r#"{"type":"Ping","seq":1}"#,
        r#"{"type":"pingg","seq":1}"#,
        r#"{"type":"pin","seq":1}"#,
        r#"{"type":ping,"seq":1}"#,
        r#"{"Type":"ping","seq":1}"#,
        r#"{'type':'ping','seq':1}"#,
        // Escapes are never taken out, even where JSON would read them as the same word.
        r#"{"type":"p\u0069ng","seq":1}"#,
        r#"{"typ\u0065":"ping","seq":1}"#,
        r#"{"type":"ping\u0000","seq":1}"#,
        r#"{"se\q":1,"type":"ping"}"#,
        // Broken grammar.
        r#"{"type":"ping","seq":1,}"#,
        r#"{,"type":"ping","seq":1}"#,
        r#"{"type":"ping" "seq":1}"#,
        r#"{"type""ping","seq":1}"#,
        r#"{"type":"ping";"seq":1}"#,
        r#"{"type":"ping","seq":1"#,
        r#""type":"ping","seq":1}"#,
        // Trailing garbage and two messages.
        r#"{"type":"ping","seq":1}x"#,
        r#"{"type":"ping","seq":1}}"#,
        r#"{"type":"ping","seq":1},"#,
        r#"{"type":"ping","seq":1}{"type":"ping","seq":2}"#,
        "{\"type\":\"ping\",\"seq\":1}\n{\"type\":\"ping\",\"seq\":2}",
        "{\"type\":\"ping\",\"seq\":1}\0",
        // Whitespace JSON does not allow.
        "\u{feff}{\"type\":\"ping\",\"seq\":1}",
        "{\"type\":\"ping\",\u{a0}\"seq\":1}",
        "{\"type\":\"ping\",\u{b}\"seq\":1}",
    ] {
        not_heartbeat(text);
    }
}

#[test]
fn a_text_longer_than_max_heartbeat_len_is_application_data() {
    let heartbeat = r#"{"type":"ping","seq":18446744073709551615}"#;
    let fits = format!(
        "{heartbeat}{}",
        " ".repeat(MAX_HEARTBEAT_LEN - heartbeat.len())
    );
    assert_eq!(
        Message::from_json(&fits),
        Ok(Message::Ping { seq: u64::MAX })
    );
    not_heartbeat(&format!("{fits} "));
}

/// What `serde_json` (a full JSON parser) reads as a heartbeat: an object with exactly the two
/// members, no duplicates (serde's derive rejects those), `seq` a u64.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Exact {
    r#type: String,
    seq: u64,
}

/// The decoder's contract in terms of a full JSON parser: a heartbeat is exactly what
/// `serde_json` reads as one, spelled without escapes, in at most `MAX_HEARTBEAT_LEN` bytes.
fn reference(text: &str) -> Result<Message, DecodeError> {
    if text.len() > MAX_HEARTBEAT_LEN || text.contains('\\') {
        return Err(DecodeError::NotHeartbeat);
    }
    match serde_json::from_str::<Exact>(text) {
        Ok(Exact { r#type, seq }) if r#type == "ping" => Ok(Message::Ping { seq }),
        Ok(Exact { r#type, seq }) if r#type == "pong" => Ok(Message::Pong { seq }),
        _ => Err(DecodeError::NotHeartbeat),
    }
}

#[test]
fn the_reference_agrees_on_the_examples() {
    assert_eq!(
        reference(r#" {"seq": 3, "type": "pong"} "#),
        Ok(Message::Pong { seq: 3 })
    );
    assert_eq!(
        reference(r#"{"type":"ping","seq":1,"seq":2}"#),
        Err(DecodeError::NotHeartbeat)
    );
    assert_eq!(
        reference(r#"{"type":"ping","seq":1.0}"#),
        Err(DecodeError::NotHeartbeat)
    );
}

fn one_of(options: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::sample::select(options).prop_map(str::to_owned)
}

/// Objects built from heartbeat pieces and near-misses, mostly well-formed, so that random texts
/// are often heartbeats and often just miss.
fn near_heartbeat() -> impl Strategy<Value = String> {
    let gap = || prop_oneof![30 => ws(), 1 => one_of(&["\u{b}", "\u{a0}", "x"])];
    let member = |key: BoxedStrategy<String>, value: BoxedStrategy<String>| {
        (
            gap(),
            key,
            gap(),
            prop_oneof![30 => one_of(&[":"]), 1 => one_of(&[""])],
            gap(),
            value,
            gap(),
        )
            .prop_map(|(a, k, b, colon, c, v, d)| format!("{a}{k}{b}{colon}{c}{v}{d}"))
    };
    let kind = one_of(&[r#""ping""#, r#""pong""#]).boxed();
    let seq = prop_oneof![
        any::<u64>().prop_map(|n| n.to_string()),
        (0..20u64).prop_map(|n| n.to_string()),
    ]
    .boxed();
    let bad_key = one_of(&[r#""x""#, r#""typ\u0065""#, r#""Type""#, "type", r#""seq"#]).boxed();
    let bad_value = one_of(&[
        r#""p\u0069ng""#,
        r#""x""#,
        "null",
        "-1",
        "-0",
        "+1",
        "01",
        "00",
        "1.0",
        "1e3",
        "18446744073709551616",
        "[1]",
        "{}",
        r#""ping"#,
        "",
    ])
    .boxed();
    let any_key = prop_oneof![one_of(&[r#""type""#, r#""seq""#]), bad_key.clone()].boxed();
    let any_value = prop_oneof![kind.clone(), seq.clone(), bad_value].boxed();
    let member = prop_oneof![
        5 => member(Just(r#""type""#.to_owned()).boxed(), kind),
        5 => member(Just(r#""seq""#.to_owned()).boxed(), seq),
        1 => member(any_key, any_value),
    ];
    let members = prop_oneof![
        10 => prop::collection::vec(member.clone(), 2),
        1 => prop::collection::vec(member, 0..5),
    ];
    (
        prop_oneof![30 => gap(), 1 => one_of(&["[", "x", "\u{feff}"])],
        prop_oneof![30 => one_of(&["{"]), 1 => one_of(&["", "[{"])],
        members,
        prop_oneof![30 => one_of(&[","]), 1 => one_of(&[";", ",,", ""])],
        prop_oneof![
            30 => one_of(&["}"]),
            1 => one_of(&["", "}]", "}}", "},", "}\n{\"type\":\"ping\",\"seq\":1}"]),
        ],
        prop_oneof![30 => gap(), 1 => one_of(&["x", "\0", "\\"])],
    )
        .prop_map(|(before, open, members, separator, close, after)| {
            format!("{before}{open}{}{close}{after}", members.join(&separator))
        })
}

/// Whitespace JSON allows between tokens.
fn ws() -> impl Strategy<Value = String> {
    "[ \t\n\r]{0,3}"
}

/// An exact heartbeat with random whitespace, either member order, any seq.
fn heartbeat_text() -> impl Strategy<Value = (String, Message)> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<u64>(),
        prop::collection::vec(ws(), 10),
    )
        .prop_map(|(ping, type_first, seq, w)| {
            let (kind, m) = if ping {
                ("ping", Message::Ping { seq })
            } else {
                ("pong", Message::Pong { seq })
            };
            let type_member = format!("\"type\"{}:{}\"{kind}\"", w[0], w[1]);
            let seq_member = format!("\"seq\"{}:{}{seq}", w[2], w[3]);
            let (first, second) = if type_first {
                (type_member, seq_member)
            } else {
                (seq_member, type_member)
            };
            let text = format!(
                "{}{{{}{first}{},{}{second}{}}}{}",
                w[4], w[5], w[6], w[7], w[8], w[9]
            );
            (text, m)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn any_text_decodes_as_the_reference_says(text in "\\PC{0,160}") {
        prop_assert_eq!(Message::from_json(&text), reference(&text), "{:?}", text);
    }

    #[test]
    fn texts_made_of_heartbeat_pieces_decode_as_the_reference_says(text in near_heartbeat()) {
        prop_assert_eq!(Message::from_json(&text), reference(&text), "{:?}", text);
    }

    #[test]
    fn every_exact_heartbeat_decodes((text, m) in heartbeat_text()) {
        prop_assert_eq!(Message::from_json(&text), Ok(m), "{:?}", text);
        prop_assert_eq!(reference(&text), Ok(m), "{:?}", text);
    }

    #[test]
    fn a_heartbeat_with_one_byte_changed_decodes_as_the_reference_says(
        (text, _m) in heartbeat_text(),
        at in any::<prop::sample::Index>(),
        byte in 0x20u8..0x7f,
    ) {
        let mut bytes = text.into_bytes();
        let i = at.index(bytes.len());
        bytes[i] = byte;
        let text = String::from_utf8(bytes).expect("ASCII");
        prop_assert_eq!(Message::from_json(&text), reference(&text), "{:?}", text);
    }

    #[test]
    fn encoding_round_trips_through_the_decoder(seq in any::<u64>(), ping in any::<bool>()) {
        let m = if ping { Message::Ping { seq } } else { Message::Pong { seq } };
        let mut buf = [0; heartbeat_core::wire::MAX_ENCODED_LEN];
        let text = m.to_json(&mut buf);
        prop_assert!(text.len() <= MAX_HEARTBEAT_LEN);
        prop_assert_eq!(Message::from_json(text), Ok(m));
    }
}
