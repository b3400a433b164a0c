//! The server side: heartbeats for one accepted WebSocket, on two small tasks.
//!
//! - The **reader** task reads frames. Heartbeats (`{"type":"ping"}` text frames, protocol Ping
//!   and Pong frames) are handled right there: the core [`Server`] queues the pong from the very
//!   call that takes the ping, and the reader hands it to the writer ahead of everything else.
//!   Application frames go to the application through a bounded channel.
//! - The **writer** task owns the socket's write half. It writes heartbeat frames first, then
//!   queued application frames, and runs the core's timer (own pings, idle close).
//!
//! Once the close is decided (by the core, the reader or the writer), the reader feeds nothing
//! more to the core or the application: it reads on only for the peer's close frame and
//! discards the rest, so nothing follows [`ConnectionEvent::Closed`].
//!
//! Neither task ever runs application code: the application reads [`ServerConnection::messages`]
//! wherever it likes. Run the accept loop and these tasks on a runtime that does nothing else
//! (see [`crate::IoThread`]) and the application's CPU-heavy work on another, and a busy handler
//! can never delay a pong.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{FutureExt, SinkExt, StreamExt};
use heartbeat_core::{
    CloseReason, ConfigErrors, DecodeError, Instant, Message, Server, ServerConfig, ServerEvent,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};
use tokio_tungstenite::WebSocketStream;
use tracing::{debug, info, warn};

use crate::clock::Clock;
use crate::limits::{close_for, Limits};
use crate::observe;
use crate::queue::{self, Budget, Inbox, InboxClosed, InboxSender, MessageSender, Outgoing};
use crate::write::{push_capped, WriteDeadline};
use crate::PingStyle;

pub use heartbeat_core::server::STALL_GRACE;

/// How long the reader keeps reading (for the peer's close frame) once the writer is done, and
/// how long a close frame, with the heartbeat frames owed before it, may take to write.
const LINGER: Duration = Duration::from_secs(1);

/// Events a connection reports before `Closed`, at most; one more slot is kept for `Closed`.
const EVENTS: usize = 64;

/// How a connection is served.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// The heartbeat settings (validated when the connection is served).
    pub config: ServerConfig,
    /// Message and frame size limits, byte budgets and the read buffer of each connection.
    pub limits: Limits,
    /// How the server sends its own pings. Pongs always answer in the form of the ping.
    pub pings: PingStyle,
    /// How long [`accept`] and [`accept_with`] give the whole handshake, from the first byte
    /// awaited to the response written (not per read: a peer dripping one byte at a time gets
    /// no longer). Default 10 s.
    pub handshake_timeout: Duration,
    /// Shared by every connection accepted with these options: over the limit, [`accept`]
    /// answers HTTP 503. A handshake in progress holds a slot. Default: no limit.
    pub max_connections: Option<ConnectionLimit>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            config: ServerConfig::default(),
            limits: Limits::default(),
            pings: PingStyle::Json,
            handshake_timeout: Duration::from_secs(10),
            max_connections: None,
        }
    }
}

/// At most this many connections at once, across every [`accept`] that shares it (clones share
/// the count).
#[derive(Clone, Debug)]
pub struct ConnectionLimit {
    slots: Arc<Semaphore>,
    max: usize,
}

impl ConnectionLimit {
    /// A limit of `max` connections.
    #[must_use]
    pub fn new(max: usize) -> ConnectionLimit {
        let max = max.min(Semaphore::MAX_PERMITS);
        ConnectionLimit {
            slots: Arc::new(Semaphore::new(max)),
            max,
        }
    }

    /// Connections (and handshakes in progress) that can still be taken on now.
    #[must_use]
    pub fn available(&self) -> usize {
        self.slots.available_permits()
    }
}

/// Why [`accept`] or [`accept_with`] did not produce a connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AcceptError {
    /// The handshake did not complete within [`ServerOptions::handshake_timeout`].
    #[error("the WebSocket handshake took longer than {0:?}")]
    HandshakeTimeout(Duration),
    /// The vetting hook refused the upgrade; this HTTP status was sent.
    #[error("the upgrade request was refused with HTTP {status}")]
    Rejected {
        /// The HTTP status sent.
        status: u16,
    },
    /// [`ServerOptions::max_connections`] were already open; HTTP 503 was sent.
    #[error("refused with HTTP 503: {max} connections already open")]
    TooManyConnections {
        /// The limit.
        max: usize,
    },
    /// The handshake failed (not a WebSocket upgrade, the peer went away, I/O).
    #[error("the WebSocket handshake failed: {0}")]
    Handshake(#[source] tungstenite::Error),
    /// The server config breaks its own rules.
    #[error(transparent)]
    Config(#[from] ConfigErrors),
}

/// Why a served connection ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseCause {
    /// The heartbeat closed it ([`CloseReason::close_code`] was sent, within a second or not
    /// at all; not at all for an idle timeout found by the timer of a write that was stuck).
    Heartbeat(CloseReason),
    /// The peer sent a close frame (with this code, if any) or ended the stream.
    Peer {
        /// The close code the peer sent.
        code: Option<u16>,
    },
    /// The application closed it: it sent `WsMessage::Close(..)` (that frame was sent, after
    /// the messages queued before it, within a second or not at all), or it let go of both its
    /// sides, the [`ServerConnection::messages`] inbox and every [`MessageSender`] (1001, going
    /// away, was sent the same way).
    Application,
    /// The peer did not take a whole frame within `idle_timeout` of its write starting: a frame
    /// we were writing (a heartbeat, an application frame, or one queued before the
    /// application's close) was still not written out, even if the peer was reading, only too
    /// slowly (a frame of `n` bytes needs at least `n / idle_timeout`: about 17 KiB/s for 1 MiB
    /// at the default 60 s). A check that ran more than [`STALL_GRACE`] late was put off once
    /// by [`STALL_GRACE`]. The socket was dropped without a close frame, which would have
    /// queued behind that frame.
    WriteStalled,
    /// The peer broke the protocol or a size limit; a close frame with this code was sent,
    /// within a second or not at all (1007 invalid UTF-8, 1009 message or frame too big, 1002
    /// any other protocol error).
    Violation {
        /// The close code sent.
        code: u16,
        /// What the peer did, as tungstenite reported it.
        error: String,
    },
    /// Reading or writing failed.
    Error(String),
}

/// What happened on a connection; drained from [`ServerConnection::events`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionEvent {
    /// A round trip of the server's own ping.
    Rtt(Duration),
    /// A client ping came too soon after the previous one.
    Strike {
        /// Consecutive strikes so far.
        strikes: u32,
    },
    /// The connection is over; nothing follows: what the peer sends after the close was
    /// decided reaches neither the heartbeat nor the application.
    Closed(CloseCause),
}

/// One served connection, as the application sees it.
#[derive(Debug)]
pub struct ServerConnection {
    /// A number unique in this process, for logs.
    pub id: u64,
    /// Application messages (text and binary frames that are not heartbeats), in order, within
    /// the inbound byte budget ([`Limits::inbound_budget`]). Ends when the connection ends.
    pub messages: Inbox,
    /// Application messages to send, within the outbound byte budget
    /// ([`Limits::outbound_budget`]). They queue behind no heartbeat: heartbeat frames always
    /// go first. Sending `WsMessage::Close(..)` closes the connection once the messages queued
    /// before it are written (each may take up to `idle_timeout`; one that the peer does not
    /// take ends the connection as [`CloseCause::WriteStalled`], with no close frame);
    /// messages queued after it are not sent.
    ///
    /// Once the application has dropped both `messages` and every clone of `sender` (a
    /// handler that returned or panicked), the connection is closed with 1001 (going away),
    /// [`CloseCause::Application`], the same way: after the messages already queued here are
    /// written. Dropping only one of them keeps the connection.
    pub sender: MessageSender,
    /// Round trips, strikes and the close, bounded (65 slots). Nothing blocks the connection if
    /// nobody drains them: round trips and strikes are dropped while only one slot is free,
    /// which keeps that slot for [`ConnectionEvent::Closed`], so `Closed` is never lost.
    pub events: mpsc::Receiver<ConnectionEvent>,
}

/// State shared by the reader and the writer of one connection. The lock is held for a few
/// core calls, never across an await.
struct Shared {
    inner: Mutex<Inner>,
    /// Heartbeat frames or a close are waiting, or the reader stopped.
    wake_writer: Notify,
    /// Set once by the writer when it is done; a state, not a wake-up, so that every wait of
    /// the reader sees it, however many there are.
    stop_reader: watch::Sender<Stop>,
    clock: Clock,
    id: u64,
    pings: PingStyle,
    /// A frame not taken whole within this long of its write starting ends the connection
    /// ([`CloseCause::WriteStalled`]).
    idle_timeout: Duration,
    events: mpsc::Sender<ConnectionEvent>,
}

/// What the writer, once done, tells the reader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    /// The writer is still running.
    Running,
    /// A close frame was sent: read on for at most [`LINGER`], for the peer's close frame.
    Linger,
    /// No close frame went out (a write stuck or failed): let go of the socket now.
    Now,
}

struct Inner {
    hb: Server,
    outbox: VecDeque<WsMessage>,
    close: Option<CloseReason>,
    /// The reader is done (peer closed, error), or has read the peer's close frame: the
    /// writer winds down. (After the peer's close frame the reader may not finish by itself:
    /// tungstenite's reply to it can be stuck behind a frame the peer does not take.)
    reader_done: bool,
    /// The close frame the reader's error calls for (a protocol or size violation).
    violation: Option<CloseFrame>,
    /// Why the reader stopped, if it saw why.
    peer_cause: Option<CloseCause>,
    /// The peer's close frame was read: tungstenite sends nothing after it but its reply.
    close_read: bool,
    /// The writer decided the close itself (the application's close or its letting go, a
    /// write stuck or failed).
    ending: bool,
}

impl Inner {
    /// The close is decided: from here on the reader only reads (for the peer's close frame)
    /// and discards, so nothing reaches the core or the application, and nothing follows
    /// [`ConnectionEvent::Closed`].
    fn decided(&self) -> bool {
        self.close.is_some() || self.reader_done || self.ending
    }
}

impl Shared {
    fn new(
        options: &ServerOptions,
        id: u64,
        events: mpsc::Sender<ConnectionEvent>,
    ) -> Result<Shared, ConfigErrors> {
        let clock = Clock::new();
        let hb = Server::new(&options.config, clock.now())?;
        Ok(Shared {
            inner: Mutex::new(Inner {
                hb,
                outbox: VecDeque::new(),
                close: None,
                reader_done: false,
                violation: None,
                peer_cause: None,
                close_read: false,
                ending: false,
            }),
            wake_writer: Notify::new(),
            stop_reader: watch::Sender::new(Stop::Running),
            clock,
            id,
            pings: options.pings,
            idle_timeout: options.config.idle_timeout,
            events,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Reports an event other than `Closed`, if more than one slot is free: the last slot is
    /// `Closed`'s. Called with the lock held (from [`Shared::drain`]), like [`Shared::closed`],
    /// so that no two events race for the last slots.
    fn event(&self, event: ConnectionEvent) {
        if self.events.capacity() > 1 {
            let _ = self.events.try_send(event);
        }
    }

    /// Reports the end of the connection, in the slot every other event left free.
    fn closed(&self, cause: CloseCause) {
        let _inner = self.lock();
        let _ = self.events.try_send(ConnectionEvent::Closed(cause));
    }

    /// Drains the core's outputs after an input. Returns true if the writer has work.
    fn drain(&self, inner: &mut Inner) -> bool {
        let mut work = false;
        while let Some(m) = inner.hb.poll_transmit() {
            let frame = match (m, self.pings) {
                (Message::Ping { seq }, PingStyle::Protocol) => {
                    WsMessage::Ping(seq.to_be_bytes().to_vec().into())
                }
                _ => text_of(m),
            };
            push_capped(&mut inner.outbox, frame);
            work = true;
        }
        while let Some(e) = inner.hb.poll_event() {
            match e {
                ServerEvent::Close(reason) => {
                    warn!(
                        name: "websocket.heartbeat_server_close",
                        connection = self.id,
                        reason = reason.as_str(),
                        code = reason.close_code(),
                        "closing connection"
                    );
                    metrics::counter!(observe::SERVER_CLOSES_TOTAL, "reason" => reason.as_str())
                        .increment(1);
                    inner.close = Some(reason);
                    work = true;
                }
                ServerEvent::Rtt(rtt) => {
                    debug!(name: "websocket.heartbeat_rtt", connection = self.id, rtt_ms = rtt.as_secs_f64() * 1e3);
                    observe::rtt("server", rtt);
                    self.event(ConnectionEvent::Rtt(rtt));
                }
                ServerEvent::Strike { strikes } => {
                    warn!(name: "websocket.heartbeat_ping_strike", connection = self.id, strikes);
                    metrics::counter!(observe::PING_STRIKES_TOTAL).increment(1);
                    self.event(ConnectionEvent::Strike { strikes });
                }
            }
        }
        work
    }
}

pub(crate) fn text_of(m: Message) -> WsMessage {
    let mut buf = [0; heartbeat_core::wire::MAX_ENCODED_LEN];
    WsMessage::text(m.to_json(&mut buf).to_owned())
}

/// The seq a protocol Pong frame carries back, if it answers one of our protocol pings.
pub(crate) fn seq_of_pong(payload: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(payload).ok().map(u64::from_be_bytes)
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Accepts a WebSocket handshake on `stream` within [`ServerOptions::handshake_timeout`], with
/// the size limits of [`ServerOptions::limits`], and serves it with [`serve`].
///
/// # Errors
/// The handshake failed or timed out, the connection limit was reached, or the config is invalid.
pub async fn accept<S>(stream: S, options: &ServerOptions) -> Result<ServerConnection, AcceptError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    accept_with(stream, options, |_: &Request| Ok(())).await
}

/// Like [`accept`], with `vet` deciding on the upgrade request (path, `Origin`, headers) before
/// anything is answered: `Err(status)` refuses it with that HTTP status (403, 404, ...).
///
/// An allow-list: upgrades on `/ws` only, from clients that send no `Origin` (not a browser) or
/// from the application's own pages.
///
/// ```no_run
/// use heartbeat_tokio::{accept_with, ServerOptions};
/// use tokio_tungstenite::tungstenite::handshake::server::Request;
/// use tokio_tungstenite::tungstenite::http::StatusCode;
///
/// const ORIGINS: [&str; 2] = ["https://app.example", "http://127.0.0.1:8080"];
///
/// fn vet(request: &Request) -> Result<(), StatusCode> {
///     if request.uri().path() != "/ws" {
///         return Err(StatusCode::NOT_FOUND);
///     }
///     match request.headers().get("origin").map(|o| o.to_str()) {
///         None => Ok(()),
///         Some(Ok(origin)) if ORIGINS.contains(&origin) => Ok(()),
///         Some(_) => Err(StatusCode::FORBIDDEN),
///     }
/// }
///
/// # async fn run() -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:9001").await?;
/// let options = ServerOptions::default();
/// loop {
///     let (tcp, _) = listener.accept().await?;
///     let options = options.clone();
///     tokio::spawn(async move {
///         if let Ok(mut conn) = accept_with(tcp, &options, vet).await {
///             while let Some(message) = conn.messages.recv().await {
///                 let _ = conn.sender.send(message).await;
///             }
///         }
///     });
/// }
/// # }
/// ```
///
/// # Errors
/// As [`accept`], and [`AcceptError::Rejected`] when `vet` refused.
pub async fn accept_with<S, V>(
    stream: S,
    options: &ServerOptions,
    vet: V,
) -> Result<ServerConnection, AcceptError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    V: FnOnce(&Request) -> Result<(), StatusCode> + Send + Unpin,
{
    // A handshake in progress holds a slot, so half-open handshakes count against the limit.
    let (slot, busy) = match &options.max_connections {
        Some(limit) => match Arc::clone(&limit.slots).try_acquire_owned() {
            Ok(slot) => (Some(slot), None),
            Err(_) => (None, Some(limit.max)),
        },
        None => (None, None),
    };
    // tungstenite's callback type fixes the (large) error type.
    #[allow(clippy::result_large_err)]
    let callback = move |request: &Request, response: Response| {
        let verdict = match busy {
            Some(_) => Err(StatusCode::SERVICE_UNAVAILABLE),
            None => vet(request),
        };
        verdict.map(|()| response).map_err(refusal)
    };
    let handshake = tokio_tungstenite::accept_hdr_async_with_config(
        stream,
        callback,
        Some(options.limits.websocket_config()),
    );
    let ws = match tokio::time::timeout(options.handshake_timeout, handshake).await {
        Err(_) => return Err(AcceptError::HandshakeTimeout(options.handshake_timeout)),
        Ok(Err(tungstenite::Error::Http(response))) => {
            return Err(match busy {
                Some(max) => AcceptError::TooManyConnections { max },
                None => AcceptError::Rejected {
                    status: response.status().as_u16(),
                },
            })
        }
        Ok(Err(e)) => return Err(AcceptError::Handshake(e)),
        Ok(Ok(ws)) => ws,
    };
    Ok(start(ws, options, slot)?)
}

/// The response refusing an upgrade with `status`.
fn refusal(status: StatusCode) -> ErrorResponse {
    let mut response = ErrorResponse::new(Some(
        status.canonical_reason().unwrap_or("refused").to_owned(),
    ));
    *response.status_mut() = status;
    response
}

/// Serves heartbeats on an accepted WebSocket: spawns its reader and writer on the current
/// tokio runtime and returns the application's side of it.
///
/// The message and frame size limits are those `ws` was created with (tungstenite enforces
/// them while reading): create it with [`Limits::websocket_config`] of `options.limits`. The
/// byte budgets come from `options`.
///
/// # Errors
/// The server config breaks its own rules.
pub fn serve<S>(
    ws: WebSocketStream<S>,
    options: &ServerOptions,
) -> Result<ServerConnection, ConfigErrors>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    start(ws, options, None)
}

fn start<S>(
    ws: WebSocketStream<S>,
    options: &ServerOptions,
    slot: Option<OwnedSemaphorePermit>,
) -> Result<ServerConnection, ConfigErrors>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let (ev_tx, ev_rx) = mpsc::channel(EVENTS + 1);
    let shared = Arc::new(Shared::new(options, id, ev_tx)?);
    let (in_tx, in_rx) = queue::inbox(options.limits.inbound_budget);
    let (out_tx, out_rx, out_budget) = queue::outbox(options.limits.outbound_budget);
    let (sink, stream) = ws.split();
    metrics::gauge!(observe::SERVER_CONNECTIONS).increment(1.0);
    debug!(name: "websocket.connection_open", connection = id);
    let inbox_closed = in_tx.watch_closed();
    tokio::spawn(reader(stream, Arc::clone(&shared), in_tx));
    tokio::spawn(writer(sink, shared, out_rx, out_budget, inbox_closed, slot));
    Ok(ServerConnection {
        id,
        messages: in_rx,
        sender: out_tx,
        events: ev_rx,
    })
}

async fn reader<S>(
    mut stream: SplitStream<WebSocketStream<S>>,
    shared: Arc<Shared>,
    app: InboxSender,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut stop = shared.stop_reader.subscribe();
    let mut linger: Option<tokio::time::Instant> = None;
    let cause = loop {
        let far = tokio::time::Instant::now() + Duration::from_secs(3600);
        let next = tokio::select! {
            next = stream.next() => next,
            s = stopped(&mut stop), if linger.is_none() => match s {
                Stop::Linger => {
                    linger = Some(tokio::time::Instant::now() + LINGER);
                    continue;
                }
                Stop::Running | Stop::Now => break CloseCause::Peer { code: None },
            },
            () = tokio::time::sleep_until(linger.unwrap_or(far)), if linger.is_some() => {
                break CloseCause::Peer { code: None };
            }
        };
        let Some(frame) = next else {
            break CloseCause::Peer { code: None };
        };
        let now = shared.clock.now();
        let frame = match frame {
            // Once the close is decided, what is read is only looked at for the end of the
            // stream: no core call, no event, no message.
            Ok(_) if shared.lock().decided() => continue,
            Ok(f) => f,
            Err(e) => {
                let Some(close) = close_for(&e) else {
                    break CloseCause::Error(e.to_string());
                };
                let cause = CloseCause::Violation {
                    code: u16::from(close.code),
                    error: e.to_string(),
                };
                shared.lock().violation = Some(close);
                break cause;
            }
        };
        let forward = match frame {
            // Only exact heartbeats are taken out; any other text, however much it looks like
            // one, is the application's.
            WsMessage::Text(ref text) => match Message::from_json(text.as_str()) {
                Ok(m) => {
                    heartbeat(&shared, |hb| hb.handle_message(now, m));
                    false
                }
                Err(DecodeError::NotHeartbeat) => true,
            },
            WsMessage::Binary(_) => true,
            // Policed as a JSON ping; tungstenite has already queued the Pong, which leaves
            // with the next read or write.
            WsMessage::Ping(_) => {
                heartbeat(&shared, |hb| hb.handle_protocol_ping(now));
                false
            }
            WsMessage::Pong(ref payload) => {
                match seq_of_pong(payload) {
                    Some(seq) => heartbeat(&shared, |hb| {
                        hb.handle_message(now, Message::Pong { seq });
                    }),
                    None => read(&shared, now),
                }
                false
            }
            WsMessage::Close(ref frame) => {
                let code = frame.as_ref().map(|f| u16::from(f.code));
                {
                    let mut inner = shared.lock();
                    inner.peer_cause = Some(CloseCause::Peer { code });
                    inner.close_read = true;
                    inner.reader_done = true;
                }
                shared.wake_writer.notify_one();
                false
            }
            WsMessage::Frame(_) => false,
        };
        if !forward {
            continue;
        }
        // A message is queued whenever the bytes queued are below the inbound budget, even if
        // it takes them over. At or over the budget, the reader holds this one message and
        // reads nothing more until the application brings the queue below the budget. Waiting
        // earns the peer no credit: liveness is what is read (see the crate docs,
        // "Backpressure, honestly"), so a peer that sends nothing more is closed at its idle
        // timeout however long the application takes. The copy is made outside the lock; the
        // decision and the queueing under it, so nothing is queued once the close is decided.
        let frame = queue::detached(frame);
        let pushed = {
            let mut inner = shared.lock();
            if inner.decided() {
                continue;
            }
            inner.hb.handle_read(now);
            app.try_push_detached(frame)
        };
        if let Err(held) = pushed {
            tokio::select! {
                () = app.below_budget() => {
                    let inner = shared.lock();
                    if !inner.decided() {
                        app.push(held);
                    }
                }
                // The application stopped listening; heartbeats go on.
                () = app.closed() => {}
                // The writer is done (now or earlier): nothing is worth holding for.
                _ = stopped(&mut stop) => break CloseCause::Peer { code: None },
            }
        }
    };
    {
        let mut inner = shared.lock();
        inner.reader_done = true;
        if inner.peer_cause.is_none() {
            inner.peer_cause = Some(cause);
        }
    }
    shared.wake_writer.notify_one();
}

/// Resolves once the writer is done (at once if it already is), with what it said.
async fn stopped(stop: &mut watch::Receiver<Stop>) -> Stop {
    match stop.wait_for(|s| *s != Stop::Running).await {
        Ok(s) => *s,
        Err(_) => Stop::Now,
    }
}

/// When the writer must next wake for the core's timer.
fn next_wake(shared: &Shared) -> tokio::time::Instant {
    let deadline = shared.lock().hb.poll_timeout();
    shared.clock.to_tokio(deadline.unwrap_or(Instant::MAX))
}

/// The core's timer fired. A wake-up much later than asked (this process was not running) is
/// the core's to judge: it puts its idle verdict off by `STALL_GRACE` so the reader goes first.
fn on_timer(shared: &Shared) {
    let now = shared.clock.from_tokio(tokio::time::Instant::now());
    let mut inner = shared.lock();
    if inner.decided() {
        return;
    }
    inner.hb.handle_timeout(now);
    shared.drain(&mut inner);
}

/// Why [`send_timed`] gave up a frame.
enum Interrupted {
    /// A close was decided (by the reader's heartbeat input) or the reader stopped: the
    /// writer winds down, sending what it owes within [`LINGER`]. The frame given up is
    /// already the sink's: it leaves whole before anything else.
    WindDown,
    /// The connection ends at once, without a close frame: the peer is not taking the frame
    /// (the idle timeout found by this write's timer, or [`CloseCause::WriteStalled`]) or the
    /// write failed.
    End(CloseCause),
}

/// Writes one frame while the core's timer keeps running, so that a peer that stopped reading
/// (its socket full, the write blocked) is still closed at its idle timeout, and a peer that
/// has not taken the frame whole within `idle_timeout` of its write starting is closed even if
/// it keeps sending ([`CloseCause::WriteStalled`]; a check that runs more than
/// [`STALL_GRACE`] late is put off once by [`STALL_GRACE`]). Gives the frame up as soon as a
/// close is decided or the reader stops, so that the connection ends as it should, not when
/// the frame is taken.
async fn send_timed<S>(
    sink: &mut SplitSink<WebSocketStream<S>, WsMessage>,
    frame: WsMessage,
    shared: &Shared,
) -> Result<(), Interrupted>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut deadline = WriteDeadline::start(shared.idle_timeout);
    let mut send = std::pin::pin!(sink.send(frame));
    // The first poll hands the frame to the sink (the split half's slot, then tungstenite's
    // write buffer), so that a frame given up from here on still leaves whole, first.
    if let Some(r) = (&mut send).now_or_never() {
        return r.map_err(|e| Interrupted::End(write_failed(shared, &e)));
    }
    loop {
        if winding_down(shared) {
            return Err(Interrupted::WindDown);
        }
        let wake = next_wake(shared).min(deadline.at());
        tokio::select! {
            biased;
            r = &mut send => {
                return r.map_err(|e| Interrupted::End(write_failed(shared, &e)));
            }
            () = shared.wake_writer.notified() => {}
            () = tokio::time::sleep_until(wake) => {
                // A close decided elsewhere whose wake-up this timer beat (the two can cross
                // on a multi-thread runtime) winds down like any other.
                if winding_down(shared) {
                    return Err(Interrupted::WindDown);
                }
                on_timer(shared);
                if let Some(reason) = shared.lock().close {
                    // This timer found nothing read for idle_timeout while the write is stuck:
                    // the peer is gone; a close frame would queue behind the stuck frame.
                    // Drop the socket.
                    return Err(Interrupted::End(CloseCause::Heartbeat(reason)));
                }
                if deadline.stalled(tokio::time::Instant::now()) {
                    return Err(Interrupted::End(CloseCause::WriteStalled));
                }
            }
        }
    }
}

/// A close is decided or the reader has stopped.
fn winding_down(shared: &Shared) -> bool {
    let inner = shared.lock();
    inner.close.is_some() || inner.reader_done
}

/// A failed write after the peer's close frame is that close, not an error.
fn write_failed(shared: &Shared, e: &tungstenite::Error) -> CloseCause {
    match shared.lock().peer_cause.clone() {
        Some(cause @ CloseCause::Peer { code: Some(_) }) => cause,
        _ => CloseCause::Error(e.to_string()),
    }
}

/// Hands a heartbeat input to the core and wakes the writer if it has something to send.
fn heartbeat(shared: &Shared, input: impl FnOnce(&mut Server)) {
    let work = {
        let mut inner = shared.lock();
        if inner.decided() {
            return;
        }
        input(&mut inner.hb);
        shared.drain(&mut inner)
    };
    if work {
        shared.wake_writer.notify_one();
    }
}

fn read(shared: &Shared, now: Instant) {
    let mut inner = shared.lock();
    if !inner.decided() {
        inner.hb.handle_read(now);
    }
}

async fn writer<S>(
    mut sink: SplitSink<WebSocketStream<S>, WsMessage>,
    shared: Arc<Shared>,
    mut app: Outgoing,
    budget: Budget,
    inbox: InboxClosed,
    slot: Option<OwnedSemaphorePermit>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut app_open = true;
    // The close frame of a close the application decided: its `WsMessage::Close(..)`, taken
    // in turn after the messages queued before it, or 1001 once it let go.
    let mut app_close: Option<Option<CloseFrame>> = None;
    let (cause, stop) = 'outer: loop {
        let (close, done) = {
            let mut inner = shared.lock();
            if app_close.is_some() {
                inner.ending = true;
            }
            (inner.close, inner.reader_done)
        };
        if close.is_some() || done || app_close.is_some() {
            // The close message to send; `None`: tungstenite's own (its reply to the peer's).
            let (cause, last) = match (close, app_close.take()) {
                (Some(reason), _) => (
                    CloseCause::Heartbeat(reason),
                    Some(WsMessage::Close(Some(CloseFrame {
                        code: CloseCode::from(reason.close_code()),
                        reason: reason.as_str().into(),
                    }))),
                ),
                (None, Some(frame)) => (CloseCause::Application, Some(WsMessage::Close(frame))),
                (None, None) => {
                    let mut inner = shared.lock();
                    let cause = inner
                        .peer_cause
                        .clone()
                        .unwrap_or(CloseCause::Peer { code: None });
                    let last = inner
                        .violation
                        .take()
                        .map(|frame| WsMessage::Close(Some(frame)));
                    (cause, last)
                }
            };
            // The rest of a frame given up mid-write (the sink's already), the heartbeat
            // frames owed, and the close frame share one LINGER: the close frame is sent
            // within a second or not at all. After the peer's close frame tungstenite sends
            // nothing but its reply, so the heartbeat frames owed to that peer are dropped.
            let sent = tokio::time::timeout(LINGER, async {
                loop {
                    let next = {
                        let mut inner = shared.lock();
                        if inner.close_read {
                            inner.outbox.clear();
                        }
                        inner.outbox.pop_front()
                    };
                    let Some(f) = next else { break };
                    sink.send(f).await?;
                }
                match last {
                    Some(close) => sink.send(close).await,
                    None => sink.close().await,
                }
            })
            .await;
            break (cause, linger_if_sent(&sent));
        }
        // Heartbeat frames first, always, one at a time: those not yet written stay in the
        // outbox, so a close decided meanwhile still sends them, in order, before its frame.
        loop {
            let next = shared.lock().outbox.pop_front();
            let Some(f) = next else { break };
            match send_timed(&mut sink, f, &shared).await {
                Ok(()) => {}
                Err(Interrupted::WindDown) => continue 'outer,
                Err(Interrupted::End(cause)) => break 'outer (cause, Stop::Now),
            }
        }
        let wake = next_wake(&shared);
        tokio::select! {
            biased;
            () = shared.wake_writer.notified() => {}
            () = tokio::time::sleep_until(wake) => on_timer(&shared),
            // In order: a Close is taken after every message queued before it was written. A
            // message that stalls ends the connection as WriteStalled, without the Close.
            m = app.recv(), if app_open => match m.map(queue::Charged::split) {
                Some((WsMessage::Close(frame), _)) => app_close = Some(frame),
                // The message keeps its budget until it is written.
                Some((m, _charged)) => match send_timed(&mut sink, m, &shared).await {
                    Ok(()) | Err(Interrupted::WindDown) => {}
                    Err(Interrupted::End(cause)) => break (cause, Stop::Now),
                },
                None => app_open = false,
            },
            // Every sender is gone (and what they queued written) and so is the inbox: the
            // application let go of the connection (its handler returned or panicked).
            () = inbox.closed(), if !app_open => {
                app_close = Some(Some(CloseFrame {
                    code: CloseCode::Away,
                    reason: "going away".into(),
                }));
            }
        }
    };
    // Whatever ended it, the close is decided: the reader feeds nothing more to the core or
    // the application.
    shared.lock().ending = true;
    // Senders waiting for budget learn that the connection is over.
    budget.close();
    drop(app);
    drop(inbox);
    // The connection is over for the limit once its close is decided; the reader may linger
    // for the peer's close frame, at most LINGER.
    drop(slot);
    shared.stop_reader.send_replace(stop);
    metrics::gauge!(observe::SERVER_CONNECTIONS).decrement(1.0);
    info!(name: "websocket.connection_closed", connection = shared.id, cause = ?cause);
    shared.closed(cause);
}

/// The reader lingers for the peer's close frame only if ours went out.
fn linger_if_sent<E>(sent: &Result<Result<(), E>, tokio::time::error::Elapsed>) -> Stop {
    match sent {
        Ok(Ok(())) => Stop::Linger,
        _ => Stop::Now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heartbeat_core::CloseReason;
    use tokio_tungstenite::tungstenite::protocol::Role;

    #[tokio::test(start_paused = true)]
    async fn a_close_decided_elsewhere_that_the_timer_sees_first_winds_down() {
        // The reader decides a 1008 close while a write is stuck; its wake-up is not seen
        // before the writer's timer fires (on a multi-thread runtime the two can cross). That
        // close is not the idle timeout found by this timer: the frame gets its second and the
        // close frame follows (WindDown), reported as TooManyPings by the writer.
        let options = ServerOptions {
            config: ServerConfig {
                ping_interval: Duration::from_secs(1),
                idle_timeout: Duration::from_secs(3),
                min_client_ping_interval: Duration::from_millis(500),
                max_ping_strikes: 2,
            },
            ..ServerOptions::default()
        };
        let (events, _keep) = mpsc::channel(EVENTS + 1);
        let shared = Shared::new(&options, 0, events).unwrap();
        let (socket, _peer) = tokio::io::duplex(64);
        let (mut sink, _stream) = WebSocketStream::from_raw_socket(socket, Role::Server, None)
            .await
            .split();
        let decide = async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            shared.lock().close = Some(CloseReason::TooManyPings);
        };
        let (sent, ()) = tokio::join!(
            send_timed(&mut sink, WsMessage::binary(vec![0u8; 1000]), &shared),
            decide
        );
        match sent {
            Err(Interrupted::WindDown) => {}
            Err(Interrupted::End(cause)) => panic!("ended at once as {cause:?}"),
            Ok(()) => panic!("the peer took the frame"),
        }
    }
}
