//! The backend's heartbeat, one per connection: answers pings at once, sends its own on
//! schedule, closes idle connections and ping floods.
//!
//! Kept small (at most 64 bytes) so that a server holds a million of them in cache-friendly
//! memory. Never reads a clock and never touches a socket.

use core::time::Duration;

use crate::config::ServerConfig;
use crate::time::Instant;
use crate::validate::ConfigErrors;
use crate::wire::Message;

/// Why the server closed a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// Nothing was read from the client for `idle_timeout`.
    IdleTimeout,
    /// The client sent more than `max_ping_strikes` consecutive pings faster than one per
    /// `min_client_ping_interval` beyond the burst allowance.
    TooManyPings,
}

impl CloseReason {
    /// The WebSocket close code adapters send: 1011 for an idle (dead) peer, as Python's
    /// `websockets` does for a keepalive timeout; 1008 (policy violation) for a ping flood.
    #[must_use]
    pub const fn close_code(self) -> u16 {
        match self {
            CloseReason::IdleTimeout => 1011,
            CloseReason::TooManyPings => 1008,
        }
    }

    /// A short text for the close frame and logs.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            CloseReason::IdleTimeout => "idle_timeout",
            CloseReason::TooManyPings => "too_many_pings",
        }
    }
}

/// Something the server's caller must act on or may want to record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ServerEvent {
    /// Close the socket with this reason ([`CloseReason::close_code`]); the server is done.
    Close(CloseReason),
    /// A round-trip time, from a pong that answered the server's latest ping.
    Rtt(Duration),
    /// A client ping came faster than the allowed rate, beyond the burst allowance.
    Strike {
        /// Consecutive strikes so far.
        strikes: u32,
    },
}

/// An idle deadline handled more than this late means the server itself was not running (a
/// stalled event loop, a frozen process). The verdict is put off once by this much, so that what
/// the client sent meanwhile, still unread in the server's buffers, is read first. One second:
/// the default `network.max_server_timer_lateness`, so that normal lateness is never taken for
/// a stall, and a whole second, so that the model checker's time unit stays as coarse as the
/// configured timers (a 100 ms grace made every model with late server timers ten times finer).
pub const STALL_GRACE: Duration = Duration::from_secs(1);

mod pending {
    pub(super) const PONG: u8 = 1 << 0;
    pub(super) const PING: u8 = 1 << 1;
    pub(super) const CLOSE: u8 = 1 << 2;
    pub(super) const RTT: u8 = 1 << 3;
    pub(super) const STRIKE: u8 = 1 << 4;
    /// The server's latest ping has not been answered yet.
    pub(super) const AWAITING: u8 = 1 << 5;
    /// The idle verdict was put off once after a stall; cleared by the next read.
    pub(super) const DEFERRED: u8 = 1 << 6;
    /// Closed: terminal.
    pub(super) const CLOSED: u8 = 1 << 7;
}

/// The backend's heartbeat state machine for one connection.
///
/// # Driving it
/// Create it when the connection is accepted. After every `handle_*` call drain, in order:
/// [`Server::poll_transmit`] (a pong answering the client comes before the server's own ping),
/// [`Server::poll_event`] (close, RTT, strikes), then [`Server::poll_timeout`]. A pong is queued
/// by the very call that takes the ping, never by a timer. A `now` older than one already seen is
/// treated as the latest one seen.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Server {
    now: Instant,
    last_read: Instant,
    next_ping: Instant,
    /// Flood policing (GCRA): when the client's next ping is due at the allowed rate.
    ping_tat: Instant,
    pong_seq: u64,
    ping_ms: u32,
    idle_ms: u32,
    min_client_ping_ms: u32,
    rtt_us: u32,
    next_seq: u32,
    max_strikes: u8,
    strikes: u8,
    close: CloseReason,
    bits: u8,
}

fn ms(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

impl Server {
    /// A server for a connection accepted at `now`.
    ///
    /// # Errors
    /// The config's own rules ([`ServerConfig::validate`]).
    pub fn new(config: &ServerConfig, now: Instant) -> Result<Server, ConfigErrors> {
        config.validate().into_result()?;
        let ping_ms = ms(config.ping_interval);
        Ok(Server {
            now,
            last_read: now,
            next_ping: now.plus_ms(ping_ms),
            ping_tat: now,
            pong_seq: 0,
            ping_ms,
            idle_ms: ms(config.idle_timeout),
            min_client_ping_ms: ms(config.min_client_ping_interval),
            rtt_us: 0,
            next_seq: 0,
            // Validation bounds the count by MAX_PING_STRIKES (254), so that `strikes`, which
            // saturates at 255, can still exceed it: the (k + 1)-th strike closes.
            max_strikes: config.max_ping_strikes as u8,
            strikes: 0,
            close: CloseReason::IdleTimeout,
            bits: 0,
        })
    }

    /// True once the server has asked to close; it then ignores every input.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.bits & pending::CLOSED != 0
    }

    /// Consecutive ping strikes so far.
    #[must_use]
    pub fn strikes(&self) -> u32 {
        u32::from(self.strikes)
    }

    /// The sequence number the server's next ping will carry.
    #[must_use]
    pub fn next_seq(&self) -> u32 {
        self.next_seq
    }

    /// The earliest instant the server holds that still matters. [`Server::shift`] by at most
    /// this much is exact.
    #[must_use]
    pub fn earliest_instant(&self) -> Instant {
        // A ping_tat in the past means the same as one at `now`; shift clamps it. The send time
        // of the ping awaiting its pong (next_ping - ping_interval) gives the RTT.
        let t = self.now.min(self.last_read).min(self.next_ping);
        if self.bits & pending::AWAITING != 0 {
            t.min(
                self.next_ping
                    .saturating_sub(Duration::from_millis(u64::from(self.ping_ms))),
            )
        } else {
            t
        }
    }

    /// Moves the server's time origin and its ping numbering, as [`crate::Client::shift`] does
    /// for the client: every instant moves `time` earlier, every sequence number of the
    /// server's own pings moves `seqs` down, and what no longer matters is forgotten (drained
    /// payloads; a flood-policing schedule in the past, which means the same as one at `now`).
    pub fn shift(&mut self, time: Duration, seqs: u32) {
        self.ping_tat = self.ping_tat.max(self.now);
        let back = |t: Instant| t.saturating_sub(time);
        self.now = back(self.now);
        self.last_read = back(self.last_read);
        self.next_ping = back(self.next_ping);
        self.ping_tat = back(self.ping_tat);
        self.next_seq = self.next_seq.wrapping_sub(seqs);
        if self.bits & pending::PONG == 0 {
            self.pong_seq = 0;
        }
        if self.bits & pending::RTT == 0 {
            self.rtt_us = 0;
        }
    }

    /// A heartbeat message arrived from the client. A ping is answered from this very call.
    pub fn handle_message(&mut self, now: Instant, message: Message) {
        let now = self.read(now);
        if self.is_closed() {
            return;
        }
        match message {
            Message::Ping { seq } => {
                if self.police_ping(now) {
                    self.pong_seq = seq;
                    self.bits |= pending::PONG;
                }
            }
            Message::Pong { seq } => {
                let latest = self.next_seq.wrapping_sub(1);
                if self.bits & pending::AWAITING != 0 && u64::from(latest) == seq {
                    let sent = self
                        .next_ping
                        .saturating_sub(Duration::from_millis(u64::from(self.ping_ms)));
                    let rtt = now.saturating_duration_since(sent);
                    self.rtt_us = u32::try_from(rtt.as_micros()).unwrap_or(u32::MAX);
                    self.bits = (self.bits & !pending::AWAITING) | pending::RTT;
                }
            }
        }
    }

    /// A protocol-level Ping frame arrived from the client. It is policed exactly as a JSON ping
    /// (strikes, [`CloseReason::TooManyPings`]) but no pong is queued: WebSocket libraries
    /// answer protocol pings themselves, and a second answer would be a stray Pong frame.
    pub fn handle_protocol_ping(&mut self, now: Instant) {
        let now = self.read(now);
        if !self.is_closed() {
            let _ = self.police_ping(now);
        }
    }

    /// Application data arrived from the client: it is alive.
    pub fn handle_read(&mut self, now: Instant) {
        self.read(now);
    }

    /// Time passed: close an idle connection, or send the server's own ping.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.advance(now);
        if self.is_closed() {
            return;
        }
        let idle_deadline = self.last_read.plus_ms(self.idle_ms);
        if now >= idle_deadline {
            let late = now.saturating_duration_since(idle_deadline);
            if late > STALL_GRACE && self.bits & pending::DEFERRED == 0 {
                // We were not running: read what piled up before judging the client.
                self.bits |= pending::DEFERRED;
                self.last_read = now
                    .saturating_add(STALL_GRACE)
                    .saturating_sub(Duration::from_millis(u64::from(self.idle_ms)));
            } else {
                self.shut(CloseReason::IdleTimeout);
                return;
            }
        }
        if now >= self.next_ping {
            self.next_ping = now.plus_ms(self.ping_ms);
            self.next_seq = self.next_seq.wrapping_add(1);
            self.bits |= pending::PING | pending::AWAITING;
        }
    }

    /// The next heartbeat message to write to the socket.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Message> {
        if self.take(pending::PONG) {
            return Some(Message::Pong { seq: self.pong_seq });
        }
        if self.take(pending::PING) {
            return Some(Message::Ping {
                seq: u64::from(self.next_seq.wrapping_sub(1)),
            });
        }
        None
    }

    /// The next event: close first, then strikes, then RTT.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        if self.take(pending::CLOSE) {
            return Some(ServerEvent::Close(self.close));
        }
        if self.take(pending::STRIKE) {
            return Some(ServerEvent::Strike {
                strikes: u32::from(self.strikes),
            });
        }
        if self.take(pending::RTT) {
            return Some(ServerEvent::Rtt(Duration::from_micros(u64::from(
                self.rtt_us,
            ))));
        }
        None
    }

    /// When to call [`Server::handle_timeout`] next; `None` once closed.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.is_closed() {
            return None;
        }
        Some(self.next_ping.min(self.last_read.plus_ms(self.idle_ms)))
    }

    /// Counts a client ping against the flood policy; false if it closed the connection.
    fn police_ping(&mut self, now: Instant) -> bool {
        if self.conforms(now) {
            self.strikes = 0;
        } else {
            self.strikes = self.strikes.saturating_add(1);
            self.bits |= pending::STRIKE;
            if self.strikes > self.max_strikes {
                self.shut(CloseReason::TooManyPings);
                return false;
            }
        }
        true
    }

    /// Flood policing as a generic cell rate algorithm (virtual scheduling): the client may
    /// ping once per `min_client_ping_interval` on average, with a burst allowance of
    /// `idle_timeout - min_client_ping_interval`. Every ping moves the schedule on; one that
    /// arrives more than the allowance ahead of it is a strike. The allowance is what lets a
    /// server that was itself stalled read its backlog of a live client's pings without calling
    /// them a flood, and it absorbs network jitter; a client that pings faster than allowed
    /// drifts ahead without bound and is closed after `max_ping_strikes` strikes in a row.
    fn conforms(&mut self, now: Instant) -> bool {
        if self.min_client_ping_ms == 0 {
            return true;
        }
        let burst = Duration::from_millis(u64::from(
            self.idle_ms.saturating_sub(self.min_client_ping_ms),
        ));
        let ok = self.ping_tat.saturating_duration_since(now) <= burst;
        self.ping_tat = self.ping_tat.max(now).plus_ms(self.min_client_ping_ms);
        ok
    }

    fn advance(&mut self, now: Instant) -> Instant {
        self.now = self.now.max(now);
        self.now
    }

    fn read(&mut self, now: Instant) -> Instant {
        let now = self.advance(now);
        if !self.is_closed() {
            self.last_read = now;
            self.bits &= !pending::DEFERRED;
        }
        now
    }

    fn take(&mut self, bit: u8) -> bool {
        let had = self.bits & bit != 0;
        self.bits &= !bit;
        had
    }

    fn shut(&mut self, reason: CloseReason) {
        self.close = reason;
        self.bits = (self.bits & !(pending::PONG | pending::PING | pending::AWAITING))
            | pending::CLOSE
            | pending::CLOSED;
    }
}
