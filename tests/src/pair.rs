//! A `Client` and a `Server` in a box, wired the way a client crate and a server crate would
//! wire them, with explicit time (after quinn-proto's test `Pair`).
//!
//! The pair owns the clock: [`Pair::step`] jumps to the earliest thing that happens next (a
//! delivery, a client or server deadline) and performs it; [`Pair::drive_until`] steps until a
//! time. Faults are knobs: a dead server, a server whose pongs lag (its own pings still leave on
//! schedule), a network that drops everything.

use std::collections::VecDeque;
use std::time::Duration;

use heartbeat_core::{Client, Config, Event, Instant, Message, Server, ServerEvent};

/// One thing that happened, for assertions and for comparing runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Log {
    /// The client emitted an event.
    Client(Instant, Event),
    /// The server emitted an event.
    Server(Instant, ServerEvent),
}

/// The client, its server (while a connection exists), and the messages between them.
#[derive(Debug)]
pub struct Pair {
    /// The configuration both sides were built from.
    pub config: Config,
    /// Now.
    pub time: Instant,
    /// One-way latency, both directions.
    pub latency: Duration,
    /// The frontend.
    pub client: Client,
    /// The backend's state for the current connection.
    pub server: Option<Server>,
    /// When false, the server process is gone: nothing is accepted, read or sent.
    pub server_alive: bool,
    /// Extra delay before the server's pongs leave (a busy handler); its pings are not delayed.
    pub pong_delay: Duration,
    /// When true the network drops every message.
    pub partitioned: bool,
    to_server: VecDeque<(Instant, Message)>,
    to_client: VecDeque<(Instant, Message)>,
    /// Pongs waiting for the busy handler.
    pongs_held: VecDeque<(Instant, Message)>,
    /// Handshake in progress: (server accepts at, client connected at).
    handshake: Option<(Instant, Instant)>,
    /// Everything that happened, in order.
    pub log: Vec<Log>,
}

impl Pair {
    /// A client at t=0 that immediately asks to connect, with `seed` for its jitter.
    ///
    /// # Panics
    /// If the configuration is invalid for either side.
    #[must_use]
    pub fn new(config: Config, latency: Duration, seed: u64) -> Pair {
        let client = Client::new(&config.client, Instant::ZERO, seed).expect("valid client config");
        let mut pair = Pair {
            config,
            time: Instant::ZERO,
            latency,
            client,
            server: None,
            server_alive: true,
            pong_delay: Duration::ZERO,
            partitioned: false,
            to_server: VecDeque::new(),
            to_client: VecDeque::new(),
            pongs_held: VecDeque::new(),
            handshake: None,
            log: Vec::new(),
        };
        pair.drain();
        pair
    }

    /// The client's events so far, without times.
    #[must_use]
    pub fn client_events(&self) -> Vec<Event> {
        self.log
            .iter()
            .filter_map(|l| match l {
                Log::Client(_, e) => Some(*e),
                Log::Server(..) => None,
            })
            .collect()
    }

    /// The earliest time something happens next.
    #[must_use]
    pub fn next_time(&self) -> Option<Instant> {
        [
            self.client.poll_timeout(),
            self.server
                .as_ref()
                .filter(|_| self.server_alive)
                .and_then(Server::poll_timeout),
            self.to_server.front().map(|m| m.0),
            self.to_client.front().map(|m| m.0),
            self.pongs_held.front().map(|m| m.0),
            self.handshake.map(|(a, c)| a.min(c)),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Performs everything due at the next time; false when nothing is left to happen.
    pub fn step(&mut self) -> bool {
        let Some(t) = self.next_time() else {
            return false;
        };
        self.time = self.time.max(t);
        let now = self.time;
        if let Some((accept, connected)) = self.handshake {
            if accept <= now && accept < connected {
                if self.server_alive && !self.partitioned {
                    self.server = Some(
                        Server::new(&self.config.server, accept).expect("valid server config"),
                    );
                }
                // Accepted (or refused): only the client's side of the handshake is left.
                self.handshake = Some((connected, connected));
            }
            if connected <= now {
                self.handshake = None;
                if self.server.is_some() {
                    self.client.handle_connected(now);
                } else {
                    self.client.handle_disconnected(now);
                }
            }
        }
        while self.to_server.front().is_some_and(|m| m.0 <= now) {
            let (_, m) = self.to_server.pop_front().expect("checked");
            if let Some(s) = self.server.as_mut().filter(|_| self.server_alive) {
                s.handle_message(now, m);
            }
        }
        while self.to_client.front().is_some_and(|m| m.0 <= now) {
            let (_, m) = self.to_client.pop_front().expect("checked");
            self.client.handle_message(now, m);
        }
        while self.pongs_held.front().is_some_and(|m| m.0 <= now) {
            let (_, m) = self.pongs_held.pop_front().expect("checked");
            self.send_to_client(now, m);
        }
        if self.client.poll_timeout().is_some_and(|t| t <= now) {
            self.client.handle_timeout(now);
        }
        if self.server_alive {
            if let Some(s) = self
                .server
                .as_mut()
                .filter(|s| s.poll_timeout().is_some_and(|t| t <= now))
            {
                s.handle_timeout(now);
            }
        }
        self.drain();
        true
    }

    /// Steps until `deadline` (inclusive), then sets the clock to it.
    pub fn drive_until(&mut self, deadline: Instant) {
        while self.next_time().is_some_and(|t| t <= deadline) {
            self.step();
        }
        self.time = self.time.max(deadline);
    }

    /// Drives for `d` from now.
    pub fn drive_for(&mut self, d: Duration) {
        self.drive_until(self.time.saturating_add(d));
    }

    fn send_to_client(&mut self, now: Instant, m: Message) {
        if !self.partitioned {
            self.to_client
                .push_back((now.saturating_add(self.latency), m));
        }
    }

    /// Drains both machines' outputs the way an adapter does after every input.
    fn drain(&mut self) {
        let now = self.time;
        while let Some(m) = self.client.poll_transmit() {
            if !self.partitioned {
                self.to_server
                    .push_back((now.saturating_add(self.latency), m));
            }
        }
        while let Some(e) = self.client.poll_event() {
            self.log.push(Log::Client(now, e));
            match e {
                Event::Connect { .. } => {
                    let accept = now.saturating_add(self.latency);
                    self.handshake = Some((accept, accept.saturating_add(self.latency)));
                }
                Event::Reconnect { .. } => self.close_connection(),
                _ => {}
            }
        }
        if !self.server_alive {
            return;
        }
        let mut closed = false;
        if let Some(s) = self.server.as_mut() {
            let mut out = Vec::new();
            while let Some(m) = s.poll_transmit() {
                out.push(m);
            }
            while let Some(e) = s.poll_event() {
                self.log.push(Log::Server(now, e));
                closed |= matches!(e, ServerEvent::Close(_));
            }
            for m in out {
                if matches!(m, Message::Pong { .. }) && !self.pong_delay.is_zero() {
                    self.pongs_held
                        .push_back((now.saturating_add(self.pong_delay), m));
                } else {
                    self.send_to_client(now, m);
                }
            }
        }
        if closed {
            self.close_connection();
            // The close frame reaches the client one latency later; model it as an immediate
            // socket error on the client's side after that delay by driving it directly.
            self.client
                .handle_disconnected(now.saturating_add(self.latency));
            self.drain();
        }
    }

    fn close_connection(&mut self) {
        self.server = None;
        self.to_server.clear();
        self.to_client.clear();
        self.pongs_held.clear();
    }
}
