//! Names of the tracing events and metrics the adapter emits, in one place so dashboards and
//! log queries can rely on them.
//!
//! Tracing events carry the story's names (`websocket.heartbeat_missed_pong`, ...). Metrics go
//! through the `metrics` facade; install any recorder (Prometheus, StatsD, ...) to see them.

use std::time::Duration;

use heartbeat_core::Status;

/// Histogram: heartbeat round-trip time in seconds, label `side` = `client` | `server`.
pub const RTT_SECONDS: &str = "heartbeat_rtt_seconds";
/// Counter: pings that went unanswered for `pong_timeout` (client side).
pub const MISSED_PONGS_TOTAL: &str = "heartbeat_missed_pongs_total";
/// Gauge: the client's current status as a number (see [`status_value`]).
pub const STATUS: &str = "heartbeat_status";
/// Counter: heartbeat reconnects, label `reason`.
pub const RECONNECTS_TOTAL: &str = "heartbeat_reconnects_total";
/// Counter: Slow warnings.
pub const SLOW_TOTAL: &str = "heartbeat_slow_total";
/// Counter: connections the server closed for a heartbeat reason, label `reason`.
pub const SERVER_CLOSES_TOTAL: &str = "heartbeat_server_closes_total";
/// Gauge: connections the server is serving now.
pub const SERVER_CONNECTIONS: &str = "heartbeat_server_connections";
/// Counter: client pings that came too soon (strikes).
pub const PING_STRIKES_TOTAL: &str = "heartbeat_ping_strikes_total";

/// The number [`STATUS`] carries for each status: 0 connecting, 1 healthy, 2 slow,
/// 3 reconnecting, 4 closed.
#[must_use]
pub fn status_value(status: Status) -> f64 {
    match status {
        Status::Connecting => 0.0,
        Status::Healthy => 1.0,
        Status::Slow => 2.0,
        Status::Reconnecting => 3.0,
        Status::Closed => 4.0,
    }
}

pub(crate) fn rtt(side: &'static str, rtt: Duration) {
    metrics::histogram!(RTT_SECONDS, "side" => side).record(rtt.as_secs_f64());
}
