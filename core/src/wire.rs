//! The heartbeat messages on the wire and their reference JSON text form.
//!
//! Adapters put these in WebSocket text frames: `{"type":"ping","seq":7}` and
//! `{"type":"pong","seq":7}`. Decoding never panics and never allocates; anything that is not a
//! heartbeat is reported as such, so adapters can pass it on to the application.

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

/// Why a text frame could not be decoded as a heartbeat message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The text is not a JSON object with a `type` field: most likely an application message.
    #[error("not a heartbeat message")]
    NotHeartbeat,
    /// The text has `"type":"ping"` or `"type":"pong"` but is otherwise malformed.
    #[error("malformed heartbeat message: {reason}")]
    Malformed {
        /// What was wrong, for logs.
        reason: &'static str,
    },
}

/// The flat shape of a heartbeat on the wire, decoded without buffering.
#[derive(Deserialize)]
struct Raw<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<&'a str>,
    seq: Option<u64>,
}

impl Message {
    /// The sequence number, whichever the kind.
    #[must_use]
    pub const fn seq(self) -> u64 {
        match self {
            Message::Ping { seq } | Message::Pong { seq } => seq,
        }
    }

    /// Decodes the JSON text form.
    ///
    /// # Errors
    /// [`DecodeError::NotHeartbeat`] for any text that is not a heartbeat (pass it to the
    /// application), [`DecodeError::Malformed`] for a ping or pong with a missing or bad `seq`.
    pub fn from_json(text: &str) -> Result<Message, DecodeError> {
        let (raw, _) = serde_json_core::from_str::<Raw<'_>>(text).map_err(|_| {
            if looks_like_heartbeat(text) {
                DecodeError::Malformed {
                    reason: "not a JSON object with a numeric seq",
                }
            } else {
                DecodeError::NotHeartbeat
            }
        })?;
        let seq = raw.seq;
        match (raw.kind, seq) {
            (Some("ping"), Some(seq)) => Ok(Message::Ping { seq }),
            (Some("pong"), Some(seq)) => Ok(Message::Pong { seq }),
            (Some("ping" | "pong"), None) => Err(DecodeError::Malformed {
                reason: "missing seq",
            }),
            _ => Err(DecodeError::NotHeartbeat),
        }
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

/// Cheap test for text that names a heartbeat type, used to tell malformed heartbeats from
/// application messages.
fn looks_like_heartbeat(text: &str) -> bool {
    let compact = text
        .as_bytes()
        .windows(6)
        .any(|w| w == b"\"ping\"" || w == b"\"pong\"");
    compact && text.contains("\"type\"")
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
    fn tells_application_messages_from_broken_heartbeats() {
        assert_eq!(
            Message::from_json(r#"{"type":"trade","px":1}"#),
            Err(DecodeError::NotHeartbeat)
        );
        assert_eq!(Message::from_json("hello"), Err(DecodeError::NotHeartbeat));
        assert_eq!(Message::from_json(""), Err(DecodeError::NotHeartbeat));
        assert!(matches!(
            Message::from_json(r#"{"type":"ping"}"#),
            Err(DecodeError::Malformed { .. })
        ));
        assert!(matches!(
            Message::from_json(r#"{"type":"ping","seq":-1}"#),
            Err(DecodeError::Malformed { .. })
        ));
        assert!(matches!(
            Message::from_json(r#"{"type":"pong","seq":"x"}"#),
            Err(DecodeError::Malformed { .. })
        ));
    }
}
