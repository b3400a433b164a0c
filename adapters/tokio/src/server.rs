//! The server side: heartbeats for one accepted WebSocket, on two small tasks.
//!
//! - The **reader** task reads frames. Heartbeats (`{"type":"ping"}` text frames, protocol Ping
//!   and Pong frames) are handled right there: the core [`Server`] queues the pong from the very
//!   call that takes the ping, and the reader hands it to the writer ahead of everything else.
//!   Application frames go to the application through a bounded channel.
//! - The **writer** task owns the socket's write half. It writes heartbeat frames first, then
//!   queued application frames, and runs the core's timer (own pings, idle close).
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
use futures_util::{SinkExt, StreamExt};
use heartbeat_core::{
    CloseReason, DecodeError, Instant, Message, Server, ServerConfig, ServerEvent,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, Notify};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};
use tokio_tungstenite::WebSocketStream;
use tracing::{debug, info, warn};

use crate::clock::Clock;
use crate::observe;
use crate::PingStyle;

pub use heartbeat_core::server::STALL_GRACE;

/// Heartbeat frames waiting for the writer; pongs collapse in the core, so this stays tiny.
const OUTBOX_CAP: usize = 16;

/// How long the reader keeps reading (for the peer's close frame) once the writer is done.
const LINGER: Duration = Duration::from_secs(1);

/// How a connection is served.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// The heartbeat settings (validated when the connection is served).
    pub config: ServerConfig,
    /// Application messages buffered towards the application, per connection. When full, this
    /// connection's reader waits: its peer is slowed down (TCP backpressure), nobody else is.
    pub inbound_capacity: usize,
    /// Application messages buffered towards the socket, per connection.
    pub outbound_capacity: usize,
    /// How the server sends its own pings. Pongs always answer in the form of the ping.
    pub pings: PingStyle,
    /// tungstenite's settings for [`accept`]. Its default read buffer is 128 KiB per
    /// connection, allocated at once; for many mostly idle connections use 4 KiB
    /// (`WebSocketConfig::default().read_buffer_size(4096)`), as the 10k-connection bench does.
    pub websocket: WebSocketConfig,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            config: ServerConfig::default(),
            inbound_capacity: 64,
            outbound_capacity: 64,
            pings: PingStyle::Json,
            websocket: WebSocketConfig::default(),
        }
    }
}

/// Why a served connection ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseCause {
    /// The heartbeat closed it ([`CloseReason::close_code`] was sent).
    Heartbeat(CloseReason),
    /// The peer sent a close frame (with this code, if any) or ended the stream.
    Peer {
        /// The close code the peer sent.
        code: Option<u16>,
    },
    /// The application sent a close frame.
    Application,
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
    /// The connection is over; nothing follows.
    Closed(CloseCause),
}

/// One served connection, as the application sees it.
#[derive(Debug)]
pub struct ServerConnection {
    /// A number unique in this process, for logs.
    pub id: u64,
    /// Application messages (text and binary frames that are not heartbeats), in order. Ends
    /// when the connection ends.
    pub messages: mpsc::Receiver<WsMessage>,
    /// Application messages to send. They queue behind no heartbeat: heartbeat frames always
    /// go first. Sending `WsMessage::Close(..)` closes the connection.
    pub sender: mpsc::Sender<WsMessage>,
    /// Round trips, strikes and the close, bounded (64); events are dropped, never blocking the
    /// connection, if nobody drains them.
    pub events: mpsc::Receiver<ConnectionEvent>,
}

/// State shared by the reader and the writer of one connection. The lock is held for a few
/// core calls, never across an await.
struct Shared {
    inner: Mutex<Inner>,
    wake_writer: Notify,
    /// The writer is done: the reader drains for at most [`LINGER`] more, then lets go.
    stop_reader: Notify,
    clock: Clock,
    id: u64,
    pings: PingStyle,
    events: mpsc::Sender<ConnectionEvent>,
}

struct Inner {
    hb: Server,
    outbox: VecDeque<WsMessage>,
    close: Option<CloseReason>,
    /// The reader holds an application message the application has no room for yet: data from
    /// the peer is waiting, so the peer is alive even though nothing new is being read.
    reader_waiting: bool,
    /// The reader is done (peer closed, error); the writer stops.
    reader_done: bool,
    /// Why the reader stopped, if it saw why.
    peer_cause: Option<CloseCause>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn event(&self, event: ConnectionEvent) {
        let _ = self.events.try_send(event);
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
            if inner.outbox.len() >= OUTBOX_CAP {
                inner.outbox.pop_front();
            }
            inner.outbox.push_back(frame);
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

/// Accepts a WebSocket handshake on `stream` and serves it with [`serve`].
///
/// # Errors
/// The handshake failed.
pub async fn accept<S>(
    stream: S,
    options: &ServerOptions,
) -> Result<ServerConnection, tungstenite::Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let ws = tokio_tungstenite::accept_async_with_config(stream, Some(options.websocket)).await?;
    serve(ws, options).map_err(|e| tungstenite::Error::Io(std::io::Error::other(e.to_string())))
}

/// Serves heartbeats on an accepted WebSocket: spawns its reader and writer on the current
/// tokio runtime and returns the application's side of it.
///
/// # Errors
/// The server config breaks its own rules.
pub fn serve<S>(
    ws: WebSocketStream<S>,
    options: &ServerOptions,
) -> Result<ServerConnection, heartbeat_core::ConfigErrors>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let clock = Clock::new();
    let hb = Server::new(&options.config, clock.now())?;
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let (in_tx, in_rx) = mpsc::channel(options.inbound_capacity.max(1));
    let (out_tx, out_rx) = mpsc::channel(options.outbound_capacity.max(1));
    let (ev_tx, ev_rx) = mpsc::channel(64);
    let shared = Arc::new(Shared {
        inner: Mutex::new(Inner {
            hb,
            outbox: VecDeque::new(),
            close: None,
            reader_waiting: false,
            reader_done: false,
            peer_cause: None,
        }),
        wake_writer: Notify::new(),
        stop_reader: Notify::new(),
        clock,
        id,
        pings: options.pings,
        events: ev_tx,
    });
    let (sink, stream) = ws.split();
    metrics::gauge!(observe::SERVER_CONNECTIONS).increment(1.0);
    debug!(name: "websocket.connection_open", connection = id);
    tokio::spawn(reader(stream, Arc::clone(&shared), in_tx));
    tokio::spawn(writer(sink, shared, out_rx));
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
    app: mpsc::Sender<WsMessage>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut linger: Option<tokio::time::Instant> = None;
    let cause = loop {
        let far = tokio::time::Instant::now() + Duration::from_secs(3600);
        let next = tokio::select! {
            next = stream.next() => next,
            () = shared.stop_reader.notified(), if linger.is_none() => {
                linger = Some(tokio::time::Instant::now() + LINGER);
                continue;
            }
            () = tokio::time::sleep_until(linger.unwrap_or(far)), if linger.is_some() => {
                break CloseCause::Peer { code: None };
            }
        };
        let Some(frame) = next else {
            break CloseCause::Peer { code: None };
        };
        let now = shared.clock.now();
        let frame = match frame {
            Ok(f) => f,
            Err(e) => break CloseCause::Error(e.to_string()),
        };
        let forward = match frame {
            // Only exact heartbeats are taken out; any other text, however much it looks like
            // one, is the application's.
            WsMessage::Text(ref text) => match Message::from_json(text.as_str()) {
                Ok(m) => {
                    heartbeat(&shared, now, m);
                    false
                }
                Err(DecodeError::NotHeartbeat) => true,
            },
            WsMessage::Binary(_) => true,
            // tungstenite has already queued the Pong; it leaves with the next read or write.
            WsMessage::Ping(_) => {
                read(&shared, now);
                false
            }
            WsMessage::Pong(ref payload) => {
                match seq_of_pong(payload) {
                    Some(seq) => heartbeat(&shared, now, Message::Pong { seq }),
                    None => read(&shared, now),
                }
                false
            }
            WsMessage::Close(ref frame) => {
                let code = frame.as_ref().map(|f| u16::from(f.code));
                shared.lock().peer_cause = Some(CloseCause::Peer { code });
                false
            }
            WsMessage::Frame(_) => false,
        };
        if !forward {
            continue;
        }
        read(&shared, now);
        match app.try_send(frame) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(frame)) => {
                shared.lock().reader_waiting = true;
                tokio::select! {
                    _ = app.send(frame) => {}
                    () = shared.stop_reader.notified() => break CloseCause::Peer { code: None },
                }
                shared.lock().reader_waiting = false;
            }
            // The application stopped listening; heartbeats go on.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
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
    if inner.reader_waiting {
        inner.hb.handle_read(now);
    }
    inner.hb.handle_timeout(now);
    shared.drain(&mut inner);
}

/// Writes one frame while the core's timer keeps running, so that a peer that stopped reading
/// (its socket full, the write blocked) is still closed at its idle timeout.
async fn send_timed<S>(
    sink: &mut SplitSink<WebSocketStream<S>, WsMessage>,
    frame: WsMessage,
    shared: &Shared,
) -> Result<(), CloseCause>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut send = std::pin::pin!(sink.send(frame));
    loop {
        let wake = next_wake(shared);
        tokio::select! {
            r = &mut send => return r.map_err(|e| write_failed(shared, &e)),
            () = tokio::time::sleep_until(wake) => {
                on_timer(shared);
                if let Some(reason) = shared.lock().close {
                    // The socket is stuck mid-frame: no close frame can follow; drop it.
                    return Err(CloseCause::Heartbeat(reason));
                }
            }
        }
    }
}

/// A failed write after the peer's close frame is that close, not an error.
fn write_failed(shared: &Shared, e: &tungstenite::Error) -> CloseCause {
    match shared.lock().peer_cause.clone() {
        Some(cause @ CloseCause::Peer { code: Some(_) }) => cause,
        _ => CloseCause::Error(e.to_string()),
    }
}

fn heartbeat(shared: &Shared, now: Instant, m: Message) {
    let work = {
        let mut inner = shared.lock();
        inner.hb.handle_message(now, m);
        shared.drain(&mut inner)
    };
    if work {
        shared.wake_writer.notify_one();
    }
}

fn read(shared: &Shared, now: Instant) {
    shared.lock().hb.handle_read(now);
}

async fn writer<S>(
    mut sink: SplitSink<WebSocketStream<S>, WsMessage>,
    shared: Arc<Shared>,
    mut app: mpsc::Receiver<WsMessage>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut app_open = true;
    let cause = 'outer: loop {
        // Heartbeat frames first, always.
        let (frames, close, done) = {
            let mut inner = shared.lock();
            let frames: Vec<WsMessage> = inner.outbox.drain(..).collect();
            (frames, inner.close, inner.reader_done)
        };
        for f in frames {
            if let Err(cause) = send_timed(&mut sink, f, &shared).await {
                break 'outer cause;
            }
        }
        if let Some(reason) = close {
            let frame = CloseFrame {
                code: CloseCode::from(reason.close_code()),
                reason: reason.as_str().into(),
            };
            let _ = tokio::time::timeout(
                Duration::from_secs(1),
                sink.send(WsMessage::Close(Some(frame))),
            )
            .await;
            break CloseCause::Heartbeat(reason);
        }
        if done {
            let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
            break shared
                .lock()
                .peer_cause
                .clone()
                .unwrap_or(CloseCause::Peer { code: None });
        }
        let wake = next_wake(&shared);
        tokio::select! {
            biased;
            () = shared.wake_writer.notified() => {}
            () = tokio::time::sleep_until(wake) => on_timer(&shared),
            m = app.recv(), if app_open => match m {
                Some(WsMessage::Close(frame)) => {
                    let _ = tokio::time::timeout(Duration::from_secs(1), sink.send(WsMessage::Close(frame))).await;
                    break CloseCause::Application;
                }
                Some(m) => {
                    if let Err(cause) = send_timed(&mut sink, m, &shared).await {
                        break cause;
                    }
                }
                None => app_open = false,
            },
        }
    };
    shared.stop_reader.notify_one();
    metrics::gauge!(observe::SERVER_CONNECTIONS).decrement(1.0);
    info!(name: "websocket.connection_closed", connection = shared.id, cause = ?cause);
    shared.event(ConnectionEvent::Closed(cause));
}
