//! The reconnect cycle as a model (property 9): the real [`Client`] from its first connect
//! attempt through backoff, failed attempts (refused, or timed out) and a lost connection to its
//! second connection, against a server that is down (its process gone: connects are refused; or
//! the network cut: nothing answers) and comes back at any moment.
//!
//! Property 9: once the server is up and reachable, and stays so, a client without a connection
//! has one again within [`Guarantees::reconnect_bound`] of the later of the two: the moment it
//! lost its connection (or started) and the moment the server came back.
//!
//! What happens on a connection (pings, misses, the reconnect request) is the main model's
//! ([`crate::check`]); here a connection ends at any moment it is open, as a close, a restart or
//! a missed-pong reconnect would end it, and the same `give_up` of the core follows. The
//! handshake is the adapter's (an upgrade request and its response), so no `Server` is needed:
//! the request is handled within λ + L_s of being sent and the response within λ + L.
//!
//! [`Guarantees::reconnect_bound`]: heartbeat_core::Guarantees::reconnect_bound

use std::time::Duration;

use heartbeat_core::client::{Client, Event};
use heartbeat_core::{Config, Instant};
use stateright::{Model, Property};

use crate::explore::Timed;

/// Property names.
pub mod names {
    /// A client facing a server that is up is connected again within the bound.
    pub const RECONNECTED_IN_TIME: &str = "reconnected-in-time";
    /// Non-vacuity: a second connection is reachable.
    pub const SECOND_CONNECTION: &str = "sometimes-second-connection";
    /// Coverage: a connect attempt ends in `ConnectTimeout`.
    pub const CONNECT_TIMED_OUT: &str = "sometimes-connect-timeout";
    /// Coverage: a connect attempt is refused (`ConnectFailed`).
    pub const CONNECT_REFUSED: &str = "sometimes-connect-refused";
}

/// The server, as the connecting client meets it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum World {
    /// Up and reachable: the upgrade is answered.
    Up,
    /// The process is gone, the host answers: connects are refused (a TCP reset).
    Refusing,
    /// The network is cut (or the host gone): nothing answers.
    Silent,
}

/// A message of the handshake in flight: handled by `latest` at the latest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Handshake {
    /// The upgrade request, on its way to the server.
    Request { latest: Instant },
    /// The upgrade response, on its way to the client.
    Response { latest: Instant },
    /// A refusal (reset) on its way to the client.
    Refusal { latest: Instant },
}

/// A state of the reconnect model.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReconnectState {
    /// The clock (canonical: shifted back by whole units so that the earliest instant held is
    /// in the first unit).
    pub now: Instant,
    /// The real client.
    pub client: Client,
    /// The server as the client meets it.
    pub world: World,
    /// The handshake message of the current attempt in flight, if any.
    pub handshake: Option<Handshake>,
    /// Since when the client has had no connection (its start, or its reconnect request).
    pub waiting_since: Option<Instant>,
    /// Since when the server has been up, if it is.
    pub up_since: Option<Instant>,
    /// Connections opened so far.
    pub connections: u8,
    /// The world may still change this many times.
    pub changes_left: u8,
    /// Attempts that failed in a row (the search explores up to [`ReconnectModel::max_failures`]).
    pub failures: u8,
    /// The last attempt ended in `ConnectTimeout` / was refused (coverage).
    pub timed_out: bool,
    /// See `timed_out`.
    pub refused: bool,
}

/// A step of the reconnect model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReconnectAction {
    /// The handshake message in flight is handled.
    Deliver,
    /// The client's timer fires (on time or up to its lateness late).
    ClientTimer,
    /// The open connection ends (closed, the server restarted, or missed pongs).
    Lose,
    /// The open connection shows a sign of life (the backoff starts over after it).
    Read,
    /// The server comes back, or goes down (refusing or silent).
    Change(World),
    /// One time unit passes.
    Tick,
}

/// The model of one configuration's reconnect cycle.
#[derive(Clone, Debug)]
pub struct ReconnectModel {
    /// The configuration (its client and network settings matter).
    pub config: Config,
    /// The time unit: the greatest common divisor of the durations involved.
    pub unit: Duration,
    /// From the later of losing the connection and the server coming back, to connected.
    pub bound: Duration,
    /// Failed attempts in a row explored before a run is cut off (the backoff's growth and its
    /// cap are reached well before with the defaults).
    pub max_failures: u8,
    /// The client's jitter seed: the backoff delays it draws are fixed by it, so the search
    /// covers that sequence of draws (each at most its cap, which is what the bound uses).
    pub seed: u64,
}

impl ReconnectModel {
    /// The model of `config`; `None` when the client settings are invalid.
    #[must_use]
    pub fn new(config: Config) -> Option<ReconnectModel> {
        config.client.validate().into_result().ok()?;
        let (c, n) = (&config.client, &config.network);
        let unit = crate::check::unit_of([
            c.connect_timeout,
            c.backoff_initial,
            c.backoff_max,
            n.max_latency,
            n.max_timer_lateness,
            n.max_server_timer_lateness,
        ]);
        let mut bound = config.guarantees().reconnect_bound;
        if n.max_timer_lateness < unit {
            // The backoff timer may fire up to a unit later than the core asked (see
            // `client_window`).
            bound = bound.saturating_add(unit);
        }
        Some(ReconnectModel {
            config,
            unit,
            bound,
            max_failures: 6,
            seed: 0,
        })
    }

    fn grid(&self, t: Instant, up: bool) -> Instant {
        let unit = self.unit.as_nanos();
        let since = t.since_origin().as_nanos();
        let units = if up {
            since.div_ceil(unit)
        } else {
            since / unit
        };
        let at = u64::try_from(units * unit).unwrap_or(u64::MAX);
        Instant::ZERO.saturating_add(Duration::from_nanos(at))
    }

    /// When the client's timer may fire, on the model's grid: from its deadline to the
    /// deadline plus the timer lateness. The backoff's jittered deadline is in microseconds:
    /// the timer then fires at the grid's units within that window, or at the first unit after
    /// the deadline when the window holds none (L below the unit; `new` widens the bound by a
    /// unit then).
    fn client_window(&self, st: &ReconnectState) -> Option<(Instant, Instant)> {
        let d = st.client.poll_timeout()?;
        let first = self.grid(d, true);
        let late = self.config.network.max_timer_lateness;
        Some((first, first.max(self.grid(d.saturating_add(late), false))))
    }

    fn connected(st: &ReconnectState) -> bool {
        matches!(
            st.client.status(),
            heartbeat_core::Status::Healthy | heartbeat_core::Status::Slow
        )
    }

    /// A run ends at the second connection, or after `max_failures` failed attempts in a row
    /// while the server is down (never while it is up: the worst case for the property is a
    /// failure just as it comes back).
    fn ended(&self, st: &ReconnectState) -> bool {
        st.connections >= 2 || (st.failures > self.max_failures && st.up_since.is_none())
    }

    /// Shifts the state back by whole units so that its earliest instant falls in the first
    /// unit, and renumbers the client's pings from zero: states that differ only in when they
    /// happen are one (the client behaves the same, `Client::shift`; the property compares
    /// differences only).
    fn canonicalize(&self, st: &mut ReconnectState) {
        let earliest = [st.waiting_since, st.up_since]
            .into_iter()
            .flatten()
            .fold(st.now.min(st.client.earliest_instant()), Instant::min);
        let d = self.grid(earliest, false).since_origin();
        let back = |t: Instant| t.saturating_sub(d);
        st.now = back(st.now);
        st.client.shift(d, st.client.next_seq());
        st.waiting_since = st.waiting_since.map(back);
        st.up_since = st.up_since.map(back);
        st.handshake = st.handshake.map(|h| match h {
            Handshake::Request { latest } => Handshake::Request {
                latest: back(latest),
            },
            Handshake::Response { latest } => Handshake::Response {
                latest: back(latest),
            },
            Handshake::Refusal { latest } => Handshake::Refusal {
                latest: back(latest),
            },
        });
    }

    /// Carries out the client's outputs as an adapter would.
    fn drain(&self, st: &mut ReconnectState) {
        let n = &self.config.network;
        while st.client.poll_transmit().is_some() {}
        while let Some(e) = st.client.poll_event() {
            match e {
                Event::Connect { .. } => {
                    st.handshake = Some(Handshake::Request {
                        latest: st
                            .now
                            .saturating_add(n.max_latency)
                            .saturating_add(n.max_server_timer_lateness),
                    });
                }
                Event::Connected => {
                    st.connections += 1;
                    st.failures = 0;
                    st.waiting_since = None;
                }
                Event::Reconnect { reason, .. } => {
                    // The socket is closed: whatever of its handshake is in flight is moot.
                    st.handshake = None;
                    st.waiting_since.get_or_insert(st.now);
                    match reason {
                        heartbeat_core::ReconnectReason::ConnectTimeout => {
                            st.failures += 1;
                            st.timed_out = true;
                        }
                        heartbeat_core::ReconnectReason::ConnectFailed => {
                            st.failures += 1;
                            st.refused = true;
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
        }
    }
}

impl Model for ReconnectModel {
    type State = ReconnectState;
    type Action = ReconnectAction;

    fn init_states(&self) -> Vec<ReconnectState> {
        [World::Up, World::Refusing, World::Silent]
            .into_iter()
            .map(|world| {
                let client = Client::new(&self.config.client, Instant::ZERO, self.seed)
                    .expect("checked by new()");
                let mut st = ReconnectState {
                    now: Instant::ZERO,
                    client,
                    world,
                    handshake: None,
                    waiting_since: Some(Instant::ZERO),
                    up_since: (world == World::Up).then_some(Instant::ZERO),
                    connections: 0,
                    changes_left: 2,
                    failures: 0,
                    timed_out: false,
                    refused: false,
                };
                self.drain(&mut st);
                st
            })
            .collect()
    }

    fn actions(&self, st: &ReconnectState, actions: &mut Vec<ReconnectAction>) {
        if self.ended(st) {
            return;
        }
        let mut must_wait = false;
        if let Some(h) = st.handshake {
            actions.push(ReconnectAction::Deliver);
            let (Handshake::Request { latest }
            | Handshake::Response { latest }
            | Handshake::Refusal { latest }) = h;
            must_wait |= st.now >= latest;
        }
        if Self::connected(st) {
            // What happens on a connection is the main model's: here it ends, at once (time
            // matters only relatively), after showing a sign of life or not (which decides
            // whether the backoff starts over).
            actions.push(ReconnectAction::Lose);
            actions.push(ReconnectAction::Read);
            return;
        }
        if let Some((first, last)) = self.client_window(st) {
            if st.now >= first {
                actions.push(ReconnectAction::ClientTimer);
                must_wait |= st.now >= last;
            }
        }
        if st.changes_left > 0 {
            for w in [World::Up, World::Refusing, World::Silent] {
                if w != st.world {
                    actions.push(ReconnectAction::Change(w));
                }
            }
        }
        if !must_wait {
            actions.push(ReconnectAction::Tick);
        }
    }

    fn next_state(&self, st: &ReconnectState, action: ReconnectAction) -> Option<ReconnectState> {
        let mut st = st.clone();
        st.timed_out = false;
        st.refused = false;
        let now = st.now;
        let n = &self.config.network;
        match action {
            ReconnectAction::Tick => {
                // While anything is pending every unit is a choice; otherwise jump to the next
                // deadline (a change of the world at any unit in between is covered by the
                // Change action at the start of the stretch: nothing else happens meanwhile).
                let step = now.saturating_add(self.unit);
                st.now = match (st.handshake, self.client_window(&st)) {
                    (None, Some((first, _))) if first > now => first,
                    _ => step,
                };
            }
            ReconnectAction::Deliver => match st.handshake.take()? {
                Handshake::Request { .. } => {
                    st.handshake = match st.world {
                        World::Up => Some(Handshake::Response {
                            latest: now
                                .saturating_add(n.max_latency)
                                .saturating_add(n.max_timer_lateness),
                        }),
                        World::Refusing => Some(Handshake::Refusal {
                            latest: now
                                .saturating_add(n.max_latency)
                                .saturating_add(n.max_timer_lateness),
                        }),
                        World::Silent => None,
                    };
                }
                Handshake::Response { .. } => {
                    st.client.handle_connected(now);
                    self.drain(&mut st);
                }
                Handshake::Refusal { .. } => {
                    st.client.handle_disconnected(now);
                    self.drain(&mut st);
                }
            },
            ReconnectAction::ClientTimer => {
                st.client.handle_timeout(now);
                self.drain(&mut st);
            }
            ReconnectAction::Lose => {
                st.client.handle_disconnected(now);
                self.drain(&mut st);
            }
            ReconnectAction::Read => {
                st.client.handle_read(now);
                self.drain(&mut st);
            }
            ReconnectAction::Change(world) => {
                st.world = world;
                st.changes_left -= 1;
                st.up_since = (world == World::Up).then_some(now);
                if world != World::Up {
                    // What is on the wire now is lost.
                    st.handshake = None;
                }
            }
        }
        self.canonicalize(&mut st);
        Some(st)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always(
                names::RECONNECTED_IN_TIME,
                |m: &Self, s: &ReconnectState| match (s.waiting_since, s.up_since) {
                    (Some(w), Some(u)) => s.now.saturating_duration_since(w.max(u)) <= m.bound,
                    _ => true,
                },
            ),
            Property::sometimes(names::SECOND_CONNECTION, |_, s: &ReconnectState| {
                s.connections >= 2
            }),
            Property::sometimes(names::CONNECT_TIMED_OUT, |_, s: &ReconnectState| {
                s.timed_out
            }),
            Property::sometimes(names::CONNECT_REFUSED, |_, s: &ReconnectState| s.refused),
        ]
    }
}

impl Timed for ReconnectModel {
    fn lets_time_pass(&self, action: &ReconnectAction) -> bool {
        *action == ReconnectAction::Tick
    }

    fn is_ending(&self, st: &ReconnectState) -> bool {
        self.ended(st)
    }
}
