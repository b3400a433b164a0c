//! The client side: one driver task per logical connection that survives reconnects.
//!
//! The driver owns the core [`Client`] and the read half of the current socket; a writer task
//! per socket writes heartbeat frames ahead of queued application frames. The core decides
//! everything (when to ping, Slow, when to give up, the jittered backoff); the driver carries
//! it out: [`Event::Connect`] opens a socket, [`Event::Reconnect`] drops it.
//!
//! Liveness is what is read: a message held for an application whose inbound queue is at or
//! over its budget stops reading and earns the server no credit. And a server must take what
//! the client writes: a frame not taken whole within [`write_stall_time`] ends the connection
//! as a lost one ([`Client::handle_disconnected`]), so a server that sends but never reads is
//! left. See the crate docs, "Backpressure, honestly".

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use heartbeat_core::{
    Client, ClientConfig, Config, ConfigErrors, DecodeError, Event, Instant, Message,
    ReconnectReason, Status,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch, Notify, OwnedMutexGuard};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};
use tokio_tungstenite::WebSocketStream;
use tracing::{error, info, warn};

use crate::clock::Clock;
use crate::limits::{close_for, Limits};
use crate::observe;
use crate::queue::{self, Inbox, InboxSender, MessageSender, Outgoing};
use crate::server::{seq_of_pong, text_of};
use crate::write::{push_capped, WriteDeadline};
use crate::PingStyle;

/// How a client connects and pings.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// The heartbeat settings (validated by [`connect`]).
    pub config: ClientConfig,
    /// Seed of the reconnect jitter: random in production, fixed in tests to replay a run.
    pub seed: u64,
    /// How pings are sent: JSON text frames (servers running heartbeat) or protocol Ping frames
    /// (any WebSocket server answers those).
    pub pings: PingStyle,
    /// Message and frame size limits, byte budgets and the read buffer. The outbound queue is
    /// kept across reconnects. [`connect`] applies the size limits; a [`connect_with`]
    /// connector applies them by creating its stream with [`Limits::websocket_config`].
    pub limits: Limits,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            config: ClientConfig::default(),
            seed: 0,
            pings: PingStyle::Json,
            limits: Limits::default(),
        }
    }
}

/// What an application shows its users: the status, the latest round trip, and why the last
/// reconnect happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientStatus {
    /// Connecting, healthy, slow, reconnecting or closed.
    pub status: Status,
    /// The latest round-trip time, if any pong has matched yet.
    pub rtt: Option<Duration>,
    /// Consecutive unanswered pings on this connection.
    pub missed_pongs: u32,
    /// Why the latest reconnect happened.
    pub last_reconnect: Option<ReconnectReason>,
}

/// The application's side of a client.
#[derive(Debug)]
pub struct ClientHandle {
    /// The current status; `changed()` wakes on every change.
    pub status: watch::Receiver<ClientStatus>,
    /// Every core event (connect, RTT, misses, Slow, Recovered, Reconnect, ...), bounded (256);
    /// dropped, never blocking, when nobody drains them.
    pub events: mpsc::Receiver<Event>,
    /// Application messages from the server, in order, within the inbound byte budget. While
    /// the queue is at or over the budget nothing is read from the server, and nothing unread
    /// counts as a sign of life: a live server is kept while the application brings the queue
    /// below the budget at least once per `(max_missed_pongs - 1) x ping_interval +
    /// pong_timeout`; otherwise it is given up like a silent one.
    pub messages: Inbox,
    /// Application messages to send, within the outbound byte budget. Queued while
    /// disconnected; a message being written when a connection is given up may be lost (at
    /// most once). A message the server has not taken whole within [`write_stall_time`] of its
    /// write starting ends the connection (and so is lost).
    pub sender: MessageSender,
    close: Option<tokio::sync::oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl ClientHandle {
    /// Closes the client for good (status Closed) and waits for its task to end.
    pub async fn close(mut self) {
        if let Some(tx) = self.close.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for ClientHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type ConnectFuture<S> =
    Pin<Box<dyn Future<Output = Result<WebSocketStream<S>, tungstenite::Error>> + Send>>;

/// Connects to `url` (`ws://host:port/path`) and keeps connected.
///
/// # Errors
/// The client config breaks its own rules.
pub fn connect(
    url: impl Into<String>,
    options: ClientOptions,
) -> Result<ClientHandle, ConfigErrors> {
    let url = url.into();
    let websocket = options.limits.websocket_config();
    connect_with(
        move || {
            let url = url.clone();
            Box::pin(async move {
                tokio_tungstenite::connect_async_with_config(url, Some(websocket), true)
                    .await
                    .map(|(ws, _)| ws)
            }) as ConnectFuture<_>
        },
        options,
    )
}

/// Like [`connect`], with the socket opened by `connector` on every [`Event::Connect`]: an
/// in-memory pipe in tests, a TLS stream, a proxy.
///
/// # Errors
/// The client config breaks its own rules.
pub fn connect_with<S, F, Fut>(
    mut connector: F,
    options: ClientOptions,
) -> Result<ClientHandle, ConfigErrors>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Result<WebSocketStream<S>, tungstenite::Error>> + Send + 'static,
{
    let clock = Clock::new();
    let core = Client::new(&options.config, clock.now(), options.seed)?;
    let (status_tx, status_rx) = watch::channel(ClientStatus {
        status: core.status(),
        rtt: None,
        missed_pongs: 0,
        last_reconnect: None,
    });
    let (ev_tx, ev_rx) = mpsc::channel(256);
    let (in_tx, in_rx) = queue::inbox(options.limits.inbound_budget);
    // The outbound budget lives as long as the client: its queue outlives every socket.
    let (out_tx, out_rx, _) = queue::outbox(options.limits.outbound_budget);
    let (close_tx, close_rx) = tokio::sync::oneshot::channel();
    let driver = Driver {
        core,
        clock,
        pings: options.pings,
        status: status_tx,
        events: ev_tx,
        app_in: in_tx,
        app_out: Arc::new(tokio::sync::Mutex::new(out_rx)),
        conn: None,
        connecting: None,
        stall_after: write_stall_time(&options.config),
    };
    let task =
        tokio::spawn(driver.run(move || Box::pin(connector()) as ConnectFuture<S>, close_rx));
    Ok(ClientHandle {
        status: status_rx,
        events: ev_rx,
        messages: in_rx,
        sender: out_tx,
        close: Some(close_tx),
        task,
    })
}

/// What woke the driver.
enum Step<S> {
    Close,
    Opened(Box<Result<WebSocketStream<S>, tungstenite::Error>>),
    /// The server did not take a frame whole within the write-stall time.
    WriteStalled,
    Read(Option<Result<WsMessage, tungstenite::Error>>),
    Timer,
}

/// One open socket: its read half, and what its writer needs.
struct Conn<S> {
    stream: SplitStream<WebSocketStream<S>>,
    out: Arc<ConnOut>,
    /// Taken by `drop_conn` for a graceful close; aborted if the driver itself goes away.
    writer: Option<JoinHandle<()>>,
}

impl<S> Drop for Conn<S> {
    fn drop(&mut self) {
        if let Some(writer) = self.writer.take() {
            writer.abort();
        }
    }
}

struct ConnOut {
    /// Heartbeat frames owed, at most [`crate::write::OUTBOX_CAP`].
    outbox: Mutex<VecDeque<WsMessage>>,
    closing: Mutex<Option<CloseFrame>>,
    wake: Notify,
    /// Set by the writer when it gives up a frame the server does not take; the driver ends
    /// the connection.
    stalled: Notify,
}

struct Driver<S> {
    core: Client,
    clock: Clock,
    pings: PingStyle,
    status: watch::Sender<ClientStatus>,
    events: mpsc::Sender<Event>,
    app_in: InboxSender,
    app_out: Arc<tokio::sync::Mutex<Outgoing>>,
    conn: Option<Conn<S>>,
    connecting: Option<ConnectFuture<S>>,
    /// A frame the server has not taken whole within this long ends the connection.
    stall_after: Duration,
}

impl<S> Driver<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    async fn run(
        mut self,
        mut connector: impl FnMut() -> ConnectFuture<S> + Send,
        mut close_rx: tokio::sync::oneshot::Receiver<()>,
    ) {
        // A message read while the bytes queued for the application were at or over its
        // budget. It stays first in line across a reconnect: no socket is read until it is
        // queued.
        let mut held: Option<WsMessage> = None;
        let mut app_in_open = true;
        loop {
            self.drain(&mut connector);
            let Some(deadline) = self.core.poll_timeout() else {
                break;
            };
            let wake = self.clock.to_tokio(deadline);
            let reading = self.conn.is_some() && held.is_none();
            let holding = held.is_some();
            let out = self.conn.as_ref().map(|c| Arc::clone(&c.out));
            let step = {
                let connecting = &mut self.connecting;
                let conn = &mut self.conn;
                let app_in = &self.app_in;
                tokio::select! {
                    biased;
                    _ = &mut close_rx => Step::Close,
                    // Ahead of reading: a server that floods us must not hide its stalled reads.
                    () = async { out.as_ref().expect("guarded").stalled.notified().await }, if out.is_some() => Step::WriteStalled,
                    r = async { connecting.as_mut().expect("guarded").await }, if connecting.is_some() => Step::Opened(Box::new(r)),
                    next = async { conn.as_mut().expect("guarded").stream.next().await }, if reading => Step::Read(next),
                    () = app_in.below_budget(), if holding => {
                        if let Some(m) = held.take() {
                            app_in.push(m);
                        }
                        continue;
                    }
                    () = app_in.closed(), if holding => {
                        held = None;
                        app_in_open = false;
                        continue;
                    }
                    () = tokio::time::sleep_until(wake) => Step::Timer,
                }
            };
            let now = self.clock.now();
            match step {
                Step::Close => {
                    self.core.close();
                    self.drop_conn(CloseFrame {
                        code: CloseCode::Normal,
                        reason: "client closed".into(),
                    });
                    self.publish();
                    break;
                }
                Step::Opened(r) => {
                    self.connecting = None;
                    match *r {
                        Ok(ws) => {
                            self.open(ws);
                            self.core.handle_connected(now);
                        }
                        Err(e) => {
                            warn!(name: "websocket.connect_failed", error = %e, "connect failed");
                            self.core.handle_disconnected(now);
                        }
                    }
                }
                Step::WriteStalled => {
                    warn!(
                        name: "websocket.connection_lost",
                        stall_after_ms = self.stall_after.as_millis() as u64,
                        "the server did not take a frame we wrote"
                    );
                    // No close frame: it would queue behind the frame the server does not take.
                    self.drop_conn(CloseFrame {
                        code: CloseCode::Away,
                        reason: "write stalled".into(),
                    });
                    self.core.handle_disconnected(now);
                }
                Step::Read(Some(Ok(frame))) => {
                    if let Some(app) = self.frame(now, frame) {
                        if app_in_open {
                            // At or over the inbound budget, reading waits for the application.
                            if let Err(m) = self.app_in.try_push(app) {
                                held = Some(m);
                            }
                        }
                    }
                }
                Step::Read(Some(Err(e))) => {
                    info!(name: "websocket.connection_lost", error = %e, "read failed");
                    // A protocol or size violation is named by its close code (1007, 1009, 1002).
                    let close = close_for(&e).unwrap_or(CloseFrame {
                        code: CloseCode::Away,
                        reason: "read failed".into(),
                    });
                    self.drop_conn(close);
                    self.core.handle_disconnected(now);
                }
                Step::Read(None) => {
                    info!(name: "websocket.connection_lost", "server closed the connection");
                    self.drop_conn(CloseFrame {
                        code: CloseCode::Away,
                        reason: "closed".into(),
                    });
                    self.core.handle_disconnected(now);
                }
                // Liveness is what is read: a held message earns the server no credit. A
                // stopped reader cannot tell a live server from a dead one (its end of stream
                // waits unread behind the data), so the core judges by what was read.
                Step::Timer => self.core.handle_timeout(now),
            }
        }
    }

    /// Handles one frame; returns it if it is for the application.
    fn frame(&mut self, now: Instant, frame: WsMessage) -> Option<WsMessage> {
        match frame {
            // Only exact heartbeats are taken out; any other text, however much it looks like
            // one, is the application's.
            WsMessage::Text(ref text) => match Message::from_json(text.as_str()) {
                Ok(m) => {
                    self.core.handle_message(now, m);
                    None
                }
                Err(DecodeError::NotHeartbeat) => {
                    self.core.handle_read(now);
                    Some(frame)
                }
            },
            WsMessage::Binary(_) => {
                self.core.handle_read(now);
                Some(frame)
            }
            WsMessage::Pong(ref payload) => {
                match seq_of_pong(payload) {
                    Some(seq) => self.core.handle_message(now, Message::Pong { seq }),
                    None => self.core.handle_read(now),
                }
                None
            }
            // tungstenite queues the Pong itself; it leaves with the next read or write.
            WsMessage::Ping(_) => {
                self.core.handle_read(now);
                None
            }
            WsMessage::Close(_) | WsMessage::Frame(_) => None,
        }
    }

    fn open(&mut self, ws: WebSocketStream<S>) {
        let (sink, stream) = ws.split();
        let out = Arc::new(ConnOut {
            outbox: Mutex::new(VecDeque::new()),
            closing: Mutex::new(None),
            wake: Notify::new(),
            stalled: Notify::new(),
        });
        let writer = tokio::spawn(write_loop(
            sink,
            Arc::clone(&out),
            Arc::clone(&self.app_out),
            self.stall_after,
        ));
        self.conn = Some(Conn {
            stream,
            out,
            writer: Some(writer),
        });
    }

    /// Lets the current socket go: the writer sends a close frame if it can within a second,
    /// and is aborted otherwise.
    fn drop_conn(&mut self, close: CloseFrame) {
        if let Some(mut conn) = self.conn.take() {
            *lock(&conn.out.closing) = Some(close);
            conn.out.wake.notify_one();
            if let Some(mut writer) = conn.writer.take() {
                tokio::spawn(async move {
                    if tokio::time::timeout(Duration::from_secs(1), &mut writer)
                        .await
                        .is_err()
                    {
                        writer.abort();
                    }
                });
            }
            drop(conn);
        }
        self.connecting = None;
    }

    /// Carries out the core's outputs, in the documented order.
    fn drain(&mut self, connector: &mut impl FnMut() -> ConnectFuture<S>) {
        let mut wrote = false;
        while let Some(m) = self.core.poll_transmit() {
            if let Some(conn) = &self.conn {
                let frame = match (m, self.pings) {
                    (Message::Ping { seq }, PingStyle::Protocol) => {
                        WsMessage::Ping(seq.to_be_bytes().to_vec().into())
                    }
                    _ => text_of(m),
                };
                push_capped(&mut lock(&conn.out.outbox), frame);
                wrote = true;
            }
        }
        if wrote {
            if let Some(conn) = &self.conn {
                conn.out.wake.notify_one();
            }
        }
        let mut changed = false;
        while let Some(event) = self.core.poll_event() {
            changed = true;
            let _ = self.events.try_send(event);
            match event {
                Event::Connect { attempt } => {
                    info!(name: "websocket.connecting", attempt, "connecting");
                    self.connecting = Some(connector());
                }
                Event::Connected => info!(name: "websocket.connected", "connected"),
                Event::Rtt(rtt) => {
                    observe::rtt("client", rtt);
                    self.status.send_modify(|s| s.rtt = Some(rtt));
                }
                Event::PongMissed {
                    missed,
                    max_missed_pongs,
                } => {
                    warn!(
                        name: "websocket.heartbeat_missed_pong",
                        missed_pongs = missed,
                        max_missed_pongs,
                        "missed pong"
                    );
                    metrics::counter!(observe::MISSED_PONGS_TOTAL).increment(1);
                }
                Event::Slow { missed } => {
                    warn!(name: "websocket.slow_connection_detected", missed_pongs = missed, "slow connection");
                    metrics::counter!(observe::SLOW_TOTAL).increment(1);
                }
                Event::Recovered { missed } => {
                    info!(name: "websocket.heartbeat_recovered", missed_pongs = missed, "recovered");
                }
                Event::Stalled { late_by } => {
                    info!(name: "websocket.heartbeat_local_stall", late_ms = late_by.as_millis() as u64,
                        "this process was stalled; probing instead of counting a miss");
                }
                Event::Reconnect { reason, backoff } => {
                    let reason_text = reason_str(reason);
                    error!(
                        name: "websocket.heartbeat_reconnect",
                        reason = reason_text,
                        backoff_ms = backoff.as_millis() as u64,
                        "reconnecting"
                    );
                    metrics::counter!(observe::RECONNECTS_TOTAL, "reason" => reason_text)
                        .increment(1);
                    self.drop_conn(CloseFrame {
                        code: CloseCode::Away,
                        reason: reason_text.into(),
                    });
                    self.status.send_modify(|s| s.last_reconnect = Some(reason));
                }
            }
        }
        if changed {
            self.publish();
        }
    }

    fn publish(&self) {
        let status = self.core.status();
        let missed = self.core.missed_pongs();
        metrics::gauge!(observe::STATUS).set(observe::status_value(status));
        self.status.send_if_modified(|s| {
            let changed = s.status != status || s.missed_pongs != missed;
            s.status = status;
            s.missed_pongs = missed;
            changed
        });
    }
}

/// The story's words for a reconnect reason.
#[must_use]
pub fn reason_str(reason: ReconnectReason) -> &'static str {
    match reason {
        ReconnectReason::MissedPongs { .. } => "too_many_missed_pongs",
        ReconnectReason::ConnectionClosed => "connection_closed",
        ReconnectReason::ConnectFailed => "connect_failed",
        ReconnectReason::ConnectTimeout => "connect_timeout",
    }
}

/// How long the server may take to take a frame whole before the client leaves it: the
/// longest silence the core accepts before it gives a server up,
/// `(max_missed_pongs - 1) x ping_interval + pong_timeout` (the core's `client_tolerance`). A
/// server that leaves our frames untaken that long has not read the pings among them either.
#[must_use]
pub fn write_stall_time(config: &ClientConfig) -> Duration {
    Config {
        client: *config,
        ..Config::default()
    }
    .guarantees()
    .client_tolerance
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Writes one frame; false if the socket is done for: the write failed, or the server did not
/// take the frame whole within `stall_after` (the driver is told and ends the connection).
async fn write<S>(
    sink: &mut SplitSink<WebSocketStream<S>, WsMessage>,
    frame: WsMessage,
    out: &ConnOut,
    stall_after: Duration,
) -> bool
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut deadline = WriteDeadline::start(stall_after);
    let mut send = std::pin::pin!(sink.send(frame));
    loop {
        tokio::select! {
            biased;
            r = &mut send => return r.is_ok(),
            () = tokio::time::sleep_until(deadline.at()) => {
                if deadline.stalled(tokio::time::Instant::now()) {
                    out.stalled.notify_one();
                    return false;
                }
            }
        }
    }
}

async fn write_loop<S>(
    mut sink: SplitSink<WebSocketStream<S>, WsMessage>,
    out: Arc<ConnOut>,
    app: Arc<tokio::sync::Mutex<Outgoing>>,
    stall_after: Duration,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // The application queue is shared by successive sockets; a socket takes it only once its
    // own heartbeat frames are flowing, so a lingering old writer never delays a new ping.
    let mut app_rx: Option<OwnedMutexGuard<Outgoing>> = None;
    let mut app_open = true;
    loop {
        // Heartbeat frames first, one at a time: those not yet written stay in the capped
        // outbox.
        loop {
            let next = lock(&out.outbox).pop_front();
            let Some(frame) = next else { break };
            if !write(&mut sink, frame, &out, stall_after).await {
                return;
            }
        }
        let closing = lock(&out.closing).take();
        if let Some(frame) = closing {
            let _ = sink.send(WsMessage::Close(Some(frame))).await;
            return;
        }
        tokio::select! {
            biased;
            () = out.wake.notified() => {}
            guard = Arc::clone(&app).lock_owned(), if app_open && app_rx.is_none() => app_rx = Some(guard),
            m = async { app_rx.as_mut().expect("guarded").recv().await }, if app_open && app_rx.is_some() => match m {
                // The message keeps its budget until it is written.
                Some(charged) => {
                    let (m, _budget) = charged.split();
                    if !write(&mut sink, m, &out, stall_after).await {
                        return;
                    }
                }
                // The application dropped its sender: nothing more to send, heartbeats go on.
                None => app_open = false,
            },
        }
    }
}
