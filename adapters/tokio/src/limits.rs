//! Byte limits shared by the client and the server side, and the close code for each way a peer
//! can break the protocol or a limit.
//!
//! What one connection may cost, at most (defaults in brackets):
//! - reading: tungstenite's read buffer (`read_buffer_size`, 4 KiB, allocated at once), grown to
//!   one frame's payload (`max_frame_size`, 1 MiB) while a frame is read, plus a fragmented
//!   message being assembled (`max_message_size`, 1 MiB);
//! - towards the application: the queued messages, each copied into an allocation of its own
//!   (never a slice of the read buffer). A message is queued while the bytes queued are below
//!   `inbound_budget` (1 MiB), so the queue holds at most `inbound_budget` plus one message (at
//!   most `max_message_size`); the reader holds at most one more message while the queue is at
//!   or over the budget. A message counts its length plus [`crate::queue::MESSAGE_OVERHEAD`]
//!   (64 bytes); tiny messages cost more than that in memory (a full 1 MiB budget of 1-byte
//!   messages added 2.3 MiB resident, connection included, in `tests/small_messages_memory.rs`);
//! - towards the peer: `outbound_budget` (1 MiB) of queued messages, the one being written
//!   included, plus tungstenite's write buffer, which keeps the capacity of the largest frame
//!   written so far;
//! - heartbeat frames: besides the one being written, at most 16 waiting for the writer (each
//!   under 64 bytes on the wire; a 17th drops the oldest), on the server and on the client, so
//!   a peer that floods pings and reads nothing cannot grow them.
//!
//! With the defaults, about 7 MiB at worst per connection, server or client: 2 MiB reading,
//! 3 MiB towards the application, 2 MiB towards the peer (for application messages of at most
//! 1 MiB; a larger one passes the outbound budget alone and grows the write buffer to its
//! size). A connection the client gives up keeps its socket's buffers (at most 3 MiB: reading
//! and the write buffer; the outbound queue is the client's, shared by its connections) until
//! its writer ends, at most a second later: for that second, with the next connection open, a
//! client may hold about 10 MiB.
//! An idle connection holds the 4 KiB read buffer and no other buffer of this library.
//!
//! The sizes are enforced by tungstenite while it reads: only a stream created with
//! [`Limits::websocket_config`] has them.

use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Error as WsError;

/// One MiB: the default message and frame limit (Python `websockets`' default `max_size`) and
/// the default byte budget of each direction.
pub const MIB: usize = 1 << 20;

/// Size limits and buffer budgets of one connection (client or server).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest message accepted from the peer, fragments together; a larger one is closed
    /// with 1009 (message too big). Default 1 MiB.
    pub max_message_size: usize,
    /// The largest single frame payload accepted from the peer, refused from its header alone,
    /// before anything is buffered for it: closed with 1009. Default 1 MiB.
    pub max_frame_size: usize,
    /// Bytes of application messages queued towards the application (each message counts its
    /// length plus [`crate::queue::MESSAGE_OVERHEAD`]). A message is queued while the bytes
    /// queued are below it, even if it takes them over; at or over it, the connection's reader
    /// holds the message it read and stops reading. Default 1 MiB.
    pub inbound_budget: usize,
    /// Bytes of application messages queued towards the peer, counted the same way, until
    /// written. While full, sending waits. Default 1 MiB.
    pub outbound_budget: usize,
    /// tungstenite's read buffer, allocated when the connection opens. Default 4 KiB
    /// (tungstenite's own default is 128 KiB per connection); larger reads grow it as needed.
    pub read_buffer_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: MIB,
            max_frame_size: MIB,
            inbound_budget: MIB,
            outbound_budget: MIB,
            read_buffer_size: 4 * 1024,
        }
    }
}

impl Limits {
    /// tungstenite's settings for these limits. Pass them to whatever creates the
    /// `WebSocketStream` (`accept_hdr_async_with_config`, `from_raw_socket`,
    /// `client_async_with_config`): the size limits are enforced by tungstenite while it reads,
    /// so a stream created without them keeps tungstenite's 64 MiB / 16 MiB defaults.
    #[must_use]
    pub fn websocket_config(&self) -> WebSocketConfig {
        WebSocketConfig::default()
            .read_buffer_size(self.read_buffer_size)
            // Every frame is flushed as it is sent: no batching target.
            .write_buffer_size(0)
            .max_message_size(Some(self.max_message_size))
            .max_frame_size(Some(self.max_frame_size))
    }
}

/// The close frame a read error calls for, or `None` when no close frame can or need be sent
/// (the socket failed, the peer reset it, the close handshake already ended).
///
/// invalid UTF-8 -> 1007; a message or frame over the limit -> 1009; any other protocol
/// violation -> 1002.
pub(crate) fn close_for(error: &WsError) -> Option<CloseFrame> {
    let (code, reason) = match error {
        WsError::Utf8(_) => (CloseCode::Invalid, "invalid utf-8"),
        WsError::Capacity(CapacityError::MessageTooLong { .. }) => {
            (CloseCode::Size, "message too big")
        }
        WsError::Capacity(CapacityError::TooManyHeaders) => (CloseCode::Size, "too many headers"),
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => return None,
        WsError::Protocol(_) => (CloseCode::Protocol, "protocol error"),
        WsError::AttackAttempt => (CloseCode::Policy, "attack attempt"),
        _ => return None,
    };
    Some(CloseFrame {
        code,
        reason: reason.into(),
    })
}
