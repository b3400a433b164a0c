//! Exhaustive timing verification: a stateright model whose states hold the real
//! `heartbeat_core::Client` and `Server` values, the messages in flight and the clock.
//!
//! Time is integer, in units of the greatest common divisor of the configured durations (see
//! docs/invariants.md for why integer time suffices). Each state is *canonical*: after every
//! step the whole state is shifted so that its earliest instant is zero and sequence numbers
//! start from the machines' next ones ([`heartbeat_core::Client::shift`]). States that differ
//! only in when they happen are thereby one state, and the state space is finite.
//!
//! The model covers one connection, from the client's first connect to its first reconnect
//! request (terminal: the next connection starts from an equivalent state). Nondeterminism:
//! every delivery delay in `[0, max_latency]` (a pong's in `[0, max_server_delay +
//! max_latency]`, unbounded once the server is overloaded), client timer lateness in
//! `[0, max_timer_lateness]`, the order of everything that happens at the same instant, and at
//! most one fault of each kind at any time: the server becomes overloaded, the server dies,
//! the network is cut, the client dies.

use std::time::{Duration, Instant as WallInstant};

use heartbeat_core::server::STALL_GRACE;
use heartbeat_core::{
    Client, CloseReason, Config, Event, Guarantees, Instant, Message, NetworkAssumptions,
    ReconnectReason, Server, ServerEvent,
};
use stateright::{Model, Property};

use crate::explore::{self, Limit, Limits, SearchOptions, Stop, Timed};

use crate::trace::{Trace, What, Who};

/// The properties, by name, in the order the CLI prints them.
pub mod names {
    /// Every heartbeat reconnect is preceded by a Slow warning at least the warning lead earlier.
    pub const WARN_BEFORE_RECONNECT: &str = "warn-before-reconnect";
    /// Under normal load and within the assumptions, no ping goes unanswered.
    pub const NO_MISSED_PONG: &str = "no-missed-pong";
    /// While the server is alive (even overloaded) and the network up, the client never reconnects.
    pub const NO_SPURIOUS_RECONNECT: &str = "no-spurious-reconnect";
    /// While the client is alive and the network up, the server never closes the connection.
    pub const NO_SPURIOUS_CLOSE: &str = "no-spurious-close";
    /// After the server dies or the network is cut, the client reconnects within the bound.
    pub const BOUNDED_DETECTION: &str = "bounded-detection";
    /// A Slow period ends (recovered or reconnect) within the bound.
    pub const SLOW_IS_TRANSIENT: &str = "slow-is-transient";
    /// After the client dies, the server closes the connection within idle timeout + latency +
    /// server read lateness + server timer lateness (+ the stall grace + the timer lateness again
    /// when it exceeds the grace).
    pub const SERVER_CLOSES_DEAD_CLIENT: &str = "server-closes-dead-client";
    /// A reconnect for missed pongs comes with the `PongMissed` event of its last miss, so that
    /// what the user sees counts every miss.
    pub const MISSES_ANNOUNCED: &str = "misses-announced";
    /// Non-vacuity: a Slow warning is reachable (properties 1 and 6 are about Slow periods).
    pub const SLOW_REACHED: &str = "sometimes-slow";
    /// Coverage: a Slow period that recovers is reachable.
    pub const SLOW_THEN_RECOVERED: &str = "sometimes-slow-then-recovered";
    /// Non-vacuity: a reconnect after the server died is reachable.
    pub const RECONNECT_WHEN_DEAD: &str = "sometimes-reconnect-when-dead";
    /// Tightness witness: a dead server detected exactly at the detection bound.
    pub const DETECTION_BOUND_REACHED: &str = "sometimes-detection-at-bound";
    /// From every reachable state, time can advance (no time-lock): decided by the search
    /// itself, after a complete run.
    pub const TIME_ADVANCES: &str = "time-advances";
    /// Properties 1-4, the ones `Config::validate` decides.
    pub const SAFETY: [&str; 4] = [
        WARN_BEFORE_RECONNECT,
        NO_MISSED_PONG,
        NO_SPURIOUS_RECONNECT,
        NO_SPURIOUS_CLOSE,
    ];
}

/// What a message in flight carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Wire {
    /// The client's WebSocket upgrade request.
    Hello,
    /// The server's upgrade response.
    Welcome,
    /// A heartbeat message.
    Msg(MessageKey),
    /// The server's close frame.
    Close(CloseKey),
}

/// [`Message`] with an order, so that flights sort canonically.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MessageKey {
    /// `Message::Ping`.
    Ping(u64),
    /// `Message::Pong`.
    Pong(u64),
}

impl From<Message> for MessageKey {
    fn from(m: Message) -> Self {
        match m {
            Message::Ping { seq } => MessageKey::Ping(seq),
            Message::Pong { seq } => MessageKey::Pong(seq),
        }
    }
}

impl From<MessageKey> for Message {
    fn from(m: MessageKey) -> Self {
        match m {
            MessageKey::Ping(seq) => Message::Ping { seq },
            MessageKey::Pong(seq) => Message::Pong { seq },
        }
    }
}

/// [`CloseReason`] with an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CloseKey {
    /// `CloseReason::IdleTimeout`.
    Idle,
    /// `CloseReason::TooManyPings`.
    Pings,
}

/// A message on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Flight {
    /// Sent at.
    pub sent: Instant,
    /// Must be delivered by then; `None`: no bound (a pong from an overloaded server).
    pub latest: Option<Instant>,
    /// Direction.
    pub to_server: bool,
    /// Payload.
    pub wire: Wire,
}

/// The server process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Answers within `max_server_delay`.
    Normal,
    /// Pongs arbitrarily late; its own pings still leave on schedule.
    Overloaded,
    /// Gone: reads, answers and sends nothing.
    Dead,
}

/// Whether a fault has healed, and how long ago.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Heal {
    /// No fault has healed.
    Never,
    /// The network came back, or the overload ended, at this instant.
    At(Instant),
    /// Longer ago than both settle times: nothing after the fault is excused any more (the
    /// instant is forgotten, so that the state space stays finite).
    Long,
}

/// How the connection ended (the model stops there).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Outcome {
    /// Why the client reconnected.
    pub reason: ReconnectReason,
    /// Time from the Slow warning to the reconnect, if a Slow period was under way.
    pub lead: Option<Duration>,
    /// The server was alive (normal or overloaded) and the network up, the server had not
    /// closed the connection, and no healed fault was recent enough to excuse a reconnect.
    pub server_alive: bool,
    /// Time since the server died or the network was cut, if it did.
    pub since_fault: Option<Duration>,
    /// The server was dead when the client reconnected.
    pub server_dead: bool,
}

/// One state of the model: the real core values and the world around them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct State {
    /// The clock (canonical: shifted so that the earliest instant held is zero).
    pub now: Instant,
    /// The frontend.
    pub client: Client,
    /// The backend's value for this connection, while it exists.
    pub server: Option<Server>,
    /// Messages in flight, sorted.
    pub flights: Vec<Flight>,
    /// The server process.
    pub mode: Mode,
    /// The network is cut: every message is lost.
    pub partitioned: bool,
    /// When the server died or the network was cut.
    pub fault_at: Option<Instant>,
    /// Overload has happened (at most once).
    pub overloaded_once: bool,
    /// When the current Slow period began.
    pub slow_since: Option<Instant>,
    /// A pong was missed while everything was normal.
    pub missed_while_normal: bool,
    /// A reconnect for missed pongs came without the `PongMissed` event of its last miss.
    pub unannounced_miss: bool,
    /// The server closed while the network was up.
    pub closed_while_up: Option<CloseKey>,
    /// A Slow period recovered in the step that led here (for non-vacuity; cleared on the
    /// next step so that it does not double the state space).
    pub just_recovered: bool,
    /// The client's reconnect request: terminal.
    pub outcome: Option<Outcome>,
    /// When the client died: from then on it reads, sends and times nothing, and `client` holds
    /// a fixed placeholder. Terminal once the server has closed and nothing is in flight.
    pub client_dead_at: Option<Instant>,
    /// A cut or an overload that ended.
    pub heal: Heal,
    /// The server has closed this connection (for whatever reason).
    pub server_closed: bool,
}

/// A step of the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Deliver the flight at this index.
    Deliver(usize),
    /// The client's timer fires (at or up to `max_timer_lateness` after its deadline).
    ClientTimer,
    /// The server's timer fires (at or up to `max_server_timer_lateness` after its deadline).
    ServerTimer,
    /// One time unit passes.
    Tick,
    /// The server becomes overloaded.
    Overload,
    /// The server dies.
    Kill,
    /// The network is cut.
    Partition,
    /// The client process dies (what it already sent still arrives).
    KillClient,
    /// The cut network comes back, or the overload ends.
    Heal,
}

/// The model of one configuration.
#[derive(Clone, Debug)]
pub struct HeartbeatModel {
    /// The configuration under check.
    pub config: Config,
    /// The time unit: the greatest common divisor of the durations.
    pub unit: Duration,
    /// What the configuration promises, checked as properties 1, 5 and 6.
    pub guarantees: Guarantees,
    /// Explore combinations of faults (an overload followed by a death or a cut), not just one
    /// fault per run.
    pub combined_faults: bool,
    /// Faults heal: a cut network comes back, an overload ends (at most once per run, and no
    /// fault after). With `combined_faults` an overload does not end (it is followed by a second
    /// fault instead), so that the search stays near a million states.
    pub healing: bool,
    /// Extreme choices only: every message is delivered at once or at the last moment its
    /// window allows, every client timer fires on time or as late as allowed. A subset of the
    /// behaviours (so its counterexamples and witnesses are real) that stays small at any time
    /// unit, because time jumps from one such moment to the next.
    pub corners: bool,
}

/// Greatest common divisor.
fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// The greatest common divisor of durations given in microseconds (at least 1).
fn gcd_of(values: impl IntoIterator<Item = u64>) -> u64 {
    values.into_iter().fold(0, gcd).max(1)
}

/// The greatest common divisor of `durations`, at least a microsecond (the core's resolution):
/// the time unit of a model whose constants they are.
pub(crate) fn unit_of(durations: impl IntoIterator<Item = Duration>) -> Duration {
    Duration::from_micros(gcd_of(durations.into_iter().map(us)))
}

fn us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The configured timers the model runs, in microseconds: the behaviour under check. (The
/// stall threshold is one: a deadline handled more than it late is judged a local stall. So is
/// the server's [`STALL_GRACE`], when its timers may be that late: 0, which divides nothing,
/// otherwise.)
fn timer_durations(config: &Config) -> [u64; 8] {
    let (c, s) = (&config.client, &config.server);
    let grace = if config.network.max_server_timer_lateness > STALL_GRACE {
        STALL_GRACE
    } else {
        Duration::ZERO
    };
    [
        c.ping_interval,
        c.pong_timeout,
        c.connect_timeout,
        c.stall_threshold,
        s.ping_interval,
        s.idle_timeout,
        s.min_client_ping_interval,
        grace,
    ]
    .map(us)
}

/// The network assumptions, in microseconds: upper bounds of the model's nondeterminism.
fn assumption_durations(n: &NetworkAssumptions) -> [u64; 4] {
    [
        n.max_latency,
        n.max_server_delay,
        n.max_timer_lateness,
        n.max_server_timer_lateness,
    ]
    .map(us)
}

impl HeartbeatModel {
    /// The exact model of `config` (which should pass its per-side rules; see [`check`]): time
    /// in units of the greatest common divisor of every duration, the configured assumptions,
    /// the configured bounds.
    #[must_use]
    pub fn new(config: Config) -> HeartbeatModel {
        let unit = Duration::from_micros(gcd_of(
            timer_durations(&config)
                .into_iter()
                .chain(assumption_durations(&config.network)),
        ));
        HeartbeatModel {
            config,
            unit,
            guarantees: config.guarantees(),
            combined_faults: false,
            healing: true,
            corners: false,
        }
    }

    /// The model of `config` on a coarser time grid: the network assumptions replaced by
    /// `network` (each a multiple of `unit`, which divides every timer), checking `guarantees`.
    #[must_use]
    pub fn on_grid(
        config: Config,
        network: NetworkAssumptions,
        unit: Duration,
        guarantees: Guarantees,
    ) -> HeartbeatModel {
        HeartbeatModel {
            config: Config { network, ..config },
            unit,
            guarantees,
            combined_faults: false,
            healing: true,
            corners: false,
        }
    }

    fn latency(&self) -> Duration {
        self.config.network.max_latency
    }

    /// Applies `action` to a copy of `state`, recording into `trace` when given. Returns the new
    /// canonical state and how far it was shifted back.
    fn apply(
        &self,
        state: &State,
        action: Action,
        trace: Option<&mut Trace>,
    ) -> Option<(State, Shift)> {
        let mut st = state.clone();
        st.just_recovered = false;
        let now = st.now;
        let mut rec = Recorder { trace };
        match action {
            Action::Tick => {
                st.now = self.next_tick(&st);
            }
            Action::Deliver(i) => {
                let f = *st.flights.get(i)?;
                st.flights.remove(i);
                if f.to_server {
                    self.deliver_to_server(&mut st, f, &mut rec);
                } else {
                    self.deliver_to_client(&mut st, f, &mut rec);
                }
            }
            Action::ClientTimer => {
                rec.lateness(now, Who::Client(0), st.client.poll_timeout());
                st.client.handle_timeout(now);
                self.drain_client(&mut st, &mut rec);
            }
            Action::ServerTimer => {
                if let Some(s) = st.server.as_mut() {
                    rec.lateness(now, Who::Server(0), s.poll_timeout());
                    s.handle_timeout(now);
                }
                self.drain_server(&mut st, &mut rec);
            }
            Action::Overload => {
                st.mode = Mode::Overloaded;
                st.overloaded_once = true;
                rec.note(
                    now,
                    Who::World,
                    "server overloaded: pongs lag without bound, its pings stay on schedule",
                );
            }
            Action::Kill => {
                st.mode = Mode::Dead;
                st.server = None;
                st.fault_at.get_or_insert(now);
                rec.note(now, Who::World, "server died");
            }
            Action::Partition => {
                st.partitioned = true;
                st.fault_at.get_or_insert(now);
                for f in st.flights.drain(..) {
                    if let Wire::Msg(m) = f.wire {
                        let who = if f.to_server {
                            Who::Client(0)
                        } else {
                            Who::Server(0)
                        };
                        rec.push(now, who, What::Lost(m.into()));
                    }
                }
                rec.note(now, Who::World, "network cut");
            }
            Action::Heal => {
                st.partitioned = false;
                st.mode = Mode::Normal;
                st.fault_at = None;
                st.heal = Heal::At(now);
                rec.note(now, Who::World, "network back, server at normal load");
            }
            Action::KillClient => {
                st.client_dead_at = Some(now);
                st.client = self.dead_client();
                st.slow_since = None;
                rec.note(now, Who::World, "client died");
            }
        }
        if let Heal::At(t) = st.heal {
            let g = &self.guarantees;
            if st.now.saturating_duration_since(t) > g.heal_settle_client.max(g.heal_settle_server)
            {
                st.heal = Heal::Long;
            }
        }
        let shift = self.canonicalize(&mut st);
        Some((st, shift))
    }

    /// Has the network been up (and the server at normal load, if it was overloaded) for more
    /// than `settle` since a healed fault, or was there none?
    fn settled(&self, st: &State, settle: Duration) -> bool {
        match st.heal {
            Heal::Never | Heal::Long => true,
            Heal::At(t) => st.now.saturating_duration_since(t) > settle,
        }
    }

    fn send(
        &self,
        st: &mut State,
        to_server: bool,
        wire: Wire,
        window: Option<Duration>,
        rec: &mut Recorder<'_>,
    ) {
        let now = st.now;
        if let Wire::Msg(m) = wire {
            let who = if to_server {
                Who::Client(0)
            } else {
                Who::Server(0)
            };
            rec.push(now, who, What::Send(m.into()));
            if st.partitioned {
                rec.push(now, who, What::Lost(m.into()));
            }
        }
        if st.partitioned {
            return;
        }
        // Each side handles what it reads up to its timer lateness after it arrived: the same
        // busy loop delays both.
        let read_late = if to_server {
            self.config.network.max_server_timer_lateness
        } else {
            self.config.network.max_timer_lateness
        };
        st.flights.push(Flight {
            sent: now,
            latest: window.map(|w| now.saturating_add(w).saturating_add(read_late)),
            to_server,
            wire,
        });
    }

    fn deliver_to_server(&self, st: &mut State, f: Flight, rec: &mut Recorder<'_>) {
        let now = st.now;
        if st.mode == Mode::Dead {
            if let Wire::Msg(m) = f.wire {
                rec.push(now, Who::Client(0), What::Lost(m.into()));
            }
            return;
        }
        match f.wire {
            Wire::Hello => {
                // check() validated the server's rules, so this cannot fail.
                st.server = Server::new(&self.config.server, now).ok();
                rec.push(now, Who::Server(0), What::Open);
                self.send(st, false, Wire::Welcome, Some(self.latency()), rec);
            }
            Wire::Msg(m) => {
                let Some(s) = st.server.as_mut() else {
                    rec.push(now, Who::Client(0), What::Lost(m.into()));
                    return;
                };
                s.handle_message(now, m.into());
                rec.push(now, Who::Server(0), What::Receive(m.into()));
                self.drain_server(st, rec);
            }
            Wire::Welcome | Wire::Close(_) => {}
        }
    }

    fn deliver_to_client(&self, st: &mut State, f: Flight, rec: &mut Recorder<'_>) {
        let now = st.now;
        if st.client_dead_at.is_some() {
            if let Wire::Msg(m) = f.wire {
                rec.push(now, Who::Server(0), What::Lost(m.into()));
            }
            return;
        }
        match f.wire {
            Wire::Welcome => {
                st.client.handle_connected(now);
                rec.push(now, Who::Client(0), What::Open);
            }
            Wire::Msg(m) => {
                st.client.handle_message(now, m.into());
                rec.push(now, Who::Client(0), What::Receive(m.into()));
            }
            Wire::Close(_) => {
                st.client.handle_disconnected(now);
                rec.push(now, Who::Client(0), What::Closed);
            }
            Wire::Hello => {}
        }
        self.drain_client(st, rec);
    }

    /// Carries out the client's outputs, as an adapter would, and updates the observers.
    fn drain_client(&self, st: &mut State, rec: &mut Recorder<'_>) {
        let now = st.now;
        let before = st.slow_since.is_some();
        while let Some(m) = st.client.poll_transmit() {
            self.send(st, true, Wire::Msg(m.into()), Some(self.latency()), rec);
        }
        let mut last_miss = None;
        while let Some(e) = st.client.poll_event() {
            rec.push(now, Who::Client(0), What::Event(e));
            if let Event::PongMissed { missed, .. } = e {
                last_miss = Some(missed);
            }
            if let Event::Reconnect {
                reason: ReconnectReason::MissedPongs { missed },
                ..
            } = e
            {
                st.unannounced_miss |= last_miss != Some(missed);
            }
            match e {
                Event::PongMissed { .. }
                    if st.mode == Mode::Normal
                        && !st.partitioned
                        && !st.overloaded_once
                        && st.heal == Heal::Never =>
                {
                    st.missed_while_normal = true;
                }
                Event::Slow { .. } => st.slow_since = Some(now),
                Event::Recovered { .. } => {
                    st.slow_since = None;
                    st.just_recovered = true;
                }
                Event::Reconnect { reason, .. } => {
                    let server_alive = st.mode != Mode::Dead
                        && !st.partitioned
                        && !st.server_closed
                        && self.settled(st, self.guarantees.heal_settle_client);
                    st.outcome = Some(Outcome {
                        reason,
                        lead: st.slow_since.map(|s| now.saturating_duration_since(s)),
                        server_alive,
                        since_fault: st.fault_at.map(|t| now.saturating_duration_since(t)),
                        server_dead: st.mode == Mode::Dead,
                    });
                    // The client closes its socket: the server's side goes too.
                    st.server = None;
                    st.flights.clear();
                    st.slow_since = None;
                }
                _ => {}
            }
        }
        if before != st.slow_since.is_some() || st.outcome.is_some() {
            rec.push(now, Who::Client(0), What::Status(st.client.status()));
        }
    }

    fn drain_server(&self, st: &mut State, rec: &mut Recorder<'_>) {
        let now = st.now;
        let Some(s) = st.server.as_mut() else { return };
        let mut out = [None; 2];
        let mut n = 0;
        while let Some(m) = s.poll_transmit() {
            if let Some(slot) = out.get_mut(n) {
                *slot = Some(m);
                n += 1;
            }
        }
        let mut closed = None;
        while let Some(e) = s.poll_event() {
            rec.push(now, Who::Server(0), What::ServerEvent(e));
            if let ServerEvent::Close(reason) = e {
                closed = Some(reason);
            }
        }
        let pong_window = match st.mode {
            Mode::Normal => Some(
                self.config
                    .network
                    .max_server_delay
                    .saturating_add(self.latency()),
            ),
            Mode::Overloaded | Mode::Dead => None,
        };
        for m in out.into_iter().flatten() {
            if matches!(m, Message::Pong { .. }) && pong_window.is_none() {
                // An overloaded server's pongs are arbitrarily late. The worst case is that they
                // never come: a late pong is only more evidence of life, which can end a Slow
                // period or prevent a miss but never cause a miss, a warning or a reconnect.
                rec.note(now, Who::Server(0), "pong held by the overloaded handler");
                continue;
            }
            let window = if matches!(m, Message::Pong { .. }) {
                pong_window
            } else {
                Some(self.latency())
            };
            self.send(st, false, Wire::Msg(m.into()), window, rec);
        }
        if let Some(reason) = closed {
            let key = match reason {
                CloseReason::IdleTimeout => CloseKey::Idle,
                CloseReason::TooManyPings => CloseKey::Pings,
            };
            // A client still waiting for a handshake response that a healed cut lost is not a
            // live client of this connection: it gives up at its connect timeout.
            let handshake_lost =
                st.heal != Heal::Never && st.client.status() == heartbeat_core::Status::Connecting;
            if !st.partitioned
                && st.client_dead_at.is_none()
                && !handshake_lost
                && self.settled(st, self.guarantees.heal_settle_server)
            {
                st.closed_while_up.get_or_insert(key);
            }
            st.server = None;
            st.server_closed = true;
            rec.push(now, Who::Server(0), What::Closed);
            self.send(st, false, Wire::Close(key), Some(self.latency()), rec);
        }
    }

    /// Shifts the state so that its earliest instant is zero and sequence numbers start at the
    /// machines' next ones; sorts the flights. Returns the time shift.
    fn canonicalize(&self, st: &mut State) -> Shift {
        // A dead client's placeholder is never driven: it holds no instant and is not moved.
        let client_alive = st.client_dead_at.is_none();
        let mut earliest = if client_alive {
            st.now.min(st.client.earliest_instant())
        } else {
            st.now
        };
        if let Some(s) = &st.server {
            earliest = earliest.min(s.earliest_instant());
        }
        for f in &st.flights {
            earliest = earliest.min(f.sent);
        }
        let healed = match st.heal {
            Heal::At(t) => Some(t),
            Heal::Never | Heal::Long => None,
        };
        for t in [st.fault_at, st.slow_since, st.client_dead_at, healed]
            .into_iter()
            .flatten()
        {
            earliest = earliest.min(t);
        }
        let d = earliest.since_origin();
        let back = |t: Instant| t.saturating_sub(d);
        let client_seqs = if client_alive {
            st.client.next_seq()
        } else {
            0
        };
        let server_seqs = st.server.as_ref().map_or(0, Server::next_seq);
        st.now = back(st.now);
        if client_alive {
            st.client.shift(d, client_seqs);
        }
        if let Some(s) = st.server.as_mut() {
            s.shift(d, server_seqs);
        }
        st.fault_at = st.fault_at.map(back);
        st.slow_since = st.slow_since.map(back);
        st.client_dead_at = st.client_dead_at.map(back);
        if let Heal::At(t) = st.heal {
            st.heal = Heal::At(back(t));
        }
        let renumber = |seq: u64, base: u32| u64::from((seq as u32).wrapping_sub(base));
        for f in &mut st.flights {
            f.sent = back(f.sent);
            f.latest = f.latest.map(back);
            if let Wire::Msg(m) = &mut f.wire {
                *m = match (*m, f.to_server) {
                    // The client's pings, and the server's pongs echoing them: client numbering.
                    (MessageKey::Ping(seq), true) => MessageKey::Ping(renumber(seq, client_seqs)),
                    (MessageKey::Pong(seq), false) => MessageKey::Pong(renumber(seq, client_seqs)),
                    (MessageKey::Ping(seq), false) => MessageKey::Ping(renumber(seq, server_seqs)),
                    (MessageKey::Pong(seq), true) => MessageKey::Pong(renumber(seq, server_seqs)),
                };
            }
        }
        st.flights.sort_unstable();
        Shift {
            time: d,
            client_seqs,
            server_seqs,
        }
    }

    /// Where a tick takes the clock: one unit while messages are in flight (each unit is a
    /// possible delivery time); otherwise straight to the next deadline, since nothing can
    /// happen in between that a fault at the start of the quiet stretch would not also cover.
    fn next_tick(&self, st: &State) -> Instant {
        let step = st.now.saturating_add(self.unit);
        let client = self.client_timeout(st);
        let server = st.server.as_ref().and_then(Server::poll_timeout);
        let deadlines = [client, server];
        if self.corners {
            // Only the extreme moments: each flight's last one, each deadline, and each deadline
            // plus its side's lateness.
            let n = &self.config.network;
            let late = [
                client.map(|d| d.saturating_add(n.max_timer_lateness)),
                server.map(|d| d.saturating_add(n.max_server_timer_lateness)),
            ];
            return st
                .flights
                .iter()
                .filter_map(|f| f.latest)
                .chain(deadlines.into_iter().flatten())
                .chain(late.into_iter().flatten())
                .filter(|&t| t > st.now)
                .min()
                .unwrap_or(step);
        }
        // A due timer may still fire late: every unit of its lateness is a choice.
        if !st.flights.is_empty() || deadlines.iter().flatten().any(|&d| d <= st.now) {
            return step;
        }
        deadlines
            .into_iter()
            .flatten()
            .min()
            .map_or(step, |d| d.max(step))
    }

    /// May time pass, or is something due that must happen first?
    fn can_tick(&self, st: &State) -> bool {
        let now = st.now;
        if st
            .flights
            .iter()
            .any(|f| f.latest.is_some_and(|l| now >= l))
        {
            return false;
        }
        if let Some(d) = self.client_timeout(st) {
            if now >= d.saturating_add(self.config.network.max_timer_lateness) {
                return false;
            }
        }
        if let Some(d) = st.server.as_ref().and_then(Server::poll_timeout) {
            if now >= d.saturating_add(self.config.network.max_server_timer_lateness) {
                return false;
            }
        }
        true
    }

    /// Replays `path`'s actions from the initial state into a trace with absolute times.
    #[must_use]
    pub fn trace_of(&self, actions: &[Action], title: &str) -> Trace {
        let mut trace = Trace::titled(title);
        let mut total = Shift::default();
        let mut state = self.initial_state(Some(&mut trace));
        total = total.then(self.canonicalize(&mut state));
        for &a in actions {
            let mut local = Trace::new();
            let Some((next, shift)) = self.apply(&state, a, Some(&mut local)) else {
                break;
            };
            for mut e in local.entries {
                e.at = e.at.saturating_add(total.time);
                e.what = total.restore(e.who, e.what);
                trace.entries.push(e);
            }
            total = total.then(shift);
            state = next;
        }
        trace
    }

    fn initial_state(&self, trace: Option<&mut Trace>) -> State {
        let mut rec = Recorder { trace };
        let mut client =
            Client::new(&self.config.client, Instant::ZERO, 0).expect("checked by check()");
        while let Some(e) = client.poll_event() {
            rec.push(Instant::ZERO, Who::Client(0), What::Event(e));
        }
        State {
            now: Instant::ZERO,
            client,
            server: None,
            flights: vec![Flight {
                sent: Instant::ZERO,
                latest: Some(
                    Instant::ZERO
                        .saturating_add(self.latency())
                        .saturating_add(self.config.network.max_server_timer_lateness),
                ),
                to_server: true,
                wire: Wire::Hello,
            }],
            mode: Mode::Normal,
            partitioned: false,
            fault_at: None,
            overloaded_once: false,
            slow_since: None,
            missed_while_normal: false,
            unannounced_miss: false,
            closed_while_up: None,
            just_recovered: false,
            outcome: None,
            client_dead_at: None,
            heal: Heal::Never,
            server_closed: false,
        }
    }

    /// The client's deadline, while it is alive.
    fn client_timeout(&self, st: &State) -> Option<Instant> {
        if st.client_dead_at.is_some() {
            None
        } else {
            st.client.poll_timeout()
        }
    }

    /// The fixed value a dead client's state is replaced by (it is never driven again), so that
    /// states after a client's death differ only in what still matters.
    fn dead_client(&self) -> Client {
        let mut client =
            Client::new(&self.config.client, Instant::ZERO, 0).expect("checked by check()");
        while client.poll_event().is_some() {}
        client
    }

    /// Property 7: once the client is dead, the server has closed by `server_detection_bound`
    /// after the death (or has not yet been opened: the upgrade request may still be in flight).
    #[must_use]
    pub fn dead_client_closed_in_time(&self, s: &State) -> bool {
        s.client_dead_at.is_none_or(|t| {
            s.server.is_none()
                || s.now.saturating_duration_since(t) <= self.guarantees.server_detection_bound
        })
    }
}

/// How far a state was moved by canonicalisation: back in time, and down in each side's ping
/// numbering.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Shift {
    time: Duration,
    client_seqs: u32,
    server_seqs: u32,
}

impl Shift {
    /// This shift followed by `next`.
    fn then(self, next: Shift) -> Shift {
        Shift {
            time: self.time.saturating_add(next.time),
            client_seqs: self.client_seqs.wrapping_add(next.client_seqs),
            server_seqs: self.server_seqs.wrapping_add(next.server_seqs),
        }
    }

    /// A recorded message with the numbers it had before canonicalisation.
    fn restore(self, who: Who, what: What) -> What {
        let client_side = matches!(who, Who::Client(_));
        let fix = |m: Message, sender_is_client: bool| -> Message {
            // Pings carry their sender's numbering; pongs echo the other side's.
            let client_numbering = matches!(m, Message::Ping { .. }) == sender_is_client;
            let base = if client_numbering {
                self.client_seqs
            } else {
                self.server_seqs
            };
            let seq = u64::from((m.seq() as u32).wrapping_add(base));
            match m {
                Message::Ping { .. } => Message::Ping { seq },
                Message::Pong { .. } => Message::Pong { seq },
            }
        };
        match what {
            What::Send(m) => What::Send(fix(m, client_side)),
            What::Lost(m) => What::Lost(fix(m, client_side)),
            What::Receive(m) => What::Receive(fix(m, !client_side)),
            other => other,
        }
    }
}

/// Writes trace entries when a trace is being recorded; does nothing while checking.
struct Recorder<'a> {
    trace: Option<&'a mut Trace>,
}

impl Recorder<'_> {
    fn push(&mut self, at: Instant, who: Who, what: What) {
        if let Some(t) = self.trace.as_deref_mut() {
            t.push(at, who, what);
        }
    }

    fn note(&mut self, at: Instant, who: Who, text: impl Into<std::borrow::Cow<'static, str>>) {
        if self.trace.is_some() {
            self.push(at, who, What::note(text));
        }
    }

    /// Notes how late a timer due at `deadline` fires at `now`, if it is late at all.
    fn lateness(&mut self, now: Instant, who: Who, deadline: Option<Instant>) {
        let late = deadline.map_or(Duration::ZERO, |d| now.saturating_duration_since(d));
        if !late.is_zero() {
            self.note(
                now,
                who,
                format!("timer fired {} late", crate::render::fmt_dur(late)),
            );
        }
    }
}

impl Model for HeartbeatModel {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        let mut st = self.initial_state(None);
        self.canonicalize(&mut st);
        vec![st]
    }

    fn actions(&self, st: &State, actions: &mut Vec<Action>) {
        if self.is_ending(st) {
            return;
        }
        let now = st.now;
        for (i, f) in st.flights.iter().enumerate() {
            let extreme = now == f.sent || f.latest == Some(now);
            if now >= f.sent && (extreme || !self.corners) {
                actions.push(Action::Deliver(i));
            }
        }
        let late = self.config.network.max_timer_lateness;
        if self.client_timeout(st).is_some_and(|d| {
            now >= d && (!self.corners || now == d || now == d.saturating_add(late))
        }) {
            actions.push(Action::ClientTimer);
        }
        let server_late = self.config.network.max_server_timer_lateness;
        if st
            .server
            .as_ref()
            .and_then(Server::poll_timeout)
            .is_some_and(|d| {
                now >= d && (!self.corners || now == d || now == d.saturating_add(server_late))
            })
        {
            actions.push(Action::ServerTimer);
        }
        if self.can_tick(st) {
            actions.push(Action::Tick);
        }
        let client_alive = st.client_dead_at.is_none();
        let pristine = st.mode == Mode::Normal
            && !st.partitioned
            && !st.overloaded_once
            && client_alive
            && st.heal == Heal::Never;
        if pristine {
            actions.push(Action::Overload);
        }
        // A cut or an overload may end at any moment (once per run): what comes after is
        // excused for the settle times, and must be right after them.
        if self.healing
            && !(self.combined_faults && st.overloaded_once)
            && client_alive
            && st.heal == Heal::Never
            && st.mode != Mode::Dead
            && (st.partitioned || st.mode == Mode::Overloaded)
        {
            actions.push(Action::Heal);
        }
        if pristine
            || (self.combined_faults
                && st.fault_at.is_none()
                && client_alive
                && st.heal == Heal::Never)
        {
            actions.push(Action::Kill);
            actions.push(Action::Partition);
            actions.push(Action::KillClient);
        }
    }

    fn next_state(&self, st: &State, action: Action) -> Option<State> {
        self.apply(st, action, None).map(|(s, _)| s)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        use names::*;
        vec![
            Property::always(WARN_BEFORE_RECONNECT, |m: &Self, s: &State| {
                match s.outcome {
                    Some(Outcome {
                        reason: ReconnectReason::MissedPongs { .. },
                        lead,
                        ..
                    }) => lead.is_some_and(|l| l >= m.guarantees.warning_lead),
                    _ => true,
                }
            }),
            Property::always(NO_MISSED_PONG, |_, s: &State| !s.missed_while_normal),
            Property::always(NO_SPURIOUS_RECONNECT, |_, s: &State| {
                !s.outcome.is_some_and(|o| o.server_alive)
            }),
            Property::always(NO_SPURIOUS_CLOSE, |_, s: &State| {
                s.closed_while_up.is_none()
            }),
            Property::always(BOUNDED_DETECTION, |m: &Self, s: &State| {
                let bound = m.guarantees.detection_bound;
                match (s.outcome, s.fault_at) {
                    (Some(o), _) => o.since_fault.is_none_or(|d| d <= bound),
                    (None, Some(t)) => s.now.saturating_duration_since(t) <= bound,
                    (None, None) => true,
                }
            }),
            Property::always(SLOW_IS_TRANSIENT, |m: &Self, s: &State| {
                s.slow_since
                    .is_none_or(|t| s.now.saturating_duration_since(t) <= m.guarantees.slow_bound)
            }),
            Property::always(SERVER_CLOSES_DEAD_CLIENT, |m: &Self, s: &State| {
                m.dead_client_closed_in_time(s)
            }),
            Property::always(MISSES_ANNOUNCED, |_, s: &State| !s.unannounced_miss),
            Property::sometimes(SLOW_REACHED, |_, s: &State| s.slow_since.is_some()),
            Property::sometimes(SLOW_THEN_RECOVERED, |_, s: &State| s.just_recovered),
            Property::sometimes(RECONNECT_WHEN_DEAD, |_, s: &State| {
                s.outcome.is_some_and(|o| {
                    o.server_dead && matches!(o.reason, ReconnectReason::MissedPongs { .. })
                })
            }),
            Property::sometimes(DETECTION_BOUND_REACHED, |m: &Self, s: &State| {
                s.outcome.is_some_and(|o| {
                    o.server_dead && o.since_fault == Some(m.guarantees.detection_bound)
                })
            }),
        ]
    }
}

impl Timed for HeartbeatModel {
    fn lets_time_pass(&self, action: &Action) -> bool {
        matches!(action, Action::Tick)
    }

    /// The model stops at the client's reconnect request: the next connection starts from an
    /// equivalent state.
    fn is_ending(&self, state: &State) -> bool {
        state.outcome.is_some()
            || (state.client_dead_at.is_some()
                && state.server.is_none()
                && state.flights.is_empty())
    }

    fn heap_bytes(&self, state: &State) -> usize {
        state.flights.capacity() * size_of::<Flight>()
    }
}

/// What a property is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Must hold in every reachable state.
    Always,
    /// Non-vacuity: must be reachable for the proof to count.
    Witness,
    /// Coverage: reported, not required (shows a path, or a bound, is reached exactly).
    Coverage,
}

/// What a check found about one property.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// `Always`: no reachable state breaks it (the run was complete).
    Holds,
    /// `Always`: a reachable state breaks it; the trace is a shortest counterexample.
    Fails,
    /// Witness or coverage: reachable; the trace is a shortest witness.
    Reached,
    /// Witness or coverage: no reachable state satisfies it (the run was complete).
    Unreachable,
    /// Not decided: the run stopped at another property's failure first.
    NotChecked,
    /// Not decided: the run stopped at a limit; no state covered broke it (`Always`) or
    /// satisfied it (the others).
    Undecided,
}

impl Status {
    /// The word the CLI prints, in text and JSON.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Holds => "holds",
            Status::Fails => "fails",
            Status::Reached => "reached",
            Status::Unreachable => "unreachable",
            Status::NotChecked => "not checked",
            Status::Undecided => "undecided",
        }
    }
}

/// The verdict on one property.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PropertyResult {
    /// Its name (see [`names`]).
    pub name: &'static str,
    /// What it is for.
    pub kind: Kind,
    /// What the check found.
    pub status: Status,
    /// The shortest counterexample (or witness) as a trace.
    pub trace: Option<Trace>,
    /// The number of actions in that path (its length, which the search minimises).
    pub path_len: Option<usize>,
    /// The search that decided it, if any: a path is shortest within that search's model.
    pub decided_by: Option<Approximation>,
}

/// The verdict on a configuration's model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Complete: every `always` property holds, time always advances, and every non-vacuity
    /// witness is reached.
    Proven,
    /// A property fails (or a state is time-locked); the report has a shortest counterexample.
    Failed,
    /// Complete and nothing fails, but a non-vacuity witness is unreachable: the properties
    /// are not exercised where they matter, so this is no proof.
    Vacuous,
    /// A limit ended the search before a verdict: what was covered is in the report.
    Inconclusive(Limit),
}

impl Verdict {
    /// The word the CLI prints.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Proven => "proven",
            Verdict::Failed => "FAILED",
            Verdict::Vacuous => "VACUOUS",
            Verdict::Inconclusive(_) => "INCONCLUSIVE",
        }
    }
}

/// Which model a search ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Approximation {
    /// The configured assumptions, time in units of the greatest common divisor of everything.
    Exact,
    /// Assumptions rounded up to the grid: more behaviours. Proves `always` properties (with
    /// the bounds of the rounded assumptions).
    Over,
    /// The configured assumptions, extreme choices only ([`HeartbeatModel::corners`]): fewer
    /// behaviours. Its counterexamples (against the configured bounds) and witnesses are real.
    Corners,
}

/// One search of a check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    /// Which model.
    pub approximation: Approximation,
    /// Its time unit.
    pub unit: Duration,
    /// The network assumptions it ran with.
    pub network: NetworkAssumptions,
    /// Unique states.
    pub states: usize,
    /// Deepest state (actions from the start).
    pub depth: usize,
    /// How it ended.
    pub stop: Stop,
    /// Bytes held at most.
    pub peak_bytes: usize,
    /// Wall time.
    pub elapsed: Duration,
}

/// The outcome of checking one configuration.
#[derive(Clone, Debug)]
pub struct Report {
    /// The verdict.
    pub verdict: Verdict,
    /// The searches, in order.
    pub runs: Vec<Run>,
    /// The index in `runs` of the search that decided the `always` properties (the last search
    /// that decided one; the last search when none did).
    pub deciding: usize,
    /// The time unit of the deciding search (the grid of a rounded proof).
    pub unit: Duration,
    /// The exact model's time unit: the greatest common divisor of every duration.
    pub exact_unit: Duration,
    /// The assumptions the `always` verdicts cover: the configured ones, or the rounded-up ones
    /// of the over-approximations that decided (which include every behaviour of the configured
    /// ones; with more than one grid, the largest of each).
    pub network: NetworkAssumptions,
    /// True when `network` was rounded up from the configuration's.
    pub rounded: bool,
    /// The bounds proven by properties 1, 5 and 6: the configuration's, or when rounded the
    /// weakest of those the deciding over-approximations checked.
    pub guarantees: Guarantees,
    /// States where time passes and nothing changes (no timer, nothing in flight), when known.
    pub idle_states: usize,
    /// Every property's verdict: [`HeartbeatModel::properties`] order, then `time-advances`.
    pub properties: Vec<PropertyResult>,
}

impl Report {
    /// True when the verdict is [`Verdict::Proven`].
    #[must_use]
    pub fn proven(&self) -> bool {
        self.verdict == Verdict::Proven
    }

    /// Unique states over all searches.
    #[must_use]
    pub fn states(&self) -> usize {
        self.runs.iter().map(|r| r.states).sum()
    }

    /// Wall time over all searches.
    #[must_use]
    pub fn elapsed(&self) -> Duration {
        self.runs.iter().map(|r| r.elapsed).sum()
    }

    /// The most bytes any search held.
    #[must_use]
    pub fn peak_bytes(&self) -> usize {
        self.runs.iter().map(|r| r.peak_bytes).max().unwrap_or(0)
    }

    /// Properties 1-4 (the ones `Config::validate` decides): `Some(true)` when all four hold,
    /// `Some(false)` when one fails, `None` when the check did not decide them.
    #[must_use]
    pub fn safety(&self) -> Option<bool> {
        let safety = || {
            self.properties
                .iter()
                .filter(|p| names::SAFETY.contains(&p.name))
        };
        if safety().any(|p| p.status == Status::Fails) {
            Some(false)
        } else if safety().all(|p| p.status == Status::Holds) {
            Some(true)
        } else {
            None
        }
    }

    /// The first failing `always` property.
    #[must_use]
    pub fn first_failure(&self) -> Option<&PropertyResult> {
        self.properties.iter().find(|p| p.status == Status::Fails)
    }

    /// A property's verdict by name.
    #[must_use]
    pub fn property(&self, name: &str) -> Option<&PropertyResult> {
        self.properties.iter().find(|p| p.name == name)
    }
}

/// Why a configuration could not be checked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// A side's own rules fail (the state machines refuse such a configuration).
    #[error(transparent)]
    Invalid(#[from] heartbeat_core::ConfigErrors),
}

/// Options of a check.
#[derive(Clone, Copy, Debug)]
pub struct CheckOptions {
    /// Stop at the first failing `always` property (its counterexample is a shortest one; the
    /// properties not yet decided are reported as not checked).
    pub stop_at_first_failure: bool,
    /// The limits of the whole check; reaching one gives [`Verdict::Inconclusive`].
    pub limits: Limits,
    /// Check in units of the greatest common divisor of every duration only, never on a
    /// coarser grid.
    pub exact: bool,
    /// Explore combinations of faults (see [`HeartbeatModel::combined_faults`]).
    pub combined_faults: bool,
    /// Let faults heal (see [`HeartbeatModel::healing`]); on by default. Off, the required
    /// witness `sometimes-slow-then-recovered` may be unreachable (then the verdict is vacuous).
    pub healing: bool,
    /// Called about once a second with the states explored so far in the current search.
    pub progress: Option<fn(usize, Duration)>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            stop_at_first_failure: true,
            limits: Limits::default(),
            exact: false,
            combined_faults: false,
            healing: true,
            progress: None,
        }
    }
}

/// The witnesses a proof needs: without them properties 1, 5 and 6 could hold because nothing
/// they speak of ever happens. (`sometimes-slow-then-recovered` is reported, not required: in a
/// model whose faults never heal, a configuration under which a live server never makes the
/// client slow cannot recover from Slow, and that is a virtue of the configuration.)
const REQUIRED_WITNESSES: [&str; 2] = [names::SLOW_REACHED, names::RECONNECT_WHEN_DEAD];

fn kind_of(p: &Property<HeartbeatModel>) -> Kind {
    if p.expectation == stateright::Expectation::Always {
        Kind::Always
    } else if REQUIRED_WITNESSES.contains(&p.name) {
        Kind::Witness
    } else {
        Kind::Coverage
    }
}

/// A search and the model it searched.
struct Searched {
    model: HeartbeatModel,
    approximation: Approximation,
    found: explore::Found<Action>,
}

impl Searched {
    fn run(&self) -> Run {
        Run {
            approximation: self.approximation,
            unit: self.model.unit,
            network: self.model.config.network,
            states: self.found.states,
            depth: self.found.depth,
            stop: self.found.stop,
            peak_bytes: self.found.peak_bytes,
            elapsed: self.found.elapsed,
        }
    }

    /// Per property (and `time-advances` last): the path found, if any.
    fn paths(&self) -> Vec<Option<&Vec<Action>>> {
        let mut paths: Vec<_> = self.found.discoveries.iter().map(Option::as_ref).collect();
        paths.push(self.found.time_lock.as_ref().and_then(Option::as_ref));
        paths
    }

    fn result(&self, index: usize, name: &'static str, kind: Kind) -> PropertyResult {
        let path = self.paths()[index];
        let status = match (kind, path.is_some(), self.found.stop) {
            (Kind::Always, true, _) => Status::Fails,
            (_, true, _) => Status::Reached,
            (Kind::Always, false, Stop::Complete) => Status::Holds,
            (_, false, Stop::Complete) => Status::Unreachable,
            (_, false, Stop::Failure | Stop::Found) => Status::NotChecked,
            (_, false, Stop::Limit(_)) => Status::Undecided,
        };
        let trace = path.map(|actions| {
            let what = if kind == Kind::Always {
                "counterexample"
            } else {
                "witness"
            };
            self.model.trace_of(actions, &format!("{what}: {name}"))
        });
        PropertyResult {
            name,
            kind,
            status,
            trace,
            path_len: path.map(Vec::len),
            decided_by: Some(self.approximation),
        }
    }
}

/// Every property's name and kind, `time-advances` last.
fn property_kinds(model: &HeartbeatModel) -> Vec<(&'static str, Kind)> {
    let mut kinds: Vec<_> = model
        .properties()
        .iter()
        .map(|p| (p.name, kind_of(p)))
        .collect();
    kinds.push((names::TIME_ADVANCES, Kind::Always));
    kinds
}

/// The grids to try, coarsest first, each with the assumptions rounded up onto it; empty when
/// the exact unit is the only grid. A grid divides every timer. A grid is skipped when
/// `validate()` says rounding up would break a rule the configuration keeps (the rules are exact
/// for properties 1-4, so that search would fail and be wasted); the choice only saves time,
/// soundness never rests on it. (An invalid configuration gets no grid from [`check`]: an
/// over-approximation cannot prove what the rules say is false.) `timers` and `exact` are the
/// greatest common divisors of the timers and of every duration, in microseconds.
fn grids(config: &Config, timers: u64, exact: u64) -> Vec<(Duration, NetworkAssumptions)> {
    let up =
        |d: Duration, grid: u64| Duration::from_micros(us(d).div_ceil(grid).saturating_mul(grid));
    // Grids of timers / k for k = 1, 2, 5, 10, 20, 50, ... coarser than the exact unit: at most
    // three tries.
    (0..19)
        .flat_map(|e| [1, 2, 5].map(|m| m * 10u64.pow(e)))
        .map(|k| (k, timers / k))
        .take_while(|&(_, grid)| grid > exact)
        .filter(|&(k, grid)| timers % k == 0 && grid % exact == 0)
        .map(|(_, grid)| {
            let n = &config.network;
            let network = NetworkAssumptions {
                max_latency: up(n.max_latency, grid),
                max_server_delay: up(n.max_server_delay, grid),
                max_timer_lateness: up(n.max_timer_lateness, grid),
                max_server_timer_lateness: up(n.max_server_timer_lateness, grid),
            };
            (Duration::from_micros(grid), network)
        })
        // Server timers rounded up past the stall grace reach the core's deferral, whose
        // deadline must lie on the grid.
        .filter(|&(unit, network)| {
            network.max_server_timer_lateness <= STALL_GRACE || us(STALL_GRACE) % us(unit) == 0
        })
        .filter(|&(_, network)| (Config { network, ..*config }).validate().is_ok())
        .take(3)
        .collect()
}

/// Model-checks `config`: searches breadth-first, level by level, so counterexamples are
/// shortest and identical from run to run.
///
/// Small state spaces are searched exactly. When the network assumptions are finer than the
/// timers (a 7 ms latency against 30 s pings) the exact space is large, so the check first runs
/// two small searches, each deciding only what it soundly can: the configured assumptions with
/// extreme choices only ([`HeartbeatModel::corners`], a subset of the behaviours: its
/// counterexamples and witnesses are real), then the assumptions rounded up onto a grid that
/// divides every timer (a superset of the behaviours: what holds there holds here, with the
/// rounded, weaker bounds; what it cannot reach is unreachable). What is still open goes to a
/// finer grid, and at last to the exact unit. docs/invariants.md argues each step.
///
/// # Errors
/// [`CheckError::Invalid`] when a side's own rules fail.
pub fn check(config: &Config, options: CheckOptions) -> Result<Report, CheckError> {
    config.client.validate().into_result()?;
    config.server.validate().into_result()?;
    let started = WallInstant::now();
    let search_options = SearchOptions {
        stop_at_first_failure: options.stop_at_first_failure,
        limits: options.limits,
        progress: options.progress,
        until_found: 0,
    };
    let search = |mut model: HeartbeatModel, approximation, mut search_options: SearchOptions| {
        model.combined_faults = options.combined_faults;
        model.healing = options.healing;
        model.corners = approximation == Approximation::Corners;
        // Each search gets what is left of the time limit.
        let limits = &mut search_options.limits;
        limits.max_time = limits.max_time.map(|t| t.saturating_sub(started.elapsed()));
        let found = explore::search(&model, search_options);
        Searched {
            model,
            approximation,
            found,
        }
    };
    let mut verdicts = Verdicts::new(config, options);
    let exact_unit = us(HeartbeatModel::new(*config).unit);
    let timers = gcd_of(timer_durations(config));
    let coarser = !options.exact && timers > exact_unit;
    let valid = config.validate().is_ok();
    let grids = if coarser && valid {
        grids(config, timers, exact_unit)
    } else {
        Vec::new()
    };
    // A valid configuration with no usable grid has only the exact model to prove it; an
    // invalid one may still be refuted quickly by the corners.
    if coarser && (!grids.is_empty() || !valid) {
        // Small spaces get the exact model straight away (and its shortest counterexamples); a
        // probe of the exact model tells them apart.
        let probe = SearchOptions {
            limits: Limits {
                max_states: options.limits.max_states.min(EXACT_PROBE_STATES),
                ..options.limits
            },
            ..search_options
        };
        let exact = search(HeartbeatModel::new(*config), Approximation::Exact, probe);
        if verdicts.absorb(exact, Partial::Yes) {
            return Ok(verdicts.report());
        }
        for (unit, network) in grids {
            let rounded = Config { network, ..*config };
            let over = search(
                HeartbeatModel::on_grid(*config, network, unit, rounded.guarantees()),
                Approximation::Over,
                search_options,
            );
            if verdicts.absorb(over, Partial::No) {
                return Ok(verdicts.report());
            }
            if verdicts.always_decided() {
                break;
            }
        }
        // What is still open, the corners may show to be real: a counterexample, a witness.
        let corners = search(
            HeartbeatModel::new(*config),
            Approximation::Corners,
            SearchOptions {
                until_found: verdicts.open_targets(),
                ..search_options
            },
        );
        if verdicts.absorb(corners, Partial::Yes) {
            return Ok(verdicts.report());
        }
    }
    let exact = search(
        HeartbeatModel::new(*config),
        Approximation::Exact,
        search_options,
    );
    verdicts.absorb(exact, Partial::No);
    Ok(verdicts.report())
}

/// May a search stop at its state limit without ending the check?
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Partial {
    /// Yes: a probe; more searches follow.
    Yes,
    /// No: its limit is the check's.
    No,
}

/// States a first search of the exact model may take before the check turns to the smaller
/// models (corners, rounded grids).
const EXACT_PROBE_STATES: usize = 500_000;

/// What the searches of one check have decided so far, property by property.
struct Verdicts<'a> {
    config: &'a Config,
    options: CheckOptions,
    kinds: Vec<(&'static str, Kind)>,
    results: Vec<Option<PropertyResult>>,
    runs: Vec<Run>,
    /// A limit that ended the check.
    limit: Option<Limit>,
    /// The rounded-up assumptions and bounds of the over-approximations that decided an
    /// `always` property (the weakest of each, when several did).
    rounded: Option<(NetworkAssumptions, Guarantees)>,
    /// The index in `runs` of the last search that decided an `always` property.
    deciding: Option<usize>,
    idle_states: usize,
}

impl<'a> Verdicts<'a> {
    fn new(config: &'a Config, options: CheckOptions) -> Verdicts<'a> {
        let kinds = property_kinds(&HeartbeatModel::new(*config));
        Verdicts {
            config,
            options,
            results: vec![None; kinds.len()],
            kinds,
            runs: Vec::new(),
            limit: None,
            rounded: None,
            deciding: None,
            idle_states: 0,
        }
    }

    /// Takes what `searched` soundly decides; true when the check is over (every property but
    /// the coverage ones decided, a failure found while stopping at the first, or a limit
    /// reached that ends the check).
    fn absorb(&mut self, searched: Searched, partial: Partial) -> bool {
        self.runs.push(searched.run());
        let complete = searched.found.stop == Stop::Complete;
        for (i, &(name, kind)) in self.kinds.iter().enumerate() {
            if self.results[i].is_some() {
                continue;
            }
            let found = searched.paths()[i].is_some();
            let decides = match searched.approximation {
                // Every behaviour of these is one of the configuration's.
                Approximation::Exact => found || complete,
                // Its transitions are a subset: a state stuck there may move in the exact model.
                Approximation::Corners => found && name != names::TIME_ADVANCES,
                // A superset of the behaviours: what holds (or cannot be reached) there holds
                // (cannot be reached) here; its counterexamples and witnesses may be artefacts
                // of the rounding.
                Approximation::Over => !found && complete,
            };
            if decides {
                self.results[i] = Some(searched.result(i, name, kind));
                if kind == Kind::Always {
                    self.deciding = Some(self.runs.len() - 1);
                    if searched.approximation == Approximation::Over {
                        let this = (searched.model.config.network, searched.model.guarantees);
                        self.rounded = Some(self.rounded.map_or(this, |was| weakest(was, this)));
                    }
                }
            }
        }
        if complete && searched.approximation == Approximation::Exact {
            self.idle_states = searched.found.idle_states;
        }
        match searched.found.stop {
            Stop::Limit(Limit::States(_)) if partial == Partial::Yes => {}
            Stop::Limit(limit) => {
                self.limit = Some(match limit {
                    // The time left was the search's limit; the check's is the one given.
                    Limit::Time(_) => Limit::Time(self.options.limits.max_time.unwrap_or_default()),
                    other => other,
                });
                return true;
            }
            Stop::Complete | Stop::Failure | Stop::Found => {}
        }
        let failed = self
            .results
            .iter()
            .flatten()
            .any(|r| r.status == Status::Fails);
        let decided = self
            .results
            .iter()
            .zip(&self.kinds)
            .all(|(r, (_, kind))| r.is_some() || *kind == Kind::Coverage);
        (failed && self.options.stop_at_first_failure) || decided
    }

    /// Every `always` property is decided.
    fn always_decided(&self) -> bool {
        self.results
            .iter()
            .zip(&self.kinds)
            .all(|(r, (_, kind))| r.is_some() || *kind != Kind::Always)
    }

    /// The open properties a search may stop on finding (bits by `properties()` index; the
    /// coverage ones are not waited for).
    fn open_targets(&self) -> u64 {
        self.results
            .iter()
            .zip(&self.kinds)
            .enumerate()
            .filter(|(i, (r, (name, kind)))| {
                r.is_none() && *kind != Kind::Coverage && *name != names::TIME_ADVANCES && *i < 64
            })
            .fold(0, |bits, (i, _)| bits | 1 << i)
    }

    fn report(self) -> Report {
        let undecided = if self.limit.is_some() {
            Status::Undecided
        } else {
            Status::NotChecked
        };
        let properties: Vec<PropertyResult> = self
            .results
            .into_iter()
            .zip(&self.kinds)
            .map(|(r, &(name, kind))| {
                r.unwrap_or(PropertyResult {
                    name,
                    kind,
                    status: undecided,
                    trace: None,
                    path_len: None,
                    decided_by: None,
                })
            })
            .collect();
        let failed = properties.iter().any(|p| p.status == Status::Fails);
        let open = properties.iter().any(|p| {
            p.kind != Kind::Coverage && matches!(p.status, Status::Undecided | Status::NotChecked)
        });
        let vacuous = properties
            .iter()
            .any(|p| p.kind == Kind::Witness && p.status != Status::Reached);
        let verdict = match self.limit {
            _ if failed => Verdict::Failed,
            Some(limit) if open => Verdict::Inconclusive(limit),
            // Every search ended without a limit and something is open: cannot happen (the
            // last search is a complete exact one), but never call it proven.
            None if open => Verdict::Inconclusive(Limit::States(self.options.limits.max_states)),
            _ if vacuous => Verdict::Vacuous,
            _ => Verdict::Proven,
        };
        let (network, guarantees) = self
            .rounded
            .unwrap_or((self.config.network, self.config.guarantees()));
        let deciding = self.deciding.unwrap_or(self.runs.len().saturating_sub(1));
        Report {
            verdict,
            unit: self.runs.get(deciding).map_or(Duration::ZERO, |r| r.unit),
            exact_unit: HeartbeatModel::new(*self.config).unit,
            deciding,
            runs: self.runs,
            network,
            rounded: self.rounded.is_some(),
            guarantees,
            idle_states: self.idle_states,
            properties,
        }
    }
}

/// The weaker of two rounded proofs' assumptions and bounds, component by component: what both
/// proofs support.
fn weakest(
    a: (NetworkAssumptions, Guarantees),
    b: (NetworkAssumptions, Guarantees),
) -> (NetworkAssumptions, Guarantees) {
    let ((na, ga), (nb, gb)) = (a, b);
    (
        NetworkAssumptions {
            max_latency: na.max_latency.max(nb.max_latency),
            max_server_delay: na.max_server_delay.max(nb.max_server_delay),
            max_timer_lateness: na.max_timer_lateness.max(nb.max_timer_lateness),
            max_server_timer_lateness: na
                .max_server_timer_lateness
                .max(nb.max_server_timer_lateness),
        },
        Guarantees {
            client_tolerance: ga.client_tolerance.min(gb.client_tolerance),
            detection_bound: ga.detection_bound.max(gb.detection_bound),
            warning_lead: ga.warning_lead.min(gb.warning_lead),
            slow_bound: ga.slow_bound.max(gb.slow_bound),
            server_detection_bound: ga.server_detection_bound.max(gb.server_detection_bound),
            heal_settle_client: ga.heal_settle_client.max(gb.heal_settle_client),
            heal_settle_server: ga.heal_settle_server.max(gb.heal_settle_server),
            reconnect_bound: ga.reconnect_bound.max(gb.reconnect_bound),
        },
    )
}

/// Serves stateright's Explorer for `config` on `addr` (blocks).
pub fn serve(config: Config, addr: &str) {
    let _checker = HeartbeatModel::new(config).checker().threads(1).serve(addr);
    // The Explorer runs on its own threads; keep the process alive for it.
    loop {
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A complete search where nothing fails but a required witness was never reached.
    fn searched_without(witness: &str) -> Searched {
        let model = HeartbeatModel::new(Config::default());
        let discoveries = model
            .properties()
            .iter()
            .map(|p| {
                (p.expectation == stateright::Expectation::Sometimes && p.name != witness)
                    .then(Vec::new)
            })
            .collect();
        Searched {
            model,
            approximation: Approximation::Exact,
            found: explore::Found {
                stop: Stop::Complete,
                states: 1,
                depth: 0,
                discoveries,
                time_lock: Some(None),
                idle_states: 0,
                peak_bytes: 0,
                elapsed: Duration::ZERO,
            },
        }
    }

    /// "proven" needs every required witness; a missing one makes the proof vacuous (exit 1),
    /// a missing coverage witness does not.
    #[test]
    fn an_unreached_witness_makes_the_proof_vacuous() {
        for witness in REQUIRED_WITNESSES {
            let config = Config::default();
            let mut verdicts = Verdicts::new(&config, CheckOptions::default());
            assert!(verdicts.absorb(searched_without(witness), Partial::No));
            let report = verdicts.report();
            assert_eq!(report.verdict, Verdict::Vacuous, "{witness}");
            assert!(!report.proven());
            assert_eq!(
                report.property(witness).map(|p| p.status),
                Some(Status::Unreachable)
            );
        }
        for coverage in [names::SLOW_THEN_RECOVERED, names::DETECTION_BOUND_REACHED] {
            let config = Config::default();
            let mut verdicts = Verdicts::new(&config, CheckOptions::default());
            assert!(verdicts.absorb(searched_without(coverage), Partial::No));
            assert_eq!(verdicts.report().verdict, Verdict::Proven, "{coverage}");
        }
    }
}
