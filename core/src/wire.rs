//! The heartbeat messages on the wire and their reference JSON text form.
//!
//! Adapters put these in WebSocket text frames: `{"type":"ping","seq":7}` and
//! `{"type":"pong","seq":7}`. [`Message::from_json`] takes out exact heartbeats only; every other
//! text is application data, for the adapter to pass on untouched.
//!
//! The decoder reads text a peer chose, so it is a flat scanner over at most
//! [`MAX_HEARTBEAT_LEN`] bytes: no recursion, no allocation, no panic, one forward pass. It must
//! never grow into a general JSON parser: one that skips unknown values by recursion lets a single
//! deeply nested frame overflow the stack of the thread that reads every connection.

use serde::{Deserialize, Serialize};

/// A heartbeat message, in either direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Message {
    /// "Are you there?" The receiver answers with a [`Message::Pong`] carrying the same `seq`.
    Ping {
        /// Chosen by the sender; echoed in the pong.
        seq: u64,
    },
    /// The answer to a ping with the same `seq`.
    Pong {
        /// The `seq` of the ping this answers.
        seq: u64,
    },
}

/// The largest encoded message: `{"type":"ping","seq":18446744073709551615}`.
pub const MAX_ENCODED_LEN: usize = 42;

/// The longest text, in bytes, that [`Message::from_json`] reads as a heartbeat; a longer text is
/// application data without a look at its content.
///
/// [`MAX_ENCODED_LEN`] plus room for the whitespace a pretty-printing peer adds
/// (`{\n  "type": "ping",\n  "seq": 7\n}` is 33 bytes). It bounds the decoder's work per frame
/// whatever the frame's size.
pub const MAX_HEARTBEAT_LEN: usize = 128;

/// Why a text frame is not a heartbeat message.
///
/// Not `#[non_exhaustive]`: a new way for a text to fail would change what every adapter does
/// with it, so the compiler should point at each `match`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The text is not exactly a heartbeat: application data, for the application. This includes
    /// texts that merely look like one (`{"type":"ping","seq":-1}`, an extra member, two
    /// heartbeats in one frame): what is not taken out must reach the application.
    #[error("not a heartbeat message")]
    NotHeartbeat,
}

impl Message {
    /// The sequence number, whichever the kind.
    #[must_use]
    pub const fn seq(self) -> u64 {
        match self {
            Message::Ping { seq } | Message::Pong { seq } => seq,
        }
    }

    /// Decodes the JSON text form, taking out exact heartbeats only.
    ///
    /// A heartbeat is, in at most [`MAX_HEARTBEAT_LEN`] bytes: optional JSON whitespace, `{`,
    /// exactly the two members `"type"` (the string `"ping"` or `"pong"`) and `"seq"` (a JSON
    /// integer from 0 to `u64::MAX`: no sign, fraction, exponent or leading zero) in either
    /// order, `}`, optional whitespace, and nothing else. Keys and values are spelled without
    /// escapes: a `\` anywhere means application data, even where JSON would read the same word
    /// (`"p\u0069ng"`). A duplicate, missing or extra member means application data too.
    ///
    /// The work is linear in the text and bounded by [`MAX_HEARTBEAT_LEN`]; nothing recurses,
    /// allocates or panics, whatever the text.
    ///
    /// # Errors
    /// [`DecodeError::NotHeartbeat`] for any other text: pass it to the application.
    pub fn from_json(text: &str) -> Result<Message, DecodeError> {
        if text.len() > MAX_HEARTBEAT_LEN {
            return Err(DecodeError::NotHeartbeat);
        }
        Scanner::new(text.as_bytes())
            .heartbeat()
            .ok_or(DecodeError::NotHeartbeat)
    }

    /// Encodes the JSON text form into `buf`, returning the text.
    ///
    /// `buf` of [`MAX_ENCODED_LEN`] bytes always suffices.
    #[must_use]
    pub fn to_json(self, buf: &mut [u8; MAX_ENCODED_LEN]) -> &str {
        let mut w = SliceWriter { buf, len: 0 };
        let (kind, seq) = match self {
            Message::Ping { seq } => ("ping", seq),
            Message::Pong { seq } => ("pong", seq),
        };
        // Cannot fail: the longest message fits MAX_ENCODED_LEN exactly.
        let _ = core::fmt::write(
            &mut w,
            format_args!("{{\"type\":\"{kind}\",\"seq\":{seq}}}"),
        );
        let len = w.len;
        core::str::from_utf8(&buf[..len]).unwrap_or_default()
    }
}

/// One member of a heartbeat object.
enum Member {
    /// `"type":"ping"`
    Ping,
    /// `"type":"pong"`
    Pong,
    /// `"seq":` and its value.
    Seq(u64),
}

/// A cursor over the unread rest of a text. Every step moves forward or gives up, and none
/// calls another recursively: a scan is linear in the text, and the caller bounds the text.
struct Scanner<'a> {
    rest: &'a [u8],
}

impl<'a> Scanner<'a> {
    fn new(text: &'a [u8]) -> Self {
        Scanner { rest: text }
    }

    /// The whole text as exactly one heartbeat object, or `None`.
    fn heartbeat(mut self) -> Option<Message> {
        self.whitespace();
        self.byte(b'{')?;
        let first = self.member()?;
        self.whitespace();
        self.byte(b',')?;
        let second = self.member()?;
        self.whitespace();
        self.byte(b'}')?;
        self.whitespace();
        if !self.rest.is_empty() {
            return None;
        }
        match (first, second) {
            (Member::Ping, Member::Seq(seq)) | (Member::Seq(seq), Member::Ping) => {
                Some(Message::Ping { seq })
            }
            (Member::Pong, Member::Seq(seq)) | (Member::Seq(seq), Member::Pong) => {
                Some(Message::Pong { seq })
            }
            // A duplicate member, e.g. two types and no seq.
            _ => None,
        }
    }

    /// Whitespace, a key we know, whitespace, `:`, whitespace, its value.
    fn member(&mut self) -> Option<Member> {
        self.whitespace();
        if self.literal(b"\"type\"") {
            self.colon()?;
            if self.literal(b"\"ping\"") {
                Some(Member::Ping)
            } else if self.literal(b"\"pong\"") {
                Some(Member::Pong)
            } else {
                None
            }
        } else if self.literal(b"\"seq\"") {
            self.colon()?;
            self.integer().map(Member::Seq)
        } else {
            None
        }
    }

    /// `:` with optional whitespace around it.
    fn colon(&mut self) -> Option<()> {
        self.whitespace();
        self.byte(b':')?;
        self.whitespace();
        Some(())
    }

    /// A JSON integer in `0..=u64::MAX`: digits only, no leading zero unless it is `0`. What
    /// follows is the caller's to check, so `01` and `1.0` fail there.
    fn integer(&mut self) -> Option<u64> {
        let (&first, mut rest) = self.rest.split_first()?;
        let mut n = u64::from(digit(first)?);
        if n != 0 {
            while let Some((&b, tail)) = rest.split_first() {
                let Some(d) = digit(b) else { break };
                n = n.checked_mul(10)?.checked_add(u64::from(d))?;
                rest = tail;
            }
        }
        self.rest = rest;
        Some(n)
    }

    /// Skips JSON whitespace (space, tab, line feed, carriage return; nothing else).
    fn whitespace(&mut self) {
        while let [b' ' | b'\t' | b'\n' | b'\r', tail @ ..] = self.rest {
            self.rest = tail;
        }
    }

    /// Consumes `expected`, or fails.
    fn byte(&mut self, expected: u8) -> Option<()> {
        match self.rest {
            [b, tail @ ..] if *b == expected => {
                self.rest = tail;
                Some(())
            }
            _ => None,
        }
    }

    /// Consumes `expected` if the rest starts with it.
    fn literal(&mut self, expected: &[u8]) -> bool {
        match self.rest.strip_prefix(expected) {
            Some(tail) => {
                self.rest = tail;
                true
            }
            None => false,
        }
    }
}

fn digit(b: u8) -> Option<u8> {
    b.is_ascii_digit().then(|| b - b'0')
}

struct SliceWriter<'a> {
    buf: &'a mut [u8; MAX_ENCODED_LEN],
    len: usize,
}

impl core::fmt::Write for SliceWriter<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(core::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_reference_text() {
        let mut buf = [0; MAX_ENCODED_LEN];
        assert_eq!(
            Message::Ping { seq: 7 }.to_json(&mut buf),
            r#"{"type":"ping","seq":7}"#
        );
        assert_eq!(
            Message::from_json(r#"{"type":"pong","seq":7}"#),
            Ok(Message::Pong { seq: 7 })
        );
        assert_eq!(
            Message::from_json(r#" { "seq" : 9 , "type" : "ping" } "#),
            Ok(Message::Ping { seq: 9 })
        );
        let max = Message::Pong { seq: u64::MAX };
        assert_eq!(Message::from_json(max.to_json(&mut buf)), Ok(max));
    }

    #[test]
    fn broken_heartbeats_are_application_data() {
        for text in [
            r#"{"type":"trade","px":1}"#,
            "hello",
            "",
            r#"{"type":"ping"}"#,
            r#"{"type":"ping","seq":-1}"#,
            r#"{"type":"pong","seq":"x"}"#,
            // Found by the wire fuzz target, whose serde reference read it as a pong: serde's
            // derived structs accept arrays. A heartbeat is an object.
            "[\n\"pong\"  ,0]",
        ] {
            assert_eq!(Message::from_json(text), Err(DecodeError::NotHeartbeat));
        }
    }

    /// The length cap is not what keeps the scanner flat: without it, a megabyte of whitespace
    /// or of nesting is scanned on a 64 KiB stack.
    #[test]
    fn the_scanner_alone_needs_no_stack_for_long_texts() {
        extern crate std;
        use alloc::string::String;

        let run = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(|| {
                let mut padded = String::from(" ").repeat(1 << 20);
                padded.push_str(r#"{"seq":1,"type":"pong"}"#);
                let mut nested = String::from(r#"{"seq":1,"type":"pong","a":"#);
                nested.push_str(&"[".repeat(1 << 20));
                (
                    Scanner::new(padded.as_bytes()).heartbeat(),
                    Scanner::new(nested.as_bytes()).heartbeat(),
                )
            })
            .unwrap();
        assert_eq!(run.join().unwrap(), (Some(Message::Pong { seq: 1 }), None));
    }
}
