//! Named scenarios: small worlds that show one behaviour of the real core each, as a [`Trace`]
//! ending with world notes that state what happened and why (computed from the run, never
//! written by hand).
//!
//! The CLI lists [`SCENARIOS`] and runs one with [`scenario`]; `docs/timing-diagrams.md` is
//! generated from them (see `tests/diagrams.rs`).

use std::fmt;
use std::time::Duration;

use heartbeat_core::{
    ClientConfig, CloseReason, Config, ConfigErrors, Event, Hint, Instant, ReconnectReason,
    ServerConfig, ServerEvent,
};

use crate::render::{fmt_dur, fmt_time, reason_text, Summary};
use crate::sim::{Fault, Latency, Setup, TraceMode, World};
use crate::trace::{Trace, Who};

/// A scenario's entry point: the configuration (some scenarios use their own, as documented),
/// the seed, and an optional run length replacing the scenario's own.
pub type ScenarioFn = fn(&Config, u64, Option<Duration>) -> Result<Trace, ConfigErrors>;

/// A named scenario.
#[derive(Clone, Copy)]
pub struct ScenarioInfo {
    /// The name used on the command line.
    pub name: &'static str,
    /// One line: what it shows.
    pub about: &'static str,
    /// Runs it.
    pub run: ScenarioFn,
}

impl fmt::Debug for ScenarioInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScenarioInfo")
            .field("name", &self.name)
            .field("about", &self.about)
            .finish_non_exhaustive()
    }
}

/// Every scenario, in the order the docs show them.
pub const SCENARIOS: &[ScenarioInfo] = &[
    ScenarioInfo {
        name: "healthy",
        about: "a healthy connection: pings, pongs and the server's own pings",
        run: healthy,
    },
    ScenarioInfo {
        name: "server-busy-40s",
        about: "the server's whole event loop blocks for 40s: Slow, then Recovered, no reconnect",
        run: server_busy_40s,
    },
    ScenarioInfo {
        name: "server-pongs-lag-40s",
        about: "the server is overloaded for 40s: its pongs lag but its own pings leave on time",
        run: server_pongs_lag_40s,
    },
    ScenarioInfo {
        name: "server-dead",
        about: "the server host vanishes: Slow, then a reconnect within the detection bound",
        run: server_dead,
    },
    ScenarioInfo {
        name: "story-original",
        about: "the story's failure: 30s/30s/3-miss client, backend event loop blocked 100s",
        run: story_original,
    },
    ScenarioInfo {
        name: "story-fixed-config",
        about:
            "the story's new client config (15s, 4 misses, slow at 2) against the same blocked loop",
        run: story_fixed_config,
    },
    ScenarioInfo {
        name: "story-fixed",
        about: "the story's new config with our server: pongs lag 100s, its pings stay on time",
        run: story_fixed,
    },
    ScenarioInfo {
        name: "tab-hidden-10m",
        about: "a browser tab hidden for 10 minutes (timers once a minute), then shown",
        run: tab_hidden_10m,
    },
    ScenarioInfo {
        name: "laptop-asleep-2h",
        about: "a laptop asleep for 2 hours, then resumed: one probe, then a decision",
        run: laptop_asleep_2h,
    },
    ScenarioInfo {
        name: "ping-flood",
        about: "a client pinging every 100ms: the server closes with too_many_pings",
        run: ping_flood,
    },
    ScenarioInfo {
        name: "server-restart-herd",
        about:
            "a server restart under 10,000 clients: reconnects per second, with and without jitter",
        run: server_restart_herd,
    },
];

/// The scenario names, in order.
pub fn names() -> impl Iterator<Item = &'static str> {
    SCENARIOS.iter().map(|s| s.name)
}

/// Why [`scenario`] could not run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScenarioError {
    /// No scenario has this name.
    Unknown(String),
    /// The configuration (client or server side) is invalid.
    Config(ConfigErrors),
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScenarioError::Unknown(name) => {
                write!(f, "unknown scenario {name:?}; known: ")?;
                for (i, n) in names().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    f.write_str(n)?;
                }
                Ok(())
            }
            ScenarioError::Config(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ScenarioError {}

/// Runs the scenario called `name`.
///
/// # Errors
/// [`ScenarioError::Unknown`] for a name not in [`SCENARIOS`], [`ScenarioError::Config`] when
/// the configuration's client or server side is invalid on its own.
pub fn scenario(
    name: &str,
    config: &Config,
    seed: u64,
    duration: Option<Duration>,
) -> Result<Trace, ScenarioError> {
    let info = SCENARIOS
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| ScenarioError::Unknown(name.to_owned()))?;
    (info.run)(config, seed, duration).map_err(ScenarioError::Config)
}

fn about(name: &str) -> String {
    let about = SCENARIOS
        .iter()
        .find(|s| s.name == name)
        .map_or("", |s| s.about);
    format!("{name}: {about}")
}

const S: fn(u64) -> Instant = Instant::from_secs;

/// One client, fixed 50 ms latency: diagrams stay readable.
fn one_client(config: &Config, seed: u64) -> Setup {
    let mut setup = Setup::new(*config);
    setup.seed = seed;
    setup
}

fn run(
    name: &str,
    setup: Setup,
    faults: Vec<(Instant, Fault)>,
    end: Instant,
) -> Result<World, ConfigErrors> {
    let line = config_line(&setup);
    let mut world = World::new(setup)?;
    world.note(line);
    for (at, f) in faults {
        world.schedule(at, f);
    }
    world.run_until(end);
    world.set_title(about(name));
    Ok(world)
}

/// One line naming the settings that matter in a diagram.
#[must_use]
pub fn config_line(setup: &Setup) -> String {
    let (c, s) = (&setup.config.client, &setup.config.server);
    let latency = match setup.network.latency {
        Latency::Fixed(d) => format!("{} each way", fmt_dur(d)),
        Latency::Uniform { min, max } => format!("{}..{} each way", fmt_dur(min), fmt_dur(max)),
        Latency::LongTail { typical, max } => {
            format!(
                "about {} each way, tail to {}",
                fmt_dur(typical),
                fmt_dur(max)
            )
        }
    };
    format!(
        "config: client pings every {}, pong timeout {}, slow at {} missed, reconnect at {}; \
         server pings every {}, idle timeout {}; latency {latency}",
        fmt_dur(c.ping_interval),
        fmt_dur(c.pong_timeout),
        c.slow_threshold,
        c.max_missed_pongs,
        fmt_dur(s.ping_interval),
        fmt_dur(s.idle_timeout),
    )
}

fn end_or(duration: Option<Duration>, default: Duration) -> Instant {
    Instant::ZERO.saturating_add(duration.unwrap_or(default))
}

/// The first reconnect at or after `from`, if any.
fn first_reconnect(trace: &Trace, from: Instant) -> Option<(Instant, ReconnectReason)> {
    trace.client_events().find_map(|(at, _, ev)| match ev {
        Event::Reconnect { reason, .. } if at >= from => Some((at, reason)),
        _ => None,
    })
}

fn conclude(trace: &mut Trace, text: String) {
    let at = trace.end();
    trace.note(at, Who::World, text);
}

/// Like [`verdict`], naming what happened at `from`.
fn verdict_after(trace: &Trace, from: Instant, what: &str) -> String {
    verdict(trace, from).replace("after the fault", what)
}

/// "no reconnect, n slow window(s)" or the first reconnect and its reason, from `from`.
fn verdict(trace: &Trace, from: Instant) -> String {
    let s = Summary::from_trace(trace);
    let slow = s.slow_windows.len();
    match first_reconnect(trace, from) {
        None => format!(
            "result: no reconnect; {} pong(s) missed, {slow} slow window(s), {} recovered",
            s.misses,
            s.slow_windows.iter().filter(|w| w.recovered).count()
        ),
        Some((at, reason)) => format!(
            "result: reconnect at {} ({} after the fault): {}",
            fmt_time(at),
            fmt_dur(at.saturating_duration_since(from)),
            reason_text(reason)
        ),
    }
}

/// A healthy connection: one client, 50 ms each way. Default length 1 minute.
///
/// # Errors
/// When `config`'s client or server side is invalid.
pub fn healthy(
    config: &Config,
    seed: u64,
    duration: Option<Duration>,
) -> Result<Trace, ConfigErrors> {
    let end = end_or(duration, Duration::from_secs(60));
    let mut t = run("healthy", one_client(config, seed), vec![], end)?.into_trace();
    let v = verdict(&t, Instant::ZERO);
    conclude(&mut t, v);
    Ok(t)
}

/// The server's whole process blocks for 40 s at T=30s. Default length 2 minutes.
///
/// # Errors
/// When `config`'s client or server side is invalid.
pub fn server_busy_40s(
    config: &Config,
    seed: u64,
    duration: Option<Duration>,
) -> Result<Trace, ConfigErrors> {
    let end = end_or(duration, Duration::from_secs(120));
    let faults = vec![(S(30), Fault::ServerFrozen(Duration::from_secs(40)))];
    let mut t = run("server-busy-40s", one_client(config, seed), faults, end)?.into_trace();
    let v = verdict(&t, S(30));
    conclude(&mut t, v);
    conclude(
        &mut t,
        format!(
            "why: 40s without any sign of life is below the client tolerance of {} \
             ((max_missed_pongs - 1) x ping_interval + pong_timeout)",
            fmt_dur(config.guarantees().client_tolerance)
        ),
    );
    Ok(t)
}

/// The server is overloaded for 40 s at T=30s: pongs wait, its pings do not.
///
/// # Errors
/// When `config`'s client or server side is invalid.
pub fn server_pongs_lag_40s(
    config: &Config,
    seed: u64,
    duration: Option<Duration>,
) -> Result<Trace, ConfigErrors> {
    let end = end_or(duration, Duration::from_secs(120));
    let faults = vec![(S(30), Fault::ServerBusy(Duration::from_secs(40)))];
    let mut t = run(
        "server-pongs-lag-40s",
        one_client(config, seed),
        faults,
        end,
    )?
    .into_trace();
    let v = verdict(&t, S(30));
    conclude(&mut t, v);
    conclude(
        &mut t,
        format!(
            "why: the server's own pings (every {}) are signs of life: each one resets the \
             client's miss count, however late the pongs are",
            fmt_dur(config.server.ping_interval)
        ),
    );
    Ok(t)
}

/// The server host vanishes at T=30s (no close frame, connects time out). Default 3 minutes.
///
/// # Errors
/// When `config`'s client or server side is invalid.
pub fn server_dead(
    config: &Config,
    seed: u64,
    duration: Option<Duration>,
) -> Result<Trace, ConfigErrors> {
    let end = end_or(duration, Duration::from_secs(180));
    let faults = vec![(S(30), Fault::ServerHostDown)];
    let mut t = run("server-dead", one_client(config, seed), faults, end)?.into_trace();
    let bound = config.guarantees().detection_bound;
    let v = verdict(&t, S(30));
    conclude(&mut t, v);
    if let Some((at, _)) = first_reconnect(&t, S(30)) {
        let took = at.saturating_duration_since(S(30));
        conclude(
            &mut t,
            format!(
                "detection took {} ({} the detection bound of {})",
                fmt_dur(took),
                if took <= bound { "within" } else { "BEYOND" },
                fmt_dur(bound)
            ),
        );
    }
    Ok(t)
}

/// The story's configuration: frontend 30 s ping, 30 s pong timeout, 3 misses (slow at 2);
/// backend 30 s ping, 90 s idle timeout.
#[must_use]
pub fn story_original_config() -> Config {
    Config {
        client: ClientConfig {
            ping_interval: Duration::from_secs(30),
            pong_timeout: Duration::from_secs(30),
            slow_threshold: 2,
            max_missed_pongs: 3,
            ..ClientConfig::default()
        },
        server: ServerConfig {
            ping_interval: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(90),
            ..ServerConfig::default()
        },
        ..Config::default()
    }
}

/// The story's fixed configuration: frontend 15 s ping, 10 s pong timeout, 4 misses, slow at
/// 2; backend 30 s ping, 90 s idle timeout.
#[must_use]
pub fn story_new_config() -> Config {
    Config {
        client: ClientConfig {
            ping_interval: Duration::from_secs(15),
            pong_timeout: Duration::from_secs(10),
            slow_threshold: 2,
            max_missed_pongs: 4,
            ..ClientConfig::default()
        },
        ..story_original_config()
    }
}

const STORY_LOAD: Duration = Duration::from_secs(100);

fn story(
    name: &str,
    config: Config,
    fault: Fault,
    seed: u64,
    duration: Option<Duration>,
) -> Result<Trace, ConfigErrors> {
    let end = end_or(duration, Duration::from_secs(200));
    let faults = vec![(S(60), fault)];
    let mut t = run(name, one_client(&config, seed), faults, end)?.into_trace();
    let v = verdict(&t, S(60));
    conclude(&mut t, v);
    Ok(t)
}

/// The story's failure. Uses [`story_original_config`]; `config` is ignored.
///
/// # Errors
/// Never in practice (the story's config is valid on each side).
pub fn story_original(
    _config: &Config,
    seed: u64,
    duration: Option<Duration>,
) -> Result<Trace, ConfigErrors> {
    let config = story_original_config();
    let mut t = story(
        "story-original",
        config,
        Fault::ServerFrozen(STORY_LOAD),
        seed,
        duration,
    )?;
    conclude(
        &mut t,
        format!(
            "why: a blocked event loop sends neither pongs nor its own pings, so nothing reaches \
             the client for {}; the client tolerates {} (2 x 30s + 30s), so 3 consecutive pongs \
             are missed and it reconnects, though the backend was only slow",
            fmt_dur(STORY_LOAD),
            fmt_dur(config.guarantees().client_tolerance)
        ),
    );
    Ok(t)
}

/// The story's fixed client config against the same blocked loop. Uses
/// [`story_new_config`]; `config` is ignored.
///
/// # Errors
/// Never in practice.
pub fn story_fixed_config(
    _config: &Config,
    seed: u64,
    duration: Option<Duration>,
) -> Result<Trace, ConfigErrors> {
    let config = story_new_config();
    let mut t = story(
        "story-fixed-config",
        config,
        Fault::ServerFrozen(STORY_LOAD),
        seed,
        duration,
    )?;
    conclude(
        &mut t,
        format!(
            "why: the new numbers add the Slow warning but shorten the tolerance to {} \
             (3 x 15s + 10s): against a backend that sends nothing for {} no client setting \
             helps; the backend must keep signs of life flowing",
            fmt_dur(config.guarantees().client_tolerance),
            fmt_dur(STORY_LOAD)
        ),
    );
    Ok(t)
}

/// The story's fixed config with our server: under the same load its pongs lag, its pings do
/// not. Uses [`story_new_config`]; `config` is ignored.
///
/// # Errors
/// Never in practice.
pub fn story_fixed(
    _config: &Config,
    seed: u64,
    duration: Option<Duration>,
) -> Result<Trace, ConfigErrors> {
    let config = story_new_config();
    let mut t = story(
        "story-fixed",
        config,
        Fault::ServerBusy(STORY_LOAD),
        seed,
        duration,
    )?;
    conclude(
        &mut t,
        format!(
            "why: what fixes it is the server, not the numbers: heartbeat-core's server pings \
             on its own schedule (every {}) while the pong handler is busy, and the client \
             counts any message as a sign of life; validation requires the client tolerance ({}) \
             to exceed server.ping_interval + network.max_latency",
            fmt_dur(config.server.ping_interval),
            fmt_dur(config.guarantees().client_tolerance)
        ),
    );
    // The same load with the story's original client numbers, to say what the numbers add.
    let original = story(
        "story-fixed",
        story_original_config(),
        Fault::ServerBusy(STORY_LOAD),
        seed,
        duration,
    )?;
    let s = Summary::from_trace(&original);
    conclude(
        &mut t,
        format!(
            "the same load with the original 30s/30s/3 client and this server: {} reconnect(s), \
             {} slow window(s); the new numbers add an earlier Slow warning and faster detection \
             of a really dead server ({} instead of {})",
            s.reconnects.len(),
            s.slow_windows.len(),
            fmt_dur(config.guarantees().detection_bound),
            fmt_dur(story_original_config().guarantees().detection_bound),
        ),
    );
    Ok(t)
}

/// A tab hidden at T=30s for 10 minutes (timers once a minute), then shown.
///
/// # Errors
/// When `config`'s client or server side is invalid.
pub fn tab_hidden_10m(
    config: &Config,
    seed: u64,
    duration: Option<Duration>,
) -> Result<Trace, ConfigErrors> {
    let end = end_or(duration, Duration::from_secs(11 * 60 + 30));
    let hidden = Duration::from_secs(600);
    let faults = vec![
        (
            S(30),
            Fault::Hint {
                client: 0,
                hint: Hint::Hidden,
            },
        ),
        (
            S(30),
            Fault::ClientThrottled {
                client: 0,
                period: Duration::from_secs(60),
                duration: hidden,
            },
        ),
        (
            S(630),
            Fault::Hint {
                client: 0,
                hint: Hint::Visible,
            },
        ),
    ];
    let mut t = run("tab-hidden-10m", one_client(config, seed), faults, end)?.into_trace();
    let v = verdict(&t, S(30));
    conclude(&mut t, v);
    conclude(
        &mut t,
        "why: late timers are told apart from a dead server (Stalled: the miss is not counted, \
         a probe decides), and the server's pings, answered at once even in a hidden tab, keep \
         both sides' evidence fresh"
            .to_owned(),
    );
    Ok(t)
}

const SLEEP_AT: Instant = Instant::from_millis(45_120);

/// A laptop asleep at T=45.12s (a ping in flight) for 2 hours, then resumed.
///
/// # Errors
/// When `config`'s client or server side is invalid.
pub fn laptop_asleep_2h(
    config: &Config,
    seed: u64,
    duration: Option<Duration>,
) -> Result<Trace, ConfigErrors> {
    let end = end_or(duration, Duration::from_secs(2 * 3600 + 90));
    // The lid closes just after a ping left and before its pong arrived.
    let faults = vec![(
        SLEEP_AT,
        Fault::ClientAsleep {
            client: 0,
            duration: Duration::from_secs(2 * 3600),
        },
    )];
    let mut t = run("laptop-asleep-2h", one_client(config, seed), faults, end)?.into_trace();
    let wake = SLEEP_AT.saturating_add(Duration::from_secs(2 * 3600));
    let stalled = t
        .client_events()
        .filter(|(at, _, ev)| *at >= wake && matches!(ev, Event::Stalled { .. }))
        .count();
    let v = verdict_after(&t, wake, "after waking");
    conclude(
        &mut t,
        format!(
            "on waking: {stalled} stall detected: the pending pong deadline was 2h late, so it \
             was not counted as a miss and a probe was sent instead"
        ),
    );
    conclude(&mut t, v);
    conclude(
        &mut t,
        "why: the server closed the idle connection while the laptop slept (the close never \
         arrived); the probe sent on waking met a reset, fresh evidence that this connection is \
         gone, so the client reconnects at once (had the probe vanished instead, its miss would \
         count, and the usual misses would decide)"
            .to_owned(),
    );
    Ok(t)
}

/// A client configured to ping every second (each side valid alone, the pair invalid).
///
/// # Errors
/// When `config`'s server side is invalid.
pub fn ping_flood(
    config: &Config,
    seed: u64,
    duration: Option<Duration>,
) -> Result<Trace, ConfigErrors> {
    let end = end_or(duration, Duration::from_secs(3));
    let mut flooding = *config;
    flooding.client.ping_interval = Duration::from_millis(100);
    flooding.client.pong_timeout = Duration::from_millis(100);
    let mut t = run("ping-flood", one_client(&flooding, seed), vec![], end)?.into_trace();
    let closes = t
        .server_events()
        .filter(|(_, _, ev)| matches!(ev, ServerEvent::Close(CloseReason::TooManyPings)))
        .count();
    conclude(
        &mut t,
        format!(
            "result: {closes} close(s) for too_many_pings; the server allows one ping per {} on average \
             with a burst of idle_timeout / min_client_ping_interval pings, then {} strikes, then closes \
             with 1008 too_many_pings; `heartbeat check` rejects this pair \
             (client.ping_interval < server.min_client_ping_interval)",
            fmt_dur(config.server.min_client_ping_interval),
            config.server.max_ping_strikes
        ),
    );
    Ok(t)
}

/// The figures of one herd run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HerdReport {
    /// Clients in the world.
    pub clients: u32,
    /// Whether each client had its own backoff seed (jitter) or all shared one.
    pub jitter: bool,
    /// Most connection attempts in one simulated second after the crash.
    pub peak_connects_per_sec: u32,
    /// Most connections the server accepted in one simulated second after the restart.
    pub peak_accepts_per_sec: u32,
    /// From the crash until every client was connected again (`None`: not within the run).
    pub all_back_after: Option<Duration>,
    /// Reconnects by reason: missed pongs, connection closed, connect failed, connect timeout.
    pub reconnects: [u64; 4],
}

/// When the herd's server crashes, and for how long it stays down.
pub const HERD_CRASH_AT: u64 = 60;
/// How long the herd's server stays down.
pub const HERD_DOWN_FOR: u64 = 5;

/// A server restart under `clients` clients: they start over 15 s, the server process exits at
/// T=60s (every socket reset) and is back 5 s later. With `jitter` false every client has the
/// same backoff seed. Returns the figures and client 0's trace.
///
/// # Errors
/// When `config`'s client or server side is invalid.
pub fn herd(
    config: &Config,
    seed: u64,
    clients: u32,
    jitter: bool,
    duration: Option<Duration>,
) -> Result<(HerdReport, Trace), ConfigErrors> {
    let end = end_or(duration, Duration::from_secs(150));
    let mut setup = Setup::new(*config);
    setup.seed = seed;
    setup.clients = clients;
    setup.network.latency = Latency::Uniform {
        min: Duration::from_millis(10),
        max: Duration::from_millis(150),
    };
    setup.start_spread = Duration::from_secs(15);
    setup.same_client_seed = !jitter;
    setup.trace = TraceMode::Client(0);
    let faults = vec![
        (S(HERD_CRASH_AT), Fault::ServerCrash),
        (S(HERD_CRASH_AT + HERD_DOWN_FOR), Fault::ServerRestart),
    ];
    let world = run("server-restart-herd", setup, faults, end)?;
    let stats = world.stats();
    let crash = HERD_CRASH_AT as usize;
    let peak = |v: &[u32]| v.iter().skip(crash).copied().max().unwrap_or(0);
    let mut back = 0u64;
    let mut all_back_after = None;
    for (sec, n) in stats.accepts_per_sec.iter().enumerate().skip(crash) {
        back += u64::from(*n);
        if back >= u64::from(clients) {
            all_back_after = Some(Duration::from_secs((sec + 1 - crash) as u64));
            break;
        }
    }
    let report = HerdReport {
        clients,
        jitter,
        peak_connects_per_sec: peak(&stats.connects_per_sec),
        peak_accepts_per_sec: peak(&stats.accepts_per_sec),
        all_back_after,
        reconnects: stats.reconnects,
    };
    Ok((report, world.into_trace()))
}

impl fmt::Display for HerdReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} clients, {}: peak {} connection attempts/s, peak {} accepted/s, all back {}",
            self.clients,
            if self.jitter {
                "jittered backoff (own seed each)"
            } else {
                "no jitter (one seed for all)"
            },
            self.peak_connects_per_sec,
            self.peak_accepts_per_sec,
            self.all_back_after.map_or_else(
                || "not within the run".to_owned(),
                |d| format!("{} after the crash", fmt_dur(d))
            )
        )
    }
}

/// Clients in the herd scenario.
pub const HERD_CLIENTS: u32 = 10_000;

/// The herd with and without jitter; the trace is client 0's, with both reports as notes.
///
/// # Errors
/// When `config`'s client or server side is invalid.
pub fn server_restart_herd(
    config: &Config,
    seed: u64,
    duration: Option<Duration>,
) -> Result<Trace, ConfigErrors> {
    let (with, mut t) = herd(config, seed, HERD_CLIENTS, true, duration)?;
    let (without, _) = herd(config, seed, HERD_CLIENTS, false, duration)?;
    conclude(&mut t, format!("with jitter: {with}"));
    conclude(&mut t, format!("without jitter: {without}"));
    Ok(t)
}

/// The stability world: `clients` clients on `config`, long-tail latency up to
/// `network.max_latency`, pong delay up to `network.max_server_delay` (normal handling plus a
/// load spike of `max_server_delay - 500ms` every 7 minutes), timers up to
/// `network.max_timer_lateness` late; no trace. Everything stays within the assumptions, so a
/// valid configuration must show no miss, no reconnect and no server close, however long it
/// runs. Returned unrun: call [`World::run_until`].
///
/// # Errors
/// When `config`'s client or server side is invalid.
pub fn stability_world(
    config: &Config,
    seed: u64,
    clients: u32,
    duration: Duration,
) -> Result<World, ConfigErrors> {
    let n = config.network;
    let mut setup = Setup::new(*config);
    setup.seed = seed;
    setup.clients = clients;
    setup.trace = TraceMode::Off;
    setup.network.latency = Latency::LongTail {
        typical: Duration::from_millis(60).min(n.max_latency),
        max: n.max_latency,
    };
    let spike = n
        .max_server_delay
        .saturating_sub(Duration::from_millis(500));
    setup.server_delay = Latency::Uniform {
        min: Duration::ZERO,
        max: n.max_server_delay.saturating_sub(spike),
    };
    setup.timer_jitter = n.max_timer_lateness;
    setup.start_spread = Duration::from_secs(10);
    let mut world = World::new(setup)?;
    let end = duration.as_secs();
    for t in (300..end).step_by(420) {
        world.schedule(Instant::from_secs(t), Fault::ServerBusy(spike));
    }
    Ok(world)
}
