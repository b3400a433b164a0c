//! Configuration of both sides and of the network they run on, with safe defaults.
//!
//! Durations are written as human strings in files (`"30s"`, `"1500ms"`). Validation lives in
//! [`crate::validate`]; the formulas it checks are derived in `docs/invariants.md`.

use core::time::Duration;
use serde::{Deserialize, Serialize};

use crate::server::STALL_GRACE;
use crate::time::serde_duration;

/// The frontend's heartbeat settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientConfig {
    /// How often the client sends a ping while connected.
    #[serde(with = "serde_duration")]
    pub ping_interval: Duration,
    /// How long after a ping the client waits for any sign of life before counting a miss.
    /// At most `ping_interval`: one ping is in flight at a time.
    #[serde(with = "serde_duration")]
    pub pong_timeout: Duration,
    /// Consecutive misses after which the status becomes Slow (a warning, nothing is torn down).
    pub slow_threshold: u32,
    /// Consecutive misses after which the client gives up and reconnects.
    pub max_missed_pongs: u32,
    /// A timer that fires later than this past its deadline means the client itself was stalled
    /// (background tab, sleeping laptop): the stalled time is not counted as missed pongs.
    #[serde(with = "serde_duration")]
    pub stall_threshold: Duration,
    /// How long opening a connection may take before the attempt counts as failed.
    #[serde(with = "serde_duration")]
    pub connect_timeout: Duration,
    /// Cap of the first reconnect delay; each further attempt doubles it (full jitter).
    #[serde(with = "serde_duration")]
    pub backoff_initial: Duration,
    /// Largest reconnect delay cap.
    #[serde(with = "serde_duration")]
    pub backoff_max: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            ping_interval: Duration::from_secs(15),
            pong_timeout: Duration::from_secs(12),
            slow_threshold: 2,
            max_missed_pongs: 4,
            stall_threshold: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(15),
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
        }
    }
}

/// The backend's heartbeat settings, per connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// How often the server sends its own ping. Its pings leave on schedule even when the
    /// server is too busy to answer quickly; they are what keeps a client from reconnecting.
    #[serde(with = "serde_duration")]
    pub ping_interval: Duration,
    /// The server closes a connection from which nothing has been read for this long.
    #[serde(with = "serde_duration")]
    pub idle_timeout: Duration,
    /// Clients may ping at most once per this interval on average; bursts of up to
    /// `idle_timeout / min_client_ping_interval` pings are allowed (a stalled server reading its
    /// backlog, network jitter). A ping beyond that is a strike. Zero disables flood policing.
    #[serde(with = "serde_duration")]
    pub min_client_ping_interval: Duration,
    /// More than this many consecutive strikes close the connection (too many pings).
    pub max_ping_strikes: u32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            ping_interval: Duration::from_secs(25),
            idle_timeout: Duration::from_secs(60),
            min_client_ping_interval: Duration::from_secs(5),
            max_ping_strikes: 2,
        }
    }
}

/// What the deployment promises about the world; the guarantees hold while these do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkAssumptions {
    /// Largest one-way delivery delay of a message, in either direction.
    #[serde(with = "serde_duration")]
    pub max_latency: Duration,
    /// Largest delay between the server reading a ping and sending the pong, under normal load
    /// (the story's AC3 says 5 s). Under overload pongs may be later; the server's own pings
    /// still leave on schedule.
    #[serde(with = "serde_duration")]
    pub max_server_delay: Duration,
    /// Largest lateness of the client's timers (event-loop jitter) in normal operation. The
    /// same busy loop delays what the client reads: a message that has arrived may be handled up
    /// to this late too.
    #[serde(with = "serde_duration")]
    pub max_timer_lateness: Duration,
    /// Largest lateness of the server's timers (its pings, its idle deadline) in normal
    /// operation: a busy or descheduled backend fires them late, and handles what it reads as
    /// late (a frame that arrived may be taken after a timer that fired). Default 1 s, about 37 times the
    /// worst p99 measured for the tokio adapter on a saturated machine (27 ms,
    /// docs/performance.md), and no more than [`crate::server::STALL_GRACE`], beyond which the
    /// server takes lateness for a stall of its own.
    #[serde(with = "serde_duration")]
    pub max_server_timer_lateness: Duration,
}

impl Default for NetworkAssumptions {
    fn default() -> Self {
        NetworkAssumptions {
            max_latency: Duration::from_secs(2),
            max_server_delay: Duration::from_secs(5),
            max_timer_lateness: Duration::from_secs(1),
            max_server_timer_lateness: Duration::from_secs(1),
        }
    }
}

/// Both sides and the network: the unit that validation and the model checker reason about.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The frontend.
    pub client: ClientConfig,
    /// The backend.
    pub server: ServerConfig,
    /// The assumptions under which the guarantees hold.
    pub network: NetworkAssumptions,
}

/// The guarantees a valid configuration gives, in plain numbers (see docs/invariants.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Guarantees {
    /// The longest stretch without any sign of life the client accepts before reconnecting:
    /// `(max_missed_pongs - 1) * client.ping_interval + client.pong_timeout`.
    pub client_tolerance: Duration,
    /// From the server's death (or a network cut) to the client's reconnect request, at most:
    /// the longer of the heartbeat path (missed pongs) and the connect path (a death or cut
    /// before the handshake completes ends in a connect timeout, its timer up to the lateness
    /// late).
    pub detection_bound: Duration,
    /// The slow warning comes at least this long before a heartbeat reconnect.
    pub warning_lead: Duration,
    /// A Slow period ends (Recovered or reconnect) within this long.
    pub slow_bound: Duration,
    /// From the client's death to the server closing the connection, at most.
    pub server_detection_bound: Duration,
    /// After a cut network comes back (or an overload ends), the client may still reconnect for
    /// misses counted meanwhile, or for a handshake cut short, for at most this long; after it,
    /// a live server's open connection is never given up (property 3 over healed faults).
    pub heal_settle_client: Duration,
    /// Once the server is up and reachable (and stays so), a client without a connection has one
    /// again within this long of the later of losing its connection and the server coming back:
    /// an attempt under way may have been lost (`connect` + L), then the backoff (at most
    /// `backoff_max`, its timer up to L late), then the handshake (2λ + L_s + L). Property 9.
    pub reconnect_bound: Duration,
    /// After a cut network comes back, the server may still close for the silence meanwhile for
    /// at most this long (the first read after the cut comes within it); after it, a live client
    /// is never closed (property 4 over healed faults).
    pub heal_settle_server: Duration,
}

impl Config {
    /// The guarantees this configuration gives, whether or not it is valid; callers show them
    /// only for a valid configuration.
    #[must_use]
    pub fn guarantees(&self) -> Guarantees {
        let c = &self.client;
        let n = &self.network;
        let p = c.ping_interval;
        let t = c.pong_timeout;
        let l = n.max_timer_lateness;
        let missed = c.max_missed_pongs;
        let gap = c.max_missed_pongs.saturating_sub(c.slow_threshold);
        let lead_a = p.saturating_mul(gap).saturating_sub(l);
        let lead_b = p.saturating_mul(gap.saturating_sub(1)).saturating_add(t);
        // The last sign of life can arrive this long after the server died: a server ping in
        // flight; or, when pongs may outlive their deadline (arrive, or be handled, after it), a
        // pong still in flight. Either may be handled up to L after it arrived.
        let late_pongs = t
            <= n.max_latency
                .saturating_mul(2)
                .saturating_add(n.max_server_timer_lateness)
                .saturating_add(n.max_server_delay)
                .saturating_add(l);
        let last_evidence = if late_pongs {
            n.max_latency.saturating_add(n.max_server_delay)
        } else {
            n.max_latency
        }
        .saturating_add(l);
        let heartbeat_path = last_evidence
            .saturating_add(p.saturating_add(l).saturating_mul(missed))
            .saturating_add(t)
            .saturating_add(l);
        // A death or cut at (or after) the connect attempt's start, before the handshake
        // response is read: nothing arrives, the connect timer fires at most L late.
        let connect_path = c.connect_timeout.saturating_add(l);
        Guarantees {
            client_tolerance: p.saturating_mul(missed.saturating_sub(1)).saturating_add(t),
            detection_bound: heartbeat_path.max(connect_path),
            warning_lead: if gap == 0 {
                Duration::ZERO
            } else {
                lead_a.max(lead_b)
            },
            slow_bound: p.saturating_add(l).saturating_mul(gap).saturating_add(l),
            server_detection_bound: self.server_detection_bound(),
            heal_settle_client: self.heal_settle_client(),
            heal_settle_server: self.heal_settle_server(),
            reconnect_bound: sum([
                c.connect_timeout,
                c.backoff_max,
                n.max_latency,
                n.max_latency,
                n.max_server_timer_lateness,
                l,
                l,
                l,
            ]),
        }
    }
}

impl Config {
    /// After a heal at h, the client can still miss only pings sent before h (a ping sent after
    /// it is answered in time, by its pong or by a server ping, under R1): their deadlines fall
    /// by h + T and fire up to L late, unless a server ping is handled first (its timer fires
    /// within P_s + L_s, the ping is handled λ + L later), which answers them all. A connect
    /// attempt whose handshake was cut ends by its start + connect + L.
    fn heal_settle_client(&self) -> Duration {
        let (c, s, n) = (&self.client, &self.server, &self.network);
        let (l, ls, lat) = (
            n.max_timer_lateness,
            n.max_server_timer_lateness,
            n.max_latency,
        );
        let last_deadline = c.pong_timeout.saturating_add(l);
        let server_ping = sum([s.ping_interval, ls, lat, l]);
        last_deadline
            .min(server_ping)
            .max(c.connect_timeout.saturating_add(l))
    }

    /// After a heal at h: the first read is the client's next ping (sent within P_c + L,
    /// arriving λ later) or its pong to the server's next ping (P_s + L_s, then λ + L + λ),
    /// handled up to L_s after it arrived.
    fn heal_settle_server(&self) -> Duration {
        let (c, s, n) = (&self.client, &self.server, &self.network);
        let (l, ls, lat) = (
            n.max_timer_lateness,
            n.max_server_timer_lateness,
            n.max_latency,
        );
        sum([c.ping_interval, l, lat, ls]).min(sum([s.ping_interval, ls, lat, lat, l, ls]))
    }

    /// From the client's death to the server's close: the client's last message arrives at most
    /// λ after the death and is handled up to L_s after that, the idle deadline follows I after
    /// that read and fires up to L_s late;
    /// a deadline handled more than [`STALL_GRACE`] late is put off once by `STALL_GRACE` and
    /// fires up to L_s late again.
    fn server_detection_bound(&self) -> Duration {
        let n = &self.network;
        let late = n.max_server_timer_lateness;
        let deferred = if late > STALL_GRACE {
            STALL_GRACE.saturating_add(late)
        } else {
            Duration::ZERO
        };
        sum([
            self.server.idle_timeout,
            n.max_latency,
            late,
            late,
            deferred,
        ])
    }
}

impl Config {
    /// How long a client that pings every `period`, faster than `server.min_client_ping_interval`
    /// (m) allows, keeps its connection: from its first ping being sent to the server's close,
    /// at most (a `TooManyPings` close, or an idle one first where the rogue's own pings are
    /// further apart than `idle_timeout` allows). `None` when flood policing is off (m = 0) or `period` is
    /// not faster than m.
    ///
    /// Each ping moves the policing schedule on by m, so before ping j (0-based) it stands at
    /// least j · m after the first ping was handled, while ping j is handled at most
    /// j · period + λ + L_s after the first was sent: ping j is a strike once
    /// j · (m − period) − (λ + L_s) exceeds the burst allowance I − m, that is from
    /// j₁ = ⌊(I − m + λ + L_s) / (m − period)⌋ + 1 on, and every later ping is one too. The
    /// (k + 1)-th strike in a row, ping j₁ + k, closes, handled by (j₁ + k) · period + λ + L_s.
    #[must_use]
    pub fn flood_close_bound(&self, period: Duration) -> Option<Duration> {
        let (s, n) = (&self.server, &self.network);
        let m = s.min_client_ping_interval;
        if m.is_zero() || period >= m {
            return None;
        }
        let jitter = n.max_latency.saturating_add(n.max_server_timer_lateness);
        let ahead = s
            .idle_timeout
            .saturating_sub(m)
            .saturating_add(jitter)
            .as_nanos();
        let per_ping = m.saturating_sub(period).as_nanos();
        let first_strike = ahead / per_ping + 1;
        let closing = first_strike.saturating_add(u128::from(s.max_ping_strikes));
        let nanos = closing.saturating_mul(period.as_nanos());
        let sent = u64::try_from(nanos / 1_000_000_000)
            .ok()
            .map(|secs| Duration::new(secs, (nanos % 1_000_000_000) as u32));
        Some(sent.map_or(Duration::MAX, |d| d.saturating_add(jitter)))
    }
}

/// A sum that saturates: guarantees are computed for any configuration, valid or not.
fn sum<const N: usize>(parts: [Duration; N]) -> Duration {
    parts
        .into_iter()
        .fold(Duration::ZERO, Duration::saturating_add)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_detection_bound_covers_the_heartbeat_path_and_the_connect_path() {
        let s = Duration::from_secs;
        let mut config = Config::default();
        // Heartbeat path: λ + L + N (P_c + L) + T + L = 2 + 1 + 4 x 16 + 12 + 1; connect path 15 + 1.
        assert_eq!(config.guarantees().detection_bound, s(80));
        config.client.connect_timeout = s(77);
        assert_eq!(config.guarantees().detection_bound, s(80));
        config.client.connect_timeout = s(80);
        assert_eq!(config.guarantees().detection_bound, s(81));
        config.network.max_timer_lateness = Duration::ZERO;
        assert_eq!(config.guarantees().detection_bound, s(80));
    }

    #[test]
    fn the_flood_close_bound_counts_pings_to_the_closing_strike() {
        let s = Duration::from_secs;
        let config = Config::default();
        // I − m + λ + L_s = 55 + 3 = 58 s ahead; 1 s gained per ping at 4 s: strikes from ping
        // 59, the third in a row (k = 2) is ping 61, sent at 244 s, handled by 247 s.
        assert_eq!(config.flood_close_bound(s(4)), Some(s(247)));
        // Every 2.5 s: 2.5 s gained per ping, strikes from ping 24, closing ping 26 at 65 s.
        assert_eq!(
            config.flood_close_bound(Duration::from_millis(2500)),
            Some(s(68))
        );
        assert_eq!(config.flood_close_bound(Duration::ZERO), Some(s(3)));
        assert_eq!(config.flood_close_bound(s(5)), None, "at the allowed rate");
        let mut off = config;
        off.server.min_client_ping_interval = Duration::ZERO;
        assert_eq!(off.flood_close_bound(s(1)), None, "policing off");
    }
}
