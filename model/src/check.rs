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
//! the network is cut.

use std::time::{Duration, Instant as WallInstant};

use heartbeat_core::{
    Client, CloseReason, Config, Event, Guarantees, Instant, Message, ReconnectReason, Server,
    ServerEvent,
};
use stateright::{Checker, HasDiscoveries, Model, Path, Property};

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
    /// Non-vacuity: a Slow period that recovers is reachable.
    pub const SLOW_THEN_RECOVERED: &str = "sometimes-slow-then-recovered";
    /// Non-vacuity: a reconnect after the server died is reachable.
    pub const RECONNECT_WHEN_DEAD: &str = "sometimes-reconnect-when-dead";
    /// Tightness witness: a dead server detected exactly at the detection bound.
    pub const DETECTION_BOUND_REACHED: &str = "sometimes-detection-at-bound";
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

/// How the connection ended (the model stops there).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Outcome {
    /// Why the client reconnected.
    pub reason: ReconnectReason,
    /// Time from the Slow warning to the reconnect, if a Slow period was under way.
    pub lead: Option<Duration>,
    /// The server was alive (normal or overloaded) and the network up.
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
    /// The server closed while the network was up.
    pub closed_while_up: Option<CloseKey>,
    /// A Slow period recovered in the step that led here (for non-vacuity; cleared on the
    /// next step so that it does not double the state space).
    pub just_recovered: bool,
    /// The client's reconnect request: terminal.
    pub outcome: Option<Outcome>,
}

/// A step of the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Deliver the flight at this index.
    Deliver(usize),
    /// The client's timer fires (at or up to `max_timer_lateness` after its deadline).
    ClientTimer,
    /// The server's timer fires (exactly at its deadline).
    ServerTimer,
    /// One time unit passes.
    Tick,
    /// The server becomes overloaded.
    Overload,
    /// The server dies.
    Kill,
    /// The network is cut.
    Partition,
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
}

/// Greatest common divisor.
fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

fn us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl HeartbeatModel {
    /// The model of `config` (which should pass its per-side rules; see [`check`]).
    #[must_use]
    pub fn new(config: Config) -> HeartbeatModel {
        let (c, s, n) = (&config.client, &config.server, &config.network);
        let unit = [
            c.ping_interval,
            c.pong_timeout,
            c.connect_timeout,
            s.ping_interval,
            s.idle_timeout,
            s.min_client_ping_interval,
            n.max_latency,
            n.max_server_delay,
            n.max_timer_lateness,
        ]
        .into_iter()
        .map(us)
        .fold(0, gcd)
        .max(1);
        HeartbeatModel {
            config,
            unit: Duration::from_micros(unit),
            guarantees: config.guarantees(),
            combined_faults: false,
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
                if let Some(d) = st.client.poll_timeout() {
                    let late = now.saturating_duration_since(d);
                    if !late.is_zero() {
                        rec.note(
                            now,
                            Who::Client(0),
                            format!("timer fired {} late", crate::render::fmt_dur(late)),
                        );
                    }
                }
                st.client.handle_timeout(now);
                self.drain_client(&mut st, &mut rec);
            }
            Action::ServerTimer => {
                if let Some(s) = st.server.as_mut() {
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
        }
        let shift = self.canonicalize(&mut st);
        Some((st, shift))
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
        st.flights.push(Flight {
            sent: now,
            latest: window.map(|w| now.saturating_add(w)),
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
        while let Some(e) = st.client.poll_event() {
            rec.push(now, Who::Client(0), What::Event(e));
            match e {
                Event::PongMissed { .. }
                    if st.mode == Mode::Normal && !st.partitioned && !st.overloaded_once =>
                {
                    st.missed_while_normal = true;
                }
                Event::Slow { .. } => st.slow_since = Some(now),
                Event::Recovered { .. } => {
                    st.slow_since = None;
                    st.just_recovered = true;
                }
                Event::Reconnect { reason, .. } => {
                    let server_alive = st.mode != Mode::Dead && !st.partitioned;
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
            if !st.partitioned {
                st.closed_while_up.get_or_insert(key);
            }
            st.server = None;
            rec.push(now, Who::Server(0), What::Closed);
            self.send(st, false, Wire::Close(key), Some(self.latency()), rec);
        }
    }

    /// Shifts the state so that its earliest instant is zero and sequence numbers start at the
    /// machines' next ones; sorts the flights. Returns the time shift.
    fn canonicalize(&self, st: &mut State) -> Shift {
        let mut earliest = st.now.min(st.client.earliest_instant());
        if let Some(s) = &st.server {
            earliest = earliest.min(s.earliest_instant());
        }
        for f in &st.flights {
            earliest = earliest.min(f.sent);
        }
        for t in [st.fault_at, st.slow_since].into_iter().flatten() {
            earliest = earliest.min(t);
        }
        let d = earliest.since_origin();
        let back = |t: Instant| t.saturating_sub(d);
        let client_seqs = st.client.next_seq();
        let server_seqs = st.server.as_ref().map_or(0, Server::next_seq);
        st.now = back(st.now);
        st.client.shift(d, client_seqs);
        if let Some(s) = st.server.as_mut() {
            s.shift(d, server_seqs);
        }
        st.fault_at = st.fault_at.map(back);
        st.slow_since = st.slow_since.map(back);
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
        let deadlines = [
            st.client.poll_timeout(),
            st.server.as_ref().and_then(Server::poll_timeout),
        ];
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
        if let Some(d) = st.client.poll_timeout() {
            if now >= d.saturating_add(self.config.network.max_timer_lateness) {
                return false;
            }
        }
        if let Some(d) = st.server.as_ref().and_then(Server::poll_timeout) {
            if now >= d {
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
                latest: Some(Instant::ZERO.saturating_add(self.latency())),
                to_server: true,
                wire: Wire::Hello,
            }],
            mode: Mode::Normal,
            partitioned: false,
            fault_at: None,
            overloaded_once: false,
            slow_since: None,
            missed_while_normal: false,
            closed_while_up: None,
            just_recovered: false,
            outcome: None,
        }
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
        if st.outcome.is_some() {
            return;
        }
        let now = st.now;
        for (i, f) in st.flights.iter().enumerate() {
            if now >= f.sent {
                actions.push(Action::Deliver(i));
            }
        }
        if st.client.poll_timeout().is_some_and(|d| now >= d) {
            actions.push(Action::ClientTimer);
        }
        if st
            .server
            .as_ref()
            .and_then(Server::poll_timeout)
            .is_some_and(|d| now >= d)
        {
            actions.push(Action::ServerTimer);
        }
        if self.can_tick(st) {
            actions.push(Action::Tick);
        }
        let pristine = st.mode == Mode::Normal && !st.partitioned && !st.overloaded_once;
        if pristine {
            actions.push(Action::Overload);
        }
        if pristine || (self.combined_faults && st.fault_at.is_none()) {
            actions.push(Action::Kill);
            actions.push(Action::Partition);
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

/// The verdict on one property.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PropertyResult {
    /// Its name (see [`names`]).
    pub name: &'static str,
    /// `always` properties: true when no reachable state breaks it. `sometimes`: true when a
    /// state satisfying it was found.
    pub holds: bool,
    /// True for `sometimes` properties.
    pub sometimes: bool,
    /// The shortest counterexample (or, for `sometimes`, the shortest witness) as a trace.
    pub trace: Option<Trace>,
}

/// The outcome of checking one configuration.
#[derive(Clone, Debug)]
pub struct Report {
    /// Unique states explored.
    pub states: usize,
    /// The checker visited every reachable state (or stopped at the first failure).
    pub complete: bool,
    /// Wall time of the check.
    pub elapsed: Duration,
    /// The time unit used.
    pub unit: Duration,
    /// Every property's verdict, in [`HeartbeatModel::properties`] order.
    pub properties: Vec<PropertyResult>,
}

impl Report {
    /// True when every `always` property holds.
    #[must_use]
    pub fn proven(&self) -> bool {
        self.complete && self.properties.iter().all(|p| p.sometimes || p.holds)
    }

    /// True when properties 1-4 (the ones `Config::validate` decides) hold.
    #[must_use]
    pub fn safety_proven(&self) -> bool {
        self.complete
            && self
                .properties
                .iter()
                .filter(|p| names::SAFETY.contains(&p.name))
                .all(|p| p.holds)
    }

    /// The first failing `always` property.
    #[must_use]
    pub fn first_failure(&self) -> Option<&PropertyResult> {
        self.properties.iter().find(|p| !p.sometimes && !p.holds)
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
    /// The state space would not fit the budget.
    #[error("the model has more than {limit} states at a time unit of {unit:?}; choose durations with a larger common divisor")]
    TooLarge {
        /// The state budget.
        limit: usize,
        /// The unit.
        unit: Duration,
    },
}

/// Options of a check.
#[derive(Clone, Copy, Debug)]
pub struct CheckOptions {
    /// Stop at the first failing `always` property (breadth-first, so its counterexample is a
    /// shortest one).
    pub stop_at_first_failure: bool,
    /// Refuse configurations whose state space exceeds this many states (the check then reports
    /// an error, never a success).
    pub max_states: usize,
    /// Called about once a second with the states explored so far.
    pub progress: Option<fn(usize, Duration)>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            stop_at_first_failure: true,
            max_states: 20_000_000,
            progress: None,
        }
    }
}

/// Model-checks `config`: breadth-first on one thread, so counterexamples are shortest and
/// identical from run to run.
///
/// # Errors
/// [`CheckError::Invalid`] when a side's own rules fail; [`CheckError::TooLarge`] when the state
/// space exceeds the budget (never a partial success).
pub fn check(config: &Config, options: CheckOptions) -> Result<Report, CheckError> {
    check_with(config, options, false)
}

/// [`check`], optionally also exploring combined faults (see [`HeartbeatModel::combined_faults`]).
///
/// # Errors
/// As [`check`].
pub fn check_with(
    config: &Config,
    options: CheckOptions,
    combined_faults: bool,
) -> Result<Report, CheckError> {
    config.client.validate().into_result()?;
    config.server.validate().into_result()?;
    let mut model = HeartbeatModel::new(*config);
    model.combined_faults = combined_faults;
    let started = WallInstant::now();
    let mut builder = model
        .clone()
        .checker()
        .threads(1)
        .target_state_count(options.max_states.saturating_add(1));
    if options.stop_at_first_failure {
        builder = builder.finish_when(HasDiscoveries::AnyFailures);
    }
    let checker = builder.spawn_bfs();
    let checker = match options.progress {
        Some(report) => {
            let mut last = WallInstant::now();
            while !checker.is_done() {
                std::thread::sleep(Duration::from_millis(50));
                if last.elapsed() >= Duration::from_secs(1) {
                    report(checker.unique_state_count(), started.elapsed());
                    last = WallInstant::now();
                }
            }
            checker.join()
        }
        None => checker.join(),
    };
    let states = checker.unique_state_count();
    let failed = checker.discoveries().iter().any(|(name, _)| {
        model
            .properties()
            .iter()
            .any(|p| p.name == *name && p.expectation == stateright::Expectation::Always)
    });
    if states > options.max_states && !failed {
        return Err(CheckError::TooLarge {
            limit: options.max_states,
            unit: model.unit,
        });
    }
    let discoveries = checker.discoveries();
    let properties = model
        .properties()
        .iter()
        .map(|p| {
            let sometimes = p.expectation == stateright::Expectation::Sometimes;
            let found = discoveries.get(p.name);
            let trace = found.map(|path: &Path<State, Action>| {
                let actions: Vec<Action> = path.clone().into_actions();
                let title = if sometimes {
                    format!("witness: {}", p.name)
                } else {
                    format!("counterexample: {}", p.name)
                };
                model.trace_of(&actions, &title)
            });
            PropertyResult {
                name: p.name,
                holds: if sometimes {
                    found.is_some()
                } else {
                    found.is_none()
                },
                sometimes,
                trace,
            }
        })
        .collect();
    Ok(Report {
        states,
        complete: checker.is_done() || failed,
        elapsed: started.elapsed(),
        unit: model.unit,
        properties,
    })
}

/// Serves stateright's Explorer for `config` on `addr` (blocks).
pub fn serve(config: Config, addr: &str) {
    let _checker = HeartbeatModel::new(config).checker().threads(1).serve(addr);
    // The Explorer runs on its own threads; keep the process alive for it.
    loop {
        std::thread::park();
    }
}
