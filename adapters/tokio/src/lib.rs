//! heartbeat-core on tokio WebSockets (tokio-tungstenite): a server side whose pongs stay fast
//! while the application is busy, and a client side that reconnects the way the core says.
//!
//! # Design: pongs never wait for application work
//! The story's backend answered pings on the same event loop that processed market data, so
//! pongs queued behind data. Here:
//!
//! - Each served connection has a **reader** task and a **writer** task ([`server`]). The reader
//!   takes heartbeats out before anything reaches the application: a JSON ping is answered by
//!   the core from the call that reads it and the pong is handed to the writer at once; protocol
//!   Ping frames are answered by tungstenite on the next read. The writer writes heartbeat frames
//!   ahead of every queued application frame, and sends the server's own pings on schedule.
//! - Application messages leave the reader through a **bounded channel**
//!   ([`ServerConnection::messages`]). The adapter never calls application code, so application
//!   work cannot run on the tasks that read sockets and answer pings.
//! - Put those tasks on a runtime that does nothing else: [`IoThread`] is a one-thread tokio
//!   runtime on its own OS thread for the accept loop and every connection's reader and writer.
//!   Consume the messages on your own runtime or thread pool (`spawn_blocking`, rayon). When
//!   handlers saturate every core, the I/O thread still gets scheduled by the OS on each
//!   readiness event, which is milliseconds, not a queue of 20 ms jobs.
//!
//! # Backpressure, honestly
//! Each direction of a connection has a byte budget ([`Limits`]): application messages count
//! their bytes (plus a small per-message overhead) while they wait, not their number. Every
//! message is copied out of tungstenite's read buffer into an allocation of its own before it
//! waits (server and client), so what waits is what is counted: a queued 1-byte message does
//! not keep a 4 KiB read buffer alive.
//!
//! Inbound (server and client alike), a message read is queued whenever the bytes queued for
//! the application are below [`Limits::inbound_budget`], even if it takes them over; heartbeats
//! read meanwhile are answered at once. A message read while they are at or over the budget is
//! held by the reader, which then reads nothing until the application brings the queue below
//! the budget: TCP flow control slows that peer down, and that peer's own pings and pongs wait
//! behind its own unread data (TCP is in order). So the queue holds at most the budget plus one
//! message, and the reader holds at most one more. Other connections are not affected: each
//! has its own reader and budget.
//!
//! **Liveness is what is read, on both sides.** A stopped reader cannot tell a live peer from
//! a dead one (its end of stream waits unread behind the data), and neither can anything else
//! (a write to a dead peer completes into the local send buffer). So waiting earns the peer no
//! credit: a held message counts for nothing, only frames read do. On the server:
//! - a peer from which nothing has been read for `idle_timeout` is closed with 1011 at that
//!   moment, whatever the application does: whether it sent nothing, stopped reading, or its
//!   data is stuck behind an application that does not take it. Nothing is pinned longer;
//! - a live peer that sends something (its pings) at least once per `idle_timeout` is never
//!   closed as idle while the application brings its inbound queue below the budget at least
//!   once per `idle_timeout`: each time it does, the reader queues the message it held and
//!   reads on, and every frame read counts. One message taken may not be enough: after a large
//!   message took the queue well over the budget, it takes as many as bring it back below. An
//!   application that leaves its queue at or over the budget for a whole `idle_timeout` gets
//!   its peer closed, as Python `websockets` does when its paused reader leaves a keepalive
//!   pong unread.
//!
//! On the client the same holds with the core's tolerance, `(max_missed_pongs - 1) x
//! ping_interval + pong_timeout` (3.8 s with one-second pings, 800 ms pong timeout and 4
//! misses; 55 s with the defaults), in place of `idle_timeout`:
//! - a server from which nothing is read (its end of stream included) goes unanswered, its
//!   pings miss, and the core gives it up within its detection bound
//!   ([`heartbeat_core::Guarantees::detection_bound`]), then reconnects with backoff, whatever
//!   the application does;
//! - a live server is never given up for missed pongs while the application brings its inbound
//!   queue below the budget at least once per that tolerance: each time, the client queues the
//!   message it held and reads on, and the next frame read (a message or a pong) counts.
//!
//! A message held when a connection is given up stays first in line: it is queued before
//! anything from the next connection, which is not read until then. So while the application
//! takes nothing, every new connection is given up as a silent server's is, and the client
//! keeps reconnecting (with backoff) until the application takes messages again.
//!
//! Outbound, a full [`ServerConnection::sender`] or [`ClientHandle::sender`] budget
//! ([`Limits::outbound_budget`]) makes the application wait; heartbeat frames never queue
//! behind it, but a frame already being written to a slow socket is finished first. Besides the
//! frame being written, at most 16 heartbeat frames wait for the writer on either side (pongs
//! and pings, each under 64 bytes; a 17th drops the oldest), so a peer that floods pings and
//! reads nothing cannot grow them. A write stuck on a
//! peer that stopped reading does not stop the heartbeat's timer: such a peer is still closed
//! at its idle timeout.
//!
//! **A peer must take what we write, too.** Progress is judged per frame (tokio-tungstenite
//! does not report partial writes): a frame (heartbeat or application) that the peer has not
//! taken whole within a time limit of its write starting ends the connection, even if the peer
//! keeps sending and even if it is reading, only too slowly. A frame of `n` bytes so needs the
//! peer to read at least `n / limit`. A check that runs more than [`STALL_GRACE`] (1 s) late
//! (this process was not running) is put off once by [`STALL_GRACE`], as the core puts off its
//! idle verdict. No close frame is sent: it would queue behind the frame the peer does not take.
//! - The server's limit is `idle_timeout`: the connection ends as [`CloseCause::WriteStalled`].
//!   A frame of [`Limits::max_frame_size`] (1 MiB) within the default 60 s needs about
//!   17 KiB/s.
//! - The client's limit is the same tolerance, [`client::write_stall_time`]: a server that
//!   leaves our frames untaken that long has not read our pings among them either. The
//!   connection ends like a lost one (the core's `handle_disconnected`: a
//!   [`heartbeat_core::Event::Reconnect`] with `ConnectionClosed`, then backoff), so a server
//!   that floods pings and never reads is left, although every ping it sends is a sign of life.
//!   A 1 MiB message within the default 55 s needs about 19 KiB/s.
//!
//! **An abandoned connection closes.** Once the application has dropped both
//! [`ServerConnection::messages`] and every clone of [`ServerConnection::sender`] (a handler
//! that returned or panicked), the connection is closed with 1001 (going away) as
//! [`CloseCause::Application`], after what was already queued is written, and its
//! [`ConnectionLimit`] slot is free. Dropping only one of them keeps the connection.
//! [`ServerConnection::events`] never loses [`ConnectionEvent::Closed`]: round trips and
//! strikes are dropped while only one slot is free, and that slot is `Closed`'s.
//!
//! # Limits and protocol errors
//! Messages and frames over 1 MiB ([`Limits`]) are refused with close code 1009 (a frame from
//! its header alone), invalid UTF-8 with 1007, any other protocol violation (reserved opcodes
//! or bits, an unmasked client frame, a masked server frame) with 1002, on both sides; the
//! server reports each as [`CloseCause::Violation`] with that code. tungstenite enforces the
//! sizes while it reads, so they hold for a stream created with [`Limits::websocket_config`]:
//! [`accept`] and [`connect`] do that; a stream given to [`serve`] or made by a
//! [`connect_with`] connector without it keeps tungstenite's 64 MiB / 16 MiB.
//!
//! **The server's close frame is sent within a second of the close being carried out, or not
//! at all.** That second is shared with the rest of a frame being written when the close came
//! and the heartbeat frames owed before it: none of those is dropped (after the peer's close
//! frame tungstenite sends only its reply, so nothing is owed to that peer). A close decided
//! by the heartbeat, a protocol violation or the peer's close frame is carried out at once, so
//! it ends the connection ([`ConnectionEvent::Closed`], the [`ConnectionLimit`] slot given
//! back) at most a second later, even while a write is stuck. The application's
//! `WsMessage::Close(..)` and the 1001 for letting go keep their place in the outbound queue:
//! they are carried out after the messages queued before them are written, each of which may
//! take up to `idle_timeout`; if one of those stalls, the connection ends as
//! [`CloseCause::WriteStalled`] without a close frame. Two closes send no frame and end the
//! connection at once: the idle timeout found by the timer of a write that is stuck, and
//! [`CloseCause::WriteStalled`]; any other close that comes while a write is stuck winds down
//! as above and is reported with its own cause. Once the close is decided, nothing follows:
//! the reader reads on (for the peer's close frame, for at most one more second after
//! `Closed`, and only if our close frame went out) and discards what it reads, so no round
//! trip, strike, close or message comes after [`ConnectionEvent::Closed`]. Protocol Ping frames
//! are policed as JSON pings: a flood is closed with 1008. [`accept`] gives the whole handshake
//! [`ServerOptions::handshake_timeout`] (10 s), can refuse with HTTP 503 over
//! [`ServerOptions::max_connections`] (a handshake in progress holds a slot), and
//! [`accept_with`] lets the application vet the upgrade request (path, `Origin`) first.
//!
//! # Time
//! [`Clock`] is the one place time enters: `tokio::time::Instant` converted to the core's
//! [`heartbeat_core::Instant`]. Tests use `tokio::time::pause()`.
//!
//! # Observability
//! Tracing events use the story's names (`websocket.heartbeat_missed_pong` with `missed_pongs`
//! and `max_missed_pongs`, `websocket.slow_connection_detected`, `websocket.heartbeat_reconnect`
//! with `reason`, `websocket.heartbeat_recovered`, `websocket.heartbeat_server_close`); metrics
//! go through the `metrics` facade under the names in [`observe`].

pub mod client;
pub mod clock;
pub mod limits;
pub mod observe;
pub mod queue;
pub mod server;
mod write;

pub use client::{connect, connect_with, ClientHandle, ClientOptions, ClientStatus};
pub use clock::Clock;
pub use limits::Limits;
pub use queue::{Inbox, MessageSender, SendError};
pub use server::{
    accept, accept_with, serve, AcceptError, CloseCause, ConnectionEvent, ConnectionLimit,
    ServerConnection, ServerOptions, STALL_GRACE,
};

/// How heartbeat pings are put on the wire.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PingStyle {
    /// `{"type":"ping","seq":7}` text frames, answered by `{"type":"pong","seq":7}`: what the
    /// story's frontend and every heartbeat peer speak.
    #[default]
    Json,
    /// Protocol-level Ping frames carrying the seq as 8 big-endian bytes; every WebSocket
    /// implementation (browsers, Python `websockets`) answers them by itself.
    Protocol,
}

/// A one-thread tokio runtime on its own OS thread, for sockets and heartbeats only.
///
/// Spawn the accept loop on [`IoThread::handle`]; connections served from there keep their
/// reader and writer on this thread. Dropping it shuts the runtime down.
#[derive(Debug)]
pub struct IoThread {
    handle: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl IoThread {
    /// Starts the thread.
    ///
    /// # Errors
    /// The runtime or the thread could not be created.
    pub fn spawn(name: &str) -> std::io::Result<IoThread> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = rt.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                rt.block_on(async {
                    let _ = stopped.await;
                });
            })?;
        Ok(IoThread {
            handle,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The runtime's handle: spawn the accept loop here.
    #[must_use]
    pub fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }
}

impl Drop for IoThread {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Loads the configuration the way the `heartbeat` CLI does: the file at `path` if given
/// (YAML, TOML or JSON by extension; either layout), then `HEARTBEAT_<SECTION>__<FIELD>`
/// environment overrides, then every validation rule.
///
/// # Errors
/// A readable message: the file, the parse error with its line, or every broken rule.
pub fn load_config(path: Option<&std::path::Path>) -> Result<heartbeat_core::Config, String> {
    let text = match path {
        Some(p) => Some(std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?),
        None => None,
    };
    let shown = path.map(|p| p.display().to_string());
    let file = shown.as_deref().zip(text.as_deref());
    let (config, _) =
        heartbeat_core::load::resolve(file, std::env::vars()).map_err(|e| {
            match (&shown, e.is_override()) {
                (Some(path), false) => format!("{path}: {e}"),
                _ => e.to_string(),
            }
        })?;
    config.validate().into_result().map_err(|e| e.to_string())?;
    Ok(config)
}
