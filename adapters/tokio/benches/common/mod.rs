//! What the tokio benches share: arguments, /proc readings and the 1 s heartbeat settings
//! that make connections busy. Each bench uses some of these, none all of them.
#![allow(dead_code)]

use std::time::Duration;

use heartbeat_core::{ClientConfig, ServerConfig};

/// The number after `name` on the command line, or `default`.
pub(crate) fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Server pings every 1 s, idle timeout 5 s, flood policing at 500 ms with 2 strikes.
pub(crate) fn one_second_server() -> ServerConfig {
    ServerConfig {
        ping_interval: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(5),
        min_client_ping_interval: Duration::from_millis(500),
        max_ping_strikes: 2,
    }
}

/// Client pings every 1 s, pong timeout 900 ms, Slow at 2 misses, reconnect at 4.
pub(crate) fn one_second_client() -> ClientConfig {
    ClientConfig {
        ping_interval: Duration::from_secs(1),
        pong_timeout: Duration::from_millis(900),
        slow_threshold: 2,
        max_missed_pongs: 4,
        stall_threshold: Duration::from_millis(500),
        connect_timeout: Duration::from_secs(20),
        backoff_initial: Duration::from_secs(1),
        backoff_max: Duration::from_secs(10),
    }
}

/// Resident memory of a process, KiB (VmRSS in /proc).
pub(crate) fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// User + system CPU seconds of a process (clock ticks of 1/100 s, Linux's USER_HZ).
pub(crate) fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    ticks as f64 / 100.0
}
