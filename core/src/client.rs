//! The frontend's heartbeat: pings, misses, the Slow warning, reconnects with backoff, and
//! local stalls told apart from a dead server.
//!
//! Owns the decision "is this connection alive?". Never reads a clock, never opens a socket,
//! never draws a random number: time, socket events and the backoff seed are inputs.

use core::time::Duration;

use crate::config::ClientConfig;
use crate::time::Instant;
use crate::validate::ConfigErrors;
use crate::wire::Message;

/// What the client shows its user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Opening the first connection.
    Connecting,
    /// Connected, and the server answers within the pong timeout.
    Healthy,
    /// Connected, but `slow_threshold` or more consecutive pings went unanswered. A warning:
    /// nothing is torn down.
    Slow,
    /// The connection was given up or lost; waiting out the backoff or opening a new one.
    Reconnecting,
    /// Closed by the application; terminal.
    Closed,
}

/// Why the client gave up a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ReconnectReason {
    /// `max_missed_pongs` consecutive pings went unanswered: the server or the path is dead.
    MissedPongs {
        /// Consecutive misses when the client gave up.
        missed: u32,
    },
    /// The socket closed or failed while connected (the caller said so).
    ConnectionClosed,
    /// Opening the socket failed (the caller said so).
    ConnectFailed,
    /// Opening the socket took longer than `connect_timeout`.
    ConnectTimeout,
}

/// Something the caller must act on or may want to show, drained with [`Client::poll_event`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Event {
    /// Open a connection now, then call [`Client::handle_connected`] or
    /// [`Client::handle_disconnected`].
    Connect {
        /// Consecutive failed attempts before this one (0 for a first or fresh connection).
        attempt: u32,
    },
    /// The connection is up; the first ping has been queued.
    Connected,
    /// A round-trip time, from a pong that matched the ping in flight.
    Rtt(Duration),
    /// A ping went unanswered for `pong_timeout`.
    PongMissed {
        /// Consecutive misses so far.
        missed: u32,
        /// The count at which the client reconnects.
        max_missed_pongs: u32,
    },
    /// The status became Slow: a warning before any reconnect.
    Slow {
        /// Consecutive misses so far.
        missed: u32,
    },
    /// A sign of life ended a Slow period; the status is Healthy again.
    Recovered {
        /// Consecutive misses before the sign of life.
        missed: u32,
    },
    /// A timer fired `late_by` after its deadline: the client itself was stalled (background
    /// tab, sleeping laptop). The pending miss was not counted; a probe ping was sent instead.
    Stalled {
        /// How late the timer fired.
        late_by: Duration,
    },
    /// Close the socket: the client gave up this connection. A [`Event::Connect`] follows when
    /// the backoff has passed.
    Reconnect {
        /// Why.
        reason: ReconnectReason,
        /// The jittered delay before the next attempt.
        backoff: Duration,
    },
}

/// A host hint. Hints never cause a reconnect by themselves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Hint {
    /// The page was hidden; timers may now fire late.
    Hidden,
    /// The page is visible again: probe at once.
    Visible,
    /// The host says the network is down. Recorded only: heartbeats decide.
    Offline,
    /// The host says the network is back: probe at once.
    Online,
}

/// The client's timings, in milliseconds, copied from a validated [`ClientConfig`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Timings {
    ping_interval: u32,
    pong_timeout: u32,
    stall_threshold: u32,
    connect_timeout: u32,
    backoff_initial: u32,
    backoff_max: u32,
    slow_threshold: u16,
    max_missed_pongs: u16,
}

/// The ping whose deadline is pending.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct InFlight {
    seq: u32,
    sent: Instant,
    /// Evidence arrived after it was sent; its deadline no longer matters.
    answered: bool,
    /// Sent to decide after a stall; a probe's miss is never forgiven.
    probe: bool,
}

/// The connection's phase; each variant holds exactly what that phase needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Phase {
    /// The caller is opening a socket (after [`Event::Connect`]).
    Connecting { deadline: Instant },
    /// Connected; pinging.
    Connected {
        next_ping: Instant,
        in_flight: Option<InFlight>,
        missed: u16,
    },
    /// Waiting out the backoff; then [`Event::Connect`].
    Backoff { until: Instant },
    /// Closed by the application.
    Closed,
}

/// Pending outputs, as bits, so that queuing never allocates and the state stays small.
mod pending {
    pub(super) const PONG: u16 = 1 << 0;
    pub(super) const PING: u16 = 1 << 1;
    pub(super) const CONNECTED: u16 = 1 << 2;
    pub(super) const RTT: u16 = 1 << 3;
    pub(super) const RECOVERED: u16 = 1 << 4;
    pub(super) const STALLED: u16 = 1 << 5;
    pub(super) const MISSED: u16 = 1 << 6;
    pub(super) const SLOW: u16 = 1 << 7;
    pub(super) const RECONNECT: u16 = 1 << 8;
    pub(super) const CONNECT: u16 = 1 << 9;
    /// Event bits in drain order.
    pub(super) const EVENTS: [u16; 8] = [
        CONNECTED, RTT, RECOVERED, STALLED, MISSED, SLOW, RECONNECT, CONNECT,
    ];
}

/// The frontend's heartbeat state machine, one per logical connection (it survives reconnects).
///
/// # Driving it
/// After creating it, and after **every** `handle_*` call, drain the outputs in this order:
/// 1. [`Client::poll_transmit`] until `None`: heartbeat messages to write to the socket (a pong
///    answering the server comes before a ping);
/// 2. [`Client::poll_event`] until `None`: what to do (connect, close the socket) and what to
///    show (status changes, RTT);
/// 3. [`Client::poll_timeout`]: when to call [`Client::handle_timeout`] next.
///
/// Outputs of the same kind are not queued: an undrained event is replaced by the next one of its
/// kind. A `now` older than one already seen is treated as the latest one seen; time never moves
/// backwards, and a spare `handle_timeout` does nothing.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Client {
    t: Timings,
    now: Instant,
    phase: Phase,
    next_seq: u32,
    /// Failed attempts since the last connection that showed a sign of life.
    attempt: u32,
    /// A connection has been opened at least once (Connecting vs Reconnecting).
    connected_once: bool,
    /// splitmix64 state, seeded by the caller: the jitter is replayable.
    rng: u64,
    pending: u16,
    pong_seq: u64,
    rtt_us: u32,
    note: u32,
    stall_ms: u32,
    reason: ReconnectReason,
}

fn ms(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

impl Client {
    /// A client that will ask to connect at once ([`Event::Connect`]).
    ///
    /// `seed` drives the reconnect jitter; pass a random value in production and a fixed one in
    /// tests to replay a run exactly.
    ///
    /// # Errors
    /// The config's own rules ([`ClientConfig::validate`]); rules that relate it to a server
    /// and a network are checked by [`crate::Config::validate`].
    pub fn new(config: &ClientConfig, now: Instant, seed: u64) -> Result<Client, ConfigErrors> {
        config.validate().into_result()?;
        let t = Timings {
            ping_interval: ms(config.ping_interval),
            pong_timeout: ms(config.pong_timeout),
            stall_threshold: ms(config.stall_threshold),
            connect_timeout: ms(config.connect_timeout),
            backoff_initial: ms(config.backoff_initial),
            backoff_max: ms(config.backoff_max),
            // Validation bounds both counts by MAX_COUNT.
            slow_threshold: config.slow_threshold as u16,
            max_missed_pongs: config.max_missed_pongs as u16,
        };
        Ok(Client {
            t,
            now,
            phase: Phase::Connecting {
                deadline: now.plus_ms(t.connect_timeout),
            },
            next_seq: 0,
            attempt: 0,
            connected_once: false,
            rng: seed,
            pending: pending::CONNECT,
            pong_seq: 0,
            rtt_us: 0,
            note: 0,
            stall_ms: 0,
            reason: ReconnectReason::ConnectFailed,
        })
    }

    // ---- getters ----

    /// What to show the user.
    #[must_use]
    pub fn status(&self) -> Status {
        match self.phase {
            Phase::Connecting { .. } if self.attempt == 0 && !self.connected_once => {
                Status::Connecting
            }
            Phase::Connecting { .. } | Phase::Backoff { .. } => Status::Reconnecting,
            Phase::Connected { missed, .. } if missed >= self.t.slow_threshold => Status::Slow,
            Phase::Connected { .. } => Status::Healthy,
            Phase::Closed => Status::Closed,
        }
    }

    /// Consecutive unanswered pings on the current connection.
    #[must_use]
    pub fn missed_pongs(&self) -> u32 {
        match self.phase {
            Phase::Connected { missed, .. } => u32::from(missed),
            _ => 0,
        }
    }

    /// The latest `now` seen.
    #[must_use]
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The sequence number the next ping will carry.
    #[must_use]
    pub fn next_seq(&self) -> u32 {
        self.next_seq
    }

    /// The earliest instant the client holds that still matters: its clock, its deadlines and
    /// the send time of the ping in flight. [`Client::shift`] by at most this much is exact.
    #[must_use]
    pub fn earliest_instant(&self) -> Instant {
        match self.phase {
            Phase::Connecting { deadline } => self.now.min(deadline),
            Phase::Connected {
                next_ping,
                in_flight,
                ..
            } => {
                let t = self.now.min(next_ping);
                in_flight.map_or(t, |f| t.min(f.sent))
            }
            Phase::Backoff { until } => self.now.min(until),
            Phase::Closed => self.now,
        }
    }

    /// Moves the client's time origin and its ping numbering: every instant it holds moves
    /// `time` earlier (saturating at zero) and every ping sequence number moves `seqs` down
    /// (wrapping, as the numbers do). Payloads of outputs already drained are forgotten.
    ///
    /// Behaviour depends only on differences between instants and between sequence numbers, so
    /// after `shift(d, n)` the client behaves exactly as before in a world whose clock reads `d`
    /// less and whose ping numbers (and the pongs echoing them) are `n` less, provided that
    /// `d <= earliest_instant()` and nothing is pending. The model checker uses this to fold
    /// states that differ only in when they happen, which keeps its state space finite.
    pub fn shift(&mut self, time: Duration, seqs: u32) {
        let back = |t: Instant| t.saturating_sub(time);
        self.now = back(self.now);
        match &mut self.phase {
            Phase::Connecting { deadline } => *deadline = back(*deadline),
            Phase::Connected {
                next_ping,
                in_flight,
                ..
            } => {
                *next_ping = back(*next_ping);
                if let Some(f) = in_flight {
                    f.sent = back(f.sent);
                    f.seq = f.seq.wrapping_sub(seqs);
                }
            }
            Phase::Backoff { until } => *until = back(*until),
            Phase::Closed => {}
        }
        self.next_seq = self.next_seq.wrapping_sub(seqs);
        if self.pending & pending::PONG == 0 {
            self.pong_seq = 0;
        }
        if self.pending & pending::RTT == 0 {
            self.rtt_us = 0;
        }
        if self.pending & (pending::RECOVERED | pending::MISSED | pending::SLOW) == 0 {
            self.note = 0;
        }
        if self.pending & pending::STALLED == 0 {
            self.stall_ms = 0;
        }
        if self.pending & pending::RECONNECT == 0 {
            self.reason = ReconnectReason::ConnectFailed;
        }
    }

    // ---- inputs ----

    /// The socket opened (after [`Event::Connect`]). Queues the first ping at once.
    pub fn handle_connected(&mut self, now: Instant) {
        let now = self.advance(now);
        if let Phase::Connecting { .. } = self.phase {
            self.phase = Phase::Connected {
                next_ping: now,
                in_flight: None,
                missed: 0,
            };
            self.connected_once = true;
            self.pending |= pending::CONNECTED;
            self.send_ping(now, false);
        }
    }

    /// The socket closed, failed, or could not be opened. Starts the backoff.
    pub fn handle_disconnected(&mut self, now: Instant) {
        let now = self.advance(now);
        match self.phase {
            Phase::Connecting { .. } => self.give_up(now, ReconnectReason::ConnectFailed),
            Phase::Connected { .. } => self.give_up(now, ReconnectReason::ConnectionClosed),
            Phase::Backoff { .. } | Phase::Closed => {}
        }
    }

    /// A heartbeat message arrived. Answers a ping from this very call.
    pub fn handle_message(&mut self, now: Instant, message: Message) {
        let now = self.advance(now);
        if !matches!(self.phase, Phase::Connected { .. }) {
            return;
        }
        match message {
            Message::Ping { seq } => {
                self.pong_seq = seq;
                self.pending |= pending::PONG;
            }
            Message::Pong { seq } => {
                if let Phase::Connected {
                    in_flight: Some(f), ..
                } = self.phase
                {
                    if u64::from(f.seq) == seq {
                        let rtt = now.saturating_duration_since(f.sent);
                        self.rtt_us = u32::try_from(rtt.as_micros()).unwrap_or(u32::MAX);
                        self.pending |= pending::RTT;
                    }
                }
            }
        }
        self.evidence();
    }

    /// Application data arrived: as good a sign of life as a pong.
    pub fn handle_read(&mut self, now: Instant) {
        self.advance(now);
        self.evidence();
    }

    /// A hint from the host. Never reconnects by itself. `Visible` and `Online` probe at once,
    /// unless a ping is in flight or the last one was sent less than `pong_timeout` ago (so a
    /// flapping tab cannot flood the server).
    pub fn handle_hint(&mut self, now: Instant, hint: Hint) {
        let now = self.advance(now);
        if !matches!(hint, Hint::Visible | Hint::Online) {
            return;
        }
        if let Phase::Connected { in_flight, .. } = self.phase {
            let recent = Duration::from_millis(u64::from(self.t.pong_timeout));
            if in_flight
                .is_none_or(|f| f.answered && now.saturating_duration_since(f.sent) >= recent)
            {
                self.send_ping(now, false);
            }
        }
    }

    /// Time passed; act on every deadline that is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.advance(now);
        match self.phase {
            Phase::Connecting { deadline } if now >= deadline => {
                self.give_up(now, ReconnectReason::ConnectTimeout);
            }
            Phase::Backoff { until } if now >= until => {
                self.phase = Phase::Connecting {
                    deadline: now.plus_ms(self.t.connect_timeout),
                };
                self.pending |= pending::CONNECT;
            }
            Phase::Connected { .. } => {
                self.check_deadline(now);
                if let Phase::Connected { next_ping, .. } = self.phase {
                    if now >= next_ping {
                        self.send_ping(now, false);
                    }
                }
            }
            _ => {}
        }
    }

    /// The application closes the client for good. The caller closes the socket itself.
    pub fn close(&mut self) {
        self.phase = Phase::Closed;
        self.pending = 0;
    }

    // ---- outputs ----

    /// The next heartbeat message to write to the socket.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Message> {
        if self.take(pending::PONG) {
            return Some(Message::Pong { seq: self.pong_seq });
        }
        if self.take(pending::PING) {
            if let Phase::Connected {
                in_flight: Some(f), ..
            } = self.phase
            {
                return Some(Message::Ping {
                    seq: u64::from(f.seq),
                });
            }
        }
        None
    }

    /// The next event, in the order documented on [`Client`].
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        let bit = pending::EVENTS
            .into_iter()
            .find(|b| self.pending & b != 0)?;
        self.pending &= !bit;
        Some(match bit {
            pending::CONNECTED => Event::Connected,
            pending::RTT => Event::Rtt(Duration::from_micros(u64::from(self.rtt_us))),
            pending::RECOVERED => Event::Recovered { missed: self.note },
            pending::STALLED => Event::Stalled {
                late_by: Duration::from_millis(u64::from(self.stall_ms)),
            },
            pending::MISSED => Event::PongMissed {
                missed: self.note,
                max_missed_pongs: u32::from(self.t.max_missed_pongs),
            },
            pending::SLOW => Event::Slow { missed: self.note },
            pending::RECONNECT => {
                let backoff = match self.phase {
                    Phase::Backoff { until } => until.saturating_duration_since(self.now),
                    _ => Duration::ZERO,
                };
                Event::Reconnect {
                    reason: self.reason,
                    backoff,
                }
            }
            _ => Event::Connect {
                attempt: self.attempt,
            },
        })
    }

    /// When to call [`Client::handle_timeout`] next; `None` once closed.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Connecting { deadline } => Some(deadline),
            Phase::Backoff { until } => Some(until),
            Phase::Connected {
                next_ping,
                in_flight,
                ..
            } => Some(match in_flight {
                Some(f) if !f.answered => next_ping.min(f.sent.plus_ms(self.t.pong_timeout)),
                _ => next_ping,
            }),
            Phase::Closed => None,
        }
    }

    // ---- internals ----

    fn advance(&mut self, now: Instant) -> Instant {
        self.now = self.now.max(now);
        self.now
    }

    fn take(&mut self, bit: u16) -> bool {
        let had = self.pending & bit != 0;
        self.pending &= !bit;
        had
    }

    /// Anything read from the server: the connection is alive.
    fn evidence(&mut self) {
        if let Phase::Connected {
            in_flight, missed, ..
        } = &mut self.phase
        {
            if let Some(f) = in_flight {
                f.answered = true;
            }
            if *missed >= self.t.slow_threshold {
                self.note = u32::from(*missed);
                self.pending |= pending::RECOVERED;
            }
            *missed = 0;
            self.attempt = 0;
        }
    }

    /// The pong deadline of the ping in flight, if due: a miss, or a forgiven stall.
    fn check_deadline(&mut self, now: Instant) {
        let Phase::Connected {
            in_flight: Some(f),
            missed,
            ..
        } = &mut self.phase
        else {
            return;
        };
        let deadline = f.sent.plus_ms(self.t.pong_timeout);
        if f.answered || now < deadline {
            return;
        }
        let late = now.saturating_duration_since(deadline);
        if !f.probe && late > Duration::from_millis(u64::from(self.t.stall_threshold)) {
            // We were not running: the pong may be sitting unread. Ask again and decide on
            // fresh evidence.
            self.stall_ms = ms(late);
            self.pending |= pending::STALLED;
            self.send_ping(now, true);
            return;
        }
        *missed = missed.saturating_add(1);
        let missed = *missed;
        self.note = u32::from(missed);
        self.pending |= pending::MISSED;
        if missed == self.t.slow_threshold {
            self.pending |= pending::SLOW;
        }
        if missed >= self.t.max_missed_pongs {
            self.give_up(
                now,
                ReconnectReason::MissedPongs {
                    missed: u32::from(missed),
                },
            );
        } else if let Phase::Connected { in_flight, .. } = &mut self.phase {
            *in_flight = None;
        }
    }

    fn send_ping(&mut self, now: Instant, probe: bool) {
        if let Phase::Connected {
            next_ping,
            in_flight,
            ..
        } = &mut self.phase
        {
            *in_flight = Some(InFlight {
                seq: self.next_seq,
                sent: now,
                answered: false,
                probe,
            });
            *next_ping = now.plus_ms(self.t.ping_interval);
            self.next_seq = self.next_seq.wrapping_add(1);
            self.pending |= pending::PING;
        }
    }

    /// Leave the connection and wait a jittered, capped, exponential backoff.
    fn give_up(&mut self, now: Instant, reason: ReconnectReason) {
        let cap_ms = u64::from(self.t.backoff_initial)
            .saturating_mul(1u64 << self.attempt.min(32))
            .min(u64::from(self.t.backoff_max));
        let delay_us = self.next_random() % (cap_ms * 1_000 + 1);
        self.attempt = self.attempt.saturating_add(1);
        self.phase = Phase::Backoff {
            until: now.saturating_add(Duration::from_micros(delay_us)),
        };
        self.reason = reason;
        self.pending &= !(pending::PING | pending::PONG);
        self.pending |= pending::RECONNECT;
    }

    /// splitmix64: one step of the caller-seeded sequence.
    fn next_random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}
