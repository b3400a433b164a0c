//! Flood policing as a model (property 8): a rogue client that pings every `period`, faster than
//! `server.min_client_ping_interval` allows, against the real [`Server`], with every delivery
//! and server timer as late as the network assumptions allow. The server must close it for
//! `TooManyPings` within [`Config::flood_close_bound`] of its first ping.
//!
//! The rogue is not the real `Client` (which never pings faster than its interval and waits for
//! each pong); it is what a hostile or broken peer does, and it sends JSON pings and protocol
//! pings (each delivery either kind), which the server polices the same way and answers
//! differently (a pong for JSON only). That a conforming client is never closed
//! is property 4, in [`crate::check`].

use std::time::Duration;

use heartbeat_core::server::{CloseReason, Server, ServerEvent};
use heartbeat_core::{Config, Instant, Message};
use stateright::{Model, Property};

use crate::explore::Timed;

/// Property names.
pub mod names {
    /// The rogue is closed by the bound after its first ping: for `TooManyPings`, or for
    /// idleness where its own pings are further apart than the idle timeout allows.
    pub const FLOOD_CLOSED_IN_TIME: &str = "flood-closed-in-time";
    /// Coverage: the close comes exactly at the bound (the bound is tight).
    pub const FLOOD_CLOSED_AT_BOUND: &str = "sometimes-flood-closed-at-bound";
    /// Every strike the server counts is announced (`ServerEvent::Strike` with the count), so
    /// that an adapter can log and count it.
    pub const STRIKES_ANNOUNCED: &str = "strikes-announced";
    /// A JSON ping the server takes is answered by a pong with its number from the very call;
    /// a protocol Ping frame never is (the WebSocket library answers it); a timer never answers.
    pub const PINGS_ANSWERED: &str = "pings-answered-as-documented";
}

/// The model of one rogue client against one configuration's server.
#[derive(Clone, Debug)]
pub struct FloodModel {
    /// The configuration (its server and network settings matter).
    pub config: Config,
    /// The rogue's ping period, below `server.min_client_ping_interval`.
    pub period: Duration,
    /// The time unit: the greatest common divisor of every duration involved.
    pub unit: Duration,
    /// From the first ping to the close, at most: [`Config::flood_close_bound`].
    pub bound: Duration,
}

/// A state: the server, the rogue's progress and its pings in flight.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FloodState {
    /// The clock; the rogue's first ping is sent at zero.
    pub now: Instant,
    /// The real server.
    pub server: Server,
    /// Pings sent so far (the next is due at `sent · period`).
    pub sent: u32,
    /// Send times of the pings not yet handled by the server, oldest first.
    pub flights: Vec<Instant>,
    /// When the server closed, and why.
    pub closed: Option<(Instant, CloseReason)>,
    /// A ping raised the strike count without a `Strike` event saying so (sticky).
    pub unannounced_strike: bool,
    /// A ping was answered other than as documented: a JSON ping taken without its pong, or a
    /// protocol Ping frame answered by the core (sticky).
    pub misanswered: bool,
}

/// How the rogue pings: the server polices both kinds alike and answers only the first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PingKind {
    /// `{"type":"ping","seq":N}`, answered with a pong.
    Json,
    /// A WebSocket Ping frame: the WebSocket library answers it, the core never does.
    Protocol,
}

/// A step of the flood model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FloodAction {
    /// The rogue sends its next ping (exactly on its schedule).
    Send,
    /// The server handles the oldest ping in flight, sent as this kind.
    Deliver(PingKind),
    /// The server's timer fires (on time or up to its lateness late).
    ServerTimer,
    /// One time unit passes.
    Tick,
}

impl FloodModel {
    /// The model of a rogue pinging every `period`; `None` when the configuration does not
    /// police floods, `period` is zero, not a whole number of microseconds or not faster than it
    /// allows, or the server settings are invalid.
    #[must_use]
    pub fn new(config: Config, period: Duration) -> Option<FloodModel> {
        if period.is_zero() || period.subsec_nanos() % 1_000 != 0 {
            // Every ping at one instant: time could not pass, so the search would not end; and
            // the core counts microseconds.
            return None;
        }
        let bound = config.flood_close_bound(period)?;
        config.server.validate().into_result().ok()?;
        let (s, n) = (&config.server, &config.network);
        let unit = crate::check::unit_of([
            period,
            s.ping_interval,
            s.idle_timeout,
            s.min_client_ping_interval,
            n.max_latency,
            n.max_server_timer_lateness,
            heartbeat_core::server::STALL_GRACE,
        ]);
        Some(FloodModel {
            config,
            period,
            unit,
            bound,
        })
    }

    fn window(&self) -> Duration {
        let n = &self.config.network;
        n.max_latency.saturating_add(n.max_server_timer_lateness)
    }

    fn next_send(&self, st: &FloodState) -> Instant {
        Instant::ZERO.saturating_add(self.period.saturating_mul(st.sent))
    }

    /// Past the bound the property has failed already; stop there so that a server that never
    /// closes (a broken core) leaves a finite search.
    fn past_bound(&self, st: &FloodState) -> bool {
        st.now.saturating_duration_since(Instant::ZERO) > self.bound
    }

    /// Drains the server's outputs: the strike count announced, if any, and the pongs.
    fn drain(st: &mut FloodState) -> (Option<u32>, Vec<u64>) {
        let mut announced = None;
        let mut pongs = Vec::new();
        while let Some(m) = st.server.poll_transmit() {
            if let Message::Pong { seq } = m {
                pongs.push(seq);
            }
        }
        while let Some(e) = st.server.poll_event() {
            match e {
                ServerEvent::Close(reason) => {
                    st.closed.get_or_insert((st.now, reason));
                }
                ServerEvent::Strike { strikes } => announced = Some(strikes),
                ServerEvent::Rtt(_) => {}
            }
        }
        (announced, pongs)
    }
}

impl Model for FloodModel {
    type State = FloodState;
    type Action = FloodAction;

    fn init_states(&self) -> Vec<FloodState> {
        let server = Server::new(&self.config.server, Instant::ZERO).expect("checked by new()");
        vec![FloodState {
            now: Instant::ZERO,
            server,
            sent: 0,
            flights: Vec::new(),
            closed: None,
            unannounced_strike: false,
            misanswered: false,
        }]
    }

    fn actions(&self, st: &FloodState, actions: &mut Vec<FloodAction>) {
        if st.closed.is_some() || self.past_bound(st) {
            return;
        }
        let send_due = self.next_send(st) == st.now;
        if send_due {
            actions.push(FloodAction::Send);
        }
        // One connection delivers in order: only the oldest ping can be handled next, and it
        // must be by its latest moment.
        let mut must_wait = send_due;
        if let Some(&oldest) = st.flights.first() {
            actions.push(FloodAction::Deliver(PingKind::Json));
            actions.push(FloodAction::Deliver(PingKind::Protocol));
            must_wait |= oldest.saturating_add(self.window()) <= st.now;
        }
        if let Some(d) = st.server.poll_timeout() {
            if d <= st.now {
                actions.push(FloodAction::ServerTimer);
                must_wait |=
                    d.saturating_add(self.config.network.max_server_timer_lateness) <= st.now;
            }
        }
        if !must_wait {
            actions.push(FloodAction::Tick);
        }
    }

    fn next_state(&self, st: &FloodState, action: FloodAction) -> Option<FloodState> {
        let mut st = st.clone();
        let now = st.now;
        match action {
            FloodAction::Send => {
                st.flights.push(now);
                st.sent += 1;
            }
            FloodAction::Deliver(kind) => {
                if st.flights.is_empty() {
                    return None;
                }
                st.flights.remove(0);
                // One number for every ping: the server keeps the last one, and numbers that
                // differ per ping would only multiply the states. Not zero, so that a pong with
                // a default number is told apart.
                let seq = 7;
                let before = st.server.strikes();
                match kind {
                    PingKind::Json => st.server.handle_message(now, Message::Ping { seq }),
                    PingKind::Protocol => st.server.handle_protocol_ping(now),
                }
                let after = st.server.strikes();
                let (announced, pongs) = Self::drain(&mut st);
                if announced != (after > before).then_some(after) {
                    st.unannounced_strike = true;
                }
                let answered = kind == PingKind::Json && !st.server.is_closed();
                if pongs != if answered { vec![seq] } else { Vec::new() } {
                    st.misanswered = true;
                }
            }
            FloodAction::ServerTimer => {
                st.server.handle_timeout(now);
                let (_, pongs) = Self::drain(&mut st);
                st.misanswered |= !pongs.is_empty();
            }
            FloodAction::Tick => st.now = now.saturating_add(self.unit),
        }
        Some(st)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always(
                names::FLOOD_CLOSED_IN_TIME,
                |m: &Self, s: &FloodState| match s.closed {
                    Some((at, _)) => at.saturating_duration_since(Instant::ZERO) <= m.bound,
                    None => !m.past_bound(s),
                },
            ),
            Property::always(names::STRIKES_ANNOUNCED, |_, s: &FloodState| {
                !s.unannounced_strike
            }),
            Property::always(names::PINGS_ANSWERED, |_, s: &FloodState| !s.misanswered),
            Property::sometimes(names::FLOOD_CLOSED_AT_BOUND, |m: &Self, s: &FloodState| {
                s.closed
                    .is_some_and(|(at, _)| at.saturating_duration_since(Instant::ZERO) == m.bound)
            }),
        ]
    }
}

impl Timed for FloodModel {
    fn lets_time_pass(&self, action: &FloodAction) -> bool {
        *action == FloodAction::Tick
    }

    fn is_ending(&self, st: &FloodState) -> bool {
        st.closed.is_some() || self.past_bound(st)
    }

    fn heap_bytes(&self, st: &FloodState) -> usize {
        st.flights.capacity() * std::mem::size_of::<Instant>()
    }
}
