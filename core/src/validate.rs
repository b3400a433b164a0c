//! Validation: every rule a configuration must satisfy for the guarantees to hold, reported all
//! at once. Each rule's formula and reasoning is in docs/invariants.md; the model checker
//! (heartbeat-model) cross-checks that these rules are exact.

use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

use crate::config::{ClientConfig, Config, NetworkAssumptions, ServerConfig};
use crate::time::HumanDuration as H;

/// Longest duration any setting may have. Longer values are almost certainly a unit mistake.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);
/// Largest miss count accepted.
pub const MAX_COUNT: u32 = 1000;
/// Largest `server.max_ping_strikes` accepted. The server keeps its strikes in a byte that
/// saturates at 255 and closes on the (k + 1)-th strike in a row, so k + 1 must fit in the byte:
/// with k = 255 the count could never exceed k and flood policing would be off.
pub const MAX_PING_STRIKES: u32 = 254;

/// A rule the configuration breaks. Each message names the fields, the rule and the numbers.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A duration that must be positive is zero.
    #[error("{field} must be greater than zero")]
    ZeroDuration {
        /// The setting, e.g. `client.ping_interval`.
        field: &'static str,
    },
    /// A duration is longer than [`MAX_DURATION`].
    #[error("{field} ({}) is longer than the 24h maximum; check the unit", H(*value))]
    DurationTooLong {
        /// The setting.
        field: &'static str,
        /// Its value.
        value: Duration,
    },
    /// A duration has a part finer than a millisecond; the state machines count milliseconds.
    #[error("{field} ({}) must be a whole number of milliseconds", H(*value))]
    NotWholeMillis {
        /// The setting.
        field: &'static str,
        /// Its value.
        value: Duration,
    },
    /// A count is outside its range.
    #[error("{field} ({value}) must be between {min} and {max}")]
    CountOutOfRange {
        /// The setting.
        field: &'static str,
        /// Its value.
        value: u32,
        /// Smallest allowed.
        min: u32,
        /// Largest allowed.
        max: u32,
    },
    /// The slow warning would not come before the reconnect.
    #[error(
        "client.slow_threshold ({slow_threshold}) must be below client.max_missed_pongs ({max_missed_pongs}), \
         so that the slow warning comes before any reconnect"
    )]
    SlowNotBeforeReconnect {
        /// `client.slow_threshold`.
        slow_threshold: u32,
        /// `client.max_missed_pongs`.
        max_missed_pongs: u32,
    },
    /// More than one ping would be in flight.
    #[error(
        "client.pong_timeout ({}) must not exceed client.ping_interval ({}): a ping's deadline must pass \
         before the next ping is sent",
        H(*pong_timeout), H(*ping_interval)
    )]
    PongTimeoutAbovePingInterval {
        /// `client.pong_timeout`.
        pong_timeout: Duration,
        /// `client.ping_interval`.
        ping_interval: Duration,
    },
    /// The largest reconnect delay is below the first.
    #[error("client.backoff_max ({}) must be at least client.backoff_initial ({})", H(*backoff_max), H(*backoff_initial))]
    BackoffMaxBelowInitial {
        /// `client.backoff_initial`.
        backoff_initial: Duration,
        /// `client.backoff_max`.
        backoff_max: Duration,
    },
    /// A pong can be handled after its deadline under normal load, with no server ping to stand
    /// in for it: the client would miss pongs.
    #[error(
        "client.pong_timeout ({}) must exceed a round trip plus the server's read lateness and response delay \
         plus the client's read lateness: 2 x network.max_latency ({}) + network.max_server_timer_lateness ({}) + \
         network.max_server_delay ({}) + network.max_timer_lateness ({}) = {} (or exceed server.ping_interval ({}) \
         + network.max_server_timer_lateness + network.max_latency + network.max_timer_lateness = {}, so that a \
         server ping is always read in time)",
        H(*pong_timeout), H(*max_latency), H(*max_server_timer_lateness), H(*max_server_delay),
        H(*max_timer_lateness), H(*required), H(*server_ping_interval), H(*server_ping_gap)
    )]
    PongTimeoutTooShort {
        /// `server.ping_interval`.
        server_ping_interval: Duration,
        /// `client.pong_timeout`.
        pong_timeout: Duration,
        /// `network.max_latency`.
        max_latency: Duration,
        /// `network.max_server_delay`.
        max_server_delay: Duration,
        /// `network.max_timer_lateness`.
        max_timer_lateness: Duration,
        /// `network.max_server_timer_lateness`.
        max_server_timer_lateness: Duration,
        /// The round-trip bound it must exceed.
        required: Duration,
        /// The server-ping bound it may exceed instead.
        server_ping_gap: Duration,
    },
    /// An overloaded but live server could be given up on: the client would reconnect for nothing.
    #[error(
        "client tolerance (client.max_missed_pongs - 1) x client.ping_interval + client.pong_timeout = \
         ({max_missed_pongs} - 1) x {} + {} = {} must exceed server.ping_interval ({}) + \
         network.max_server_timer_lateness ({}) + network.max_latency ({}) + network.max_timer_lateness ({}) = {}, \
         or a busy server's own pings cannot keep the client connected",
        H(*ping_interval), H(*pong_timeout), H(*tolerance), H(*server_ping_interval),
        H(*max_server_timer_lateness), H(*max_latency), H(*max_timer_lateness), H(*required)
    )]
    ToleranceTooShort {
        /// `client.max_missed_pongs`.
        max_missed_pongs: u32,
        /// `client.ping_interval`.
        ping_interval: Duration,
        /// `client.pong_timeout`.
        pong_timeout: Duration,
        /// The client tolerance computed from those.
        tolerance: Duration,
        /// `server.ping_interval`.
        server_ping_interval: Duration,
        /// `network.max_server_timer_lateness`.
        max_server_timer_lateness: Duration,
        /// `network.max_latency`.
        max_latency: Duration,
        /// `network.max_timer_lateness`.
        max_timer_lateness: Duration,
        /// The bound it must exceed.
        required: Duration,
    },
    /// A live client could be closed by the server for idleness.
    #[error(
        "server.idle_timeout ({}) must exceed the longest a live client can stay silent, its last read handled \
         at once and the next one network.max_server_timer_lateness late: \
         max(2 x network.max_latency + network.max_timer_lateness, \
         min(client.ping_interval + network.max_timer_lateness + network.max_latency, \
         server.ping_interval + network.max_server_timer_lateness + 2 x network.max_latency + network.max_timer_lateness)) \
         + network.max_server_timer_lateness = max(2 x {} + {}, min({} + {} + {}, {} + {} + 2 x {} + {})) + {} = {}",
        H(*idle_timeout), H(*max_latency), H(*max_timer_lateness), H(*client_ping_interval), H(*max_timer_lateness),
        H(*max_latency), H(*server_ping_interval), H(*max_server_timer_lateness), H(*max_latency),
        H(*max_timer_lateness), H(*max_server_timer_lateness), H(*required)
    )]
    IdleTimeoutTooShort {
        /// `server.idle_timeout`.
        idle_timeout: Duration,
        /// `client.ping_interval`.
        client_ping_interval: Duration,
        /// `server.ping_interval`.
        server_ping_interval: Duration,
        /// `network.max_timer_lateness`.
        max_timer_lateness: Duration,
        /// `network.max_server_timer_lateness`.
        max_server_timer_lateness: Duration,
        /// `network.max_latency`.
        max_latency: Duration,
        /// The bound it must exceed.
        required: Duration,
    },
    /// A live client could be closed for pinging too often.
    #[error(
        "client.ping_interval ({}) must be at least server.min_client_ping_interval ({}), and the server's burst \
         allowance server.idle_timeout - server.min_client_ping_interval = {} plus (server.max_ping_strikes + 1) x \
         (client.ping_interval - server.min_client_ping_interval) = {} x {} must cover network.max_latency ({}) + \
         network.max_server_timer_lateness ({}) of jitter: otherwise a live client collects more than {} strikes \
         in a row",
        H(*client_ping_interval), H(*min_client_ping_interval), H(idle_timeout.saturating_sub(*min_client_ping_interval)),
        max_ping_strikes + 1, H(client_ping_interval.saturating_sub(*min_client_ping_interval)), H(*max_latency),
        H(*max_server_timer_lateness), max_ping_strikes
    )]
    ClientPingsWouldStrike {
        /// `client.ping_interval`.
        client_ping_interval: Duration,
        /// `server.idle_timeout`.
        idle_timeout: Duration,
        /// `server.max_ping_strikes`.
        max_ping_strikes: u32,
        /// `network.max_latency`.
        max_latency: Duration,
        /// `network.max_server_timer_lateness`.
        max_server_timer_lateness: Duration,
        /// `server.min_client_ping_interval`.
        min_client_ping_interval: Duration,
    },
    /// A handshake within the assumptions could outlast the connect timeout.
    #[error(
        "client.connect_timeout ({}) must exceed a handshake round trip plus both sides' read lateness: \
         2 x network.max_latency ({}) + network.max_server_timer_lateness ({}) + network.max_timer_lateness ({}) = {}",
        H(*connect_timeout), H(*max_latency), H(*max_server_timer_lateness), H(*max_timer_lateness),
        H(max_latency.saturating_mul(2).saturating_add(*max_server_timer_lateness).saturating_add(*max_timer_lateness))
    )]
    ConnectTimeoutTooShort {
        /// `client.connect_timeout`.
        connect_timeout: Duration,
        /// `network.max_latency`.
        max_latency: Duration,
        /// `network.max_server_timer_lateness`.
        max_server_timer_lateness: Duration,
        /// `network.max_timer_lateness`.
        max_timer_lateness: Duration,
    },
    /// Normal timer lateness would be mistaken for a local stall: misses are forgiven, so the
    /// detection bound (property 5) and the slow bound (property 6) fail; and the probe sent
    /// after a stall is an extra ping that strict flood policing may close the connection for
    /// (property 4). The model checker shows each (docs/invariants.md, R6).
    #[error(
        "network.max_timer_lateness ({}) must not exceed client.stall_threshold ({}): normal timer lateness \
         would be taken for a stall: misses forgiven, so neither the detection bound nor the end of a \
         slow period would be guaranteed, and probes sent that strict flood policing may close the connection for",
        H(*max_timer_lateness), H(*stall_threshold)
    )]
    LatenessAboveStallThreshold {
        /// `network.max_timer_lateness`.
        max_timer_lateness: Duration,
        /// `client.stall_threshold`.
        stall_threshold: Duration,
    },
}

/// A margin rule others use: not needed for the guarantees, but worth a look.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigWarning {
    /// SignalR's rule and the story's AC2: tolerate at least two server pings.
    #[error(
        "client tolerance ({}) is below 2 x server.ping_interval ({}) = {}: one delayed server ping leaves \
         little margin (SignalR and the story's AC2 use 2x)",
        H(*tolerance), H(*server_ping_interval), H(server_ping_interval.saturating_mul(2))
    )]
    ToleranceBelowTwiceServerPing {
        /// The client tolerance.
        tolerance: Duration,
        /// `server.ping_interval`.
        server_ping_interval: Duration,
    },
    /// Probes on host hints (at most one per pong timeout) could outpace the flood policing.
    #[error(
        "client.pong_timeout ({}) is below server.min_client_ping_interval ({}): a tab flipped between hidden and \
         visible for minutes on end sends probes faster than the server allows and may be closed",
        H(*pong_timeout), H(*min_client_ping_interval)
    )]
    HintProbesMayStrike {
        /// `client.pong_timeout`.
        pong_timeout: Duration,
        /// `server.min_client_ping_interval`.
        min_client_ping_interval: Duration,
    },
    /// One lost client ping would get a live client closed.
    #[error(
        "server.idle_timeout ({}) is below 2 x client.ping_interval ({}) = {}: a single lost ping closes the connection",
        H(*idle_timeout), H(*client_ping_interval), H(client_ping_interval.saturating_mul(2))
    )]
    IdleTimeoutBelowTwoClientPings {
        /// `server.idle_timeout`.
        idle_timeout: Duration,
        /// `client.ping_interval`.
        client_ping_interval: Duration,
    },
}

/// The outcome of validation: every error and every warning.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Validation {
    /// Broken rules; the configuration is unusable while any remain.
    pub errors: Vec<ConfigError>,
    /// Margin rules worth a look.
    pub warnings: Vec<ConfigWarning>,
}

impl Validation {
    /// True when there is no error (warnings allowed).
    #[must_use]
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }

    /// The errors as one error value, or the warnings when there is none.
    ///
    /// # Errors
    /// [`ConfigErrors`] holding every broken rule.
    pub fn into_result(self) -> Result<Vec<ConfigWarning>, ConfigErrors> {
        if self.errors.is_empty() {
            Ok(self.warnings)
        } else {
            Err(ConfigErrors(self.errors))
        }
    }
}

/// Every rule a configuration breaks, as one error (displayed one per line).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid heartbeat configuration:")?;
        for e in &self.0 {
            write!(f, "\n  - {e}")?;
        }
        Ok(())
    }
}

struct Check<'a>(&'a mut Vec<ConfigError>);

impl Check<'_> {
    fn duration(&mut self, field: &'static str, value: Duration, may_be_zero: bool) {
        if value.is_zero() && !may_be_zero {
            self.0.push(ConfigError::ZeroDuration { field });
        } else if value > MAX_DURATION {
            self.0.push(ConfigError::DurationTooLong { field, value });
        } else if value.subsec_nanos() % 1_000_000 != 0 {
            self.0.push(ConfigError::NotWholeMillis { field, value });
        }
    }

    fn count(&mut self, field: &'static str, value: u32, min: u32, max: u32) {
        if !(min..=max).contains(&value) {
            self.0.push(ConfigError::CountOutOfRange {
                field,
                value,
                min,
                max,
            });
        }
    }
}

impl ClientConfig {
    /// The range of each of the client's settings.
    fn check_ranges(&self, errors: &mut Vec<ConfigError>) {
        let mut c = Check(errors);
        c.duration("client.ping_interval", self.ping_interval, false);
        c.duration("client.pong_timeout", self.pong_timeout, false);
        c.duration("client.stall_threshold", self.stall_threshold, false);
        c.duration("client.connect_timeout", self.connect_timeout, false);
        c.duration("client.backoff_initial", self.backoff_initial, false);
        c.duration("client.backoff_max", self.backoff_max, false);
        c.count("client.slow_threshold", self.slow_threshold, 1, MAX_COUNT);
        c.count(
            "client.max_missed_pongs",
            self.max_missed_pongs,
            2,
            MAX_COUNT,
        );
    }

    /// The rules that relate the client's settings to each other.
    fn check_relations(&self, errors: &mut Vec<ConfigError>) {
        if self.slow_threshold >= self.max_missed_pongs {
            errors.push(ConfigError::SlowNotBeforeReconnect {
                slow_threshold: self.slow_threshold,
                max_missed_pongs: self.max_missed_pongs,
            });
        }
        if self.pong_timeout > self.ping_interval {
            errors.push(ConfigError::PongTimeoutAbovePingInterval {
                pong_timeout: self.pong_timeout,
                ping_interval: self.ping_interval,
            });
        }
        if self.backoff_max < self.backoff_initial {
            errors.push(ConfigError::BackoffMaxBelowInitial {
                backoff_initial: self.backoff_initial,
                backoff_max: self.backoff_max,
            });
        }
    }

    /// Checks the client's own rules (not the ones that relate it to a server and a network).
    ///
    /// Relations between settings are checked once every setting is in range: they mean
    /// nothing on a zero or absurd value.
    #[must_use]
    pub fn validate(&self) -> Validation {
        let mut v = Validation::default();
        self.check_ranges(&mut v.errors);
        if v.errors.is_empty() {
            self.check_relations(&mut v.errors);
        }
        v
    }
}

impl ServerConfig {
    /// The range of each of the server's settings (it has no relations of its own).
    fn check_ranges(&self, errors: &mut Vec<ConfigError>) {
        let mut c = Check(errors);
        c.duration("server.ping_interval", self.ping_interval, false);
        c.duration("server.idle_timeout", self.idle_timeout, false);
        c.duration(
            "server.min_client_ping_interval",
            self.min_client_ping_interval,
            true,
        );
        c.count(
            "server.max_ping_strikes",
            self.max_ping_strikes,
            0,
            MAX_PING_STRIKES,
        );
    }

    /// Checks the server's own rules (not the ones that relate it to a client and a network).
    #[must_use]
    pub fn validate(&self) -> Validation {
        let mut v = Validation::default();
        self.check_ranges(&mut v.errors);
        v
    }
}

impl NetworkAssumptions {
    fn check_ranges(&self, errors: &mut Vec<ConfigError>) {
        let mut c = Check(errors);
        c.duration("network.max_latency", self.max_latency, true);
        c.duration("network.max_server_delay", self.max_server_delay, true);
        c.duration("network.max_timer_lateness", self.max_timer_lateness, true);
        c.duration(
            "network.max_server_timer_lateness",
            self.max_server_timer_lateness,
            true,
        );
    }
}

impl Config {
    /// Checks every rule, returning all errors and warnings at once.
    ///
    /// A configuration without errors gives the guarantees in [`Config::guarantees`] while the
    /// network assumptions hold; `heartbeat check` proves it with a model checker.
    ///
    /// Relations between settings are checked once every setting is in range: they mean
    /// nothing on a zero or absurd value.
    #[must_use]
    pub fn validate(&self) -> Validation {
        let mut v = Validation::default();
        self.client.check_ranges(&mut v.errors);
        self.server.check_ranges(&mut v.errors);
        self.network.check_ranges(&mut v.errors);
        if !v.errors.is_empty() {
            return v;
        }
        self.client.check_relations(&mut v.errors);
        let (c, s, n) = (&self.client, &self.server, &self.network);

        // Whatever the client reads may be handled up to L late, as its timers fire (one busy
        // loop delays both); the server's timers fire and its reads are handled up to L_s late,
        // and its pings are scheduled from when they actually leave.
        let (l, ls) = (n.max_timer_lateness, n.max_server_timer_lateness);
        let round_trip = n
            .max_latency
            .saturating_mul(2)
            .saturating_add(ls)
            .saturating_add(n.max_server_delay)
            .saturating_add(l);
        // Any read is evidence: a server ping in every pong-timeout window prevents misses too.
        let server_ping_gap = s
            .ping_interval
            .saturating_add(ls)
            .saturating_add(n.max_latency)
            .saturating_add(l);
        if c.pong_timeout <= round_trip && c.pong_timeout <= server_ping_gap {
            v.errors.push(ConfigError::PongTimeoutTooShort {
                server_ping_interval: s.ping_interval,
                pong_timeout: c.pong_timeout,
                max_latency: n.max_latency,
                max_server_delay: n.max_server_delay,
                max_timer_lateness: l,
                max_server_timer_lateness: ls,
                required: round_trip,
                server_ping_gap,
            });
        }

        let tolerance = self.guarantees().client_tolerance;
        if tolerance <= server_ping_gap {
            v.errors.push(ConfigError::ToleranceTooShort {
                max_missed_pongs: c.max_missed_pongs,
                ping_interval: c.ping_interval,
                pong_timeout: c.pong_timeout,
                tolerance,
                server_ping_interval: s.ping_interval,
                max_server_timer_lateness: ls,
                max_latency: n.max_latency,
                max_timer_lateness: l,
                required: server_ping_gap,
            });
        }

        // The server reads the client's pings and the client's pongs to its own pings; the
        // longest silence is the shorter of the two sources' longest gaps, or the handshake's
        // (the response read up to L late, then the client's first ping). Each read may be
        // handled up to L_s after it arrived, the one before it at once.
        let lat2 = n.max_latency.saturating_mul(2);
        let ping_gap = c
            .ping_interval
            .saturating_add(l)
            .saturating_add(n.max_latency)
            .saturating_add(ls);
        let pong_gap = s
            .ping_interval
            .saturating_add(ls)
            .saturating_add(lat2)
            .saturating_add(l)
            .saturating_add(ls);
        let handshake_gap = lat2.saturating_add(l).saturating_add(ls);
        let arrival_gap = handshake_gap.max(ping_gap.min(pong_gap));
        if s.idle_timeout <= arrival_gap {
            v.errors.push(ConfigError::IdleTimeoutTooShort {
                idle_timeout: s.idle_timeout,
                client_ping_interval: c.ping_interval,
                server_ping_interval: s.ping_interval,
                max_timer_lateness: l,
                max_server_timer_lateness: ls,
                max_latency: n.max_latency,
                required: arrival_gap,
            });
        }

        // Flood policing (see Server): a client at the allowed rate drifts no further ahead of
        // the schedule than the jitter (the latency, and the server handling one ping late and
        // the next at once) minus what each interval's slack pays back.
        let jitter = n.max_latency.saturating_add(ls);
        let slack = c.ping_interval.saturating_sub(s.min_client_ping_interval);
        let allowance = s
            .idle_timeout
            .saturating_sub(s.min_client_ping_interval)
            .saturating_add(slack.saturating_mul(s.max_ping_strikes.saturating_add(1)));
        if !s.min_client_ping_interval.is_zero()
            && (c.ping_interval < s.min_client_ping_interval || jitter > allowance)
        {
            v.errors.push(ConfigError::ClientPingsWouldStrike {
                client_ping_interval: c.ping_interval,
                idle_timeout: s.idle_timeout,
                max_ping_strikes: s.max_ping_strikes,
                max_latency: n.max_latency,
                max_server_timer_lateness: ls,
                min_client_ping_interval: s.min_client_ping_interval,
            });
        }

        if c.connect_timeout <= lat2.saturating_add(ls).saturating_add(l) {
            v.errors.push(ConfigError::ConnectTimeoutTooShort {
                connect_timeout: c.connect_timeout,
                max_latency: n.max_latency,
                max_server_timer_lateness: ls,
                max_timer_lateness: l,
            });
        }

        if n.max_timer_lateness > c.stall_threshold {
            v.errors.push(ConfigError::LatenessAboveStallThreshold {
                max_timer_lateness: n.max_timer_lateness,
                stall_threshold: c.stall_threshold,
            });
        }

        if tolerance < s.ping_interval.saturating_mul(2) {
            v.warnings
                .push(ConfigWarning::ToleranceBelowTwiceServerPing {
                    tolerance,
                    server_ping_interval: s.ping_interval,
                });
        }
        if c.pong_timeout < s.min_client_ping_interval {
            v.warnings.push(ConfigWarning::HintProbesMayStrike {
                pong_timeout: c.pong_timeout,
                min_client_ping_interval: s.min_client_ping_interval,
            });
        }
        if s.idle_timeout < c.ping_interval.saturating_mul(2) {
            v.warnings
                .push(ConfigWarning::IdleTimeoutBelowTwoClientPings {
                    idle_timeout: s.idle_timeout,
                    client_ping_interval: c.ping_interval,
                });
        }
        v
    }
}
