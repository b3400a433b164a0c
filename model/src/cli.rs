//! The `heartbeat` command: `check`, `simulate`, `diagram`, `explore`.
//!
//! Everything a person reads is produced here as a `String`, so tests can snapshot it; the
//! binary in `src/bin/heartbeat.rs` only parses arguments, reads files and the environment,
//! prints and exits.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use heartbeat_core::load::{self, LoadError};
use heartbeat_core::{parse_duration, Config, HumanDuration as H};
use serde::Serialize;

use crate::check::{
    self, names, Approximation, CheckError, CheckOptions, Kind, Report, Status, Verdict,
};
use crate::explore::{self, Limit, Limits, Stop};
use crate::render;

/// Proves that a frontend's and a backend's heartbeat timeouts are in sync.
#[derive(Debug, Parser)]
#[command(name = "heartbeat", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate a configuration and model-check its timing guarantees.
    #[command(after_help = EXIT_CODES)]
    Check {
        /// A YAML, TOML or JSON file (ours or the story's `websocket.frontend/backend` layout).
        /// Without it, the embedded default configuration. HEARTBEAT_<SECTION>__<FIELD>
        /// environment variables override either.
        config: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        #[command(flatten)]
        settings: CheckSettings,
    },
    /// Run a scenario in the simulator and print its summary.
    Simulate {
        /// Configuration file (see `check`).
        config: Option<PathBuf>,
        /// The scenario (see `heartbeat diagram --list`).
        #[arg(long, default_value = "healthy")]
        scenario: String,
        /// Simulated time, e.g. 24h.
        #[arg(long, value_parser = duration_arg)]
        duration: Option<Duration>,
        /// The seed of every random choice.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Print a scenario's timing diagram.
    Diagram {
        /// The scenario; omit with --list.
        scenario: Option<String>,
        /// Mermaid sequence diagram instead of ASCII.
        #[arg(long)]
        mermaid: bool,
        /// List the scenarios.
        #[arg(long)]
        list: bool,
        /// Configuration file (see `check`).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Serve stateright's Explorer on 127.0.0.1 to step through the model by hand.
    Explore {
        /// Configuration file (see `check`).
        config: Option<PathBuf>,
        /// Port on 127.0.0.1.
        #[arg(long, default_value_t = 3000)]
        port: u16,
    },
}

/// The exit codes of `check`, as `--help` prints them.
pub const EXIT_CODES: &str = "Exit codes:
  0  proven: every rule holds and the model check visited every reachable state
  1  a rule or a property fails (with the shortest counterexample), a state is time-locked,
     or the proof is vacuous (a non-vacuity witness is unreachable)
  2  unusable input (unreadable file, parse error, unknown key, bad flag)
  3  inconclusive: a limit (--max-states, --max-seconds, --max-memory-mb) stopped the search
     before a verdict; nothing is proven";

/// `--max-seconds` unless given: ten minutes.
const DEFAULT_MAX_SECONDS: u64 = 600;

/// How `check` searches.
#[derive(Clone, Copy, Debug, clap::Args)]
pub struct CheckSettings {
    /// Also explore runs with two faults (an overload followed by a death or a cut).
    #[arg(long)]
    pub combined_faults: bool,
    /// Stop with exit code 3 when one search would hold more than this many unique states
    /// (each search of a check has this budget; memory grows with it).
    #[arg(long, default_value_t = Limits::default().max_states)]
    pub max_states: usize,
    /// Stop with exit code 3 after this many seconds.
    #[arg(long, default_value_t = DEFAULT_MAX_SECONDS)]
    pub max_seconds: u64,
    /// Stop with exit code 3 when the search holds this many MiB.
    #[arg(long, default_value_t = Limits::default().max_bytes >> 20)]
    pub max_memory_mb: usize,
    /// Check in units of the greatest common divisor of every duration only, never on a
    /// coarser grid with rounded network assumptions.
    #[arg(long)]
    pub exact: bool,
}

impl Default for CheckSettings {
    fn default() -> Self {
        CheckSettings {
            combined_faults: false,
            max_states: Limits::default().max_states,
            max_seconds: DEFAULT_MAX_SECONDS,
            max_memory_mb: Limits::default().max_bytes >> 20,
            exact: false,
        }
    }
}

impl CheckSettings {
    fn options(self) -> CheckOptions {
        CheckOptions {
            limits: Limits {
                max_states: self.max_states,
                max_time: Some(Duration::from_secs(self.max_seconds)),
                max_bytes: self.max_memory_mb.saturating_mul(1 << 20),
            },
            exact: self.exact,
            combined_faults: self.combined_faults,
            ..CheckOptions::default()
        }
    }
}

/// Output formats of `check`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people.
    Text,
    /// For CI pipelines.
    Json,
}

fn duration_arg(s: &str) -> Result<Duration, String> {
    parse_duration(s).map_err(|e| e.to_string())
}

/// Unusable input: exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is larger than any configuration should be; nothing past the limit was read.
    #[error("{path} is larger than {limit} bytes: not a configuration file")]
    TooLarge {
        /// The path.
        path: String,
        /// [`MAX_CONFIG_BYTES`].
        limit: usize,
    },
    /// The file or an override does not parse.
    #[error("{path}: {source}")]
    Load {
        /// The path, or "environment".
        path: String,
        /// Why.
        source: LoadError,
    },
}

/// The largest configuration file read (1 MiB): a config is a few hundred bytes, and `/dev/zero`
/// or a log file named by mistake must not be read to exhaustion.
pub const MAX_CONFIG_BYTES: usize = 1 << 20;

/// Reads at most [`MAX_CONFIG_BYTES`] (and one byte more, to tell that there is more).
fn read_capped(path: &std::path::Path) -> Result<String, InputError> {
    use std::io::Read as _;
    let shown = || path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| InputError::Read {
        path: shown(),
        source,
    })?;
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| InputError::Read {
            path: shown(),
            source,
        })?;
    if bytes.len() > MAX_CONFIG_BYTES {
        return Err(InputError::TooLarge {
            path: shown(),
            limit: MAX_CONFIG_BYTES,
        });
    }
    String::from_utf8(bytes).map_err(|_| InputError::Read {
        path: shown(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"),
    })
}

/// True for a file with no setting in it (blank, comments only, or an empty JSON object).
fn has_no_settings(text: &str) -> bool {
    text.trim() == "{}"
        || text.lines().all(|l| {
            let l = l.trim();
            l.is_empty() || l.starts_with('#')
        })
}

/// Loads the configuration the way every tool does: the file (or the default), then the
/// environment's HEARTBEAT_* overrides. Returns the configuration and a description of where
/// it came from.
///
/// # Errors
/// [`InputError`] for a missing file, a parse error (with line and column) or an unknown key.
pub fn load_config<I, K, V>(
    path: Option<&std::path::Path>,
    env: I,
) -> Result<(Config, String), InputError>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: AsRef<str>,
{
    let text = match path {
        Some(p) => Some(read_capped(p)?),
        None => None,
    };
    let shown = path.map(|p| p.display().to_string());
    let file = shown.as_deref().zip(text.as_deref());
    let (config, overrides) = load::resolve(file, env).map_err(|source| InputError::Load {
        path: if source.is_override() {
            "environment".into()
        } else {
            shown.clone().unwrap_or_default()
        },
        source,
    })?;
    let empty = text.as_deref().is_some_and(has_no_settings);
    let source = match shown {
        Some(p) if empty => format!("{p} (no settings in it: the defaults were checked)"),
        Some(p) => p,
        None => "the embedded default configuration".to_owned(),
    };
    let source = if overrides == 0 {
        source
    } else {
        format!("{source}, with HEARTBEAT_* overrides")
    };
    Ok((config, source))
}

/// What `check` found, with its exit code.
#[derive(Debug)]
pub struct CheckOutcome {
    /// The text or JSON to print on stdout.
    pub output: String,
    /// 0 proven; 1 a rule or a property fails (or time-locked, or vacuous); 3 inconclusive.
    pub exit_code: i32,
}

/// The exit code of a check: a broken rule or a failed property is 1 whatever else happened;
/// a search stopped by a limit is 3 (never 0); 0 only for a proof.
fn exit_code(valid: bool, report: &Result<Report, CheckError>) -> i32 {
    match report {
        Err(_) => 1,
        Ok(_) if !valid => 1,
        Ok(r) => match r.verdict {
            Verdict::Proven => 0,
            Verdict::Failed | Verdict::Vacuous => 1,
            Verdict::Inconclusive(_) => 3,
        },
    }
}

/// Validates and model-checks `config`; `timing` false leaves wall times and memory out (for
/// snapshots).
#[must_use]
pub fn run_check(
    config: &Config,
    source: &str,
    format: Format,
    settings: CheckSettings,
    timing: bool,
) -> CheckOutcome {
    let validation = config.validate();
    let options = CheckOptions {
        progress: Some(|states, elapsed| {
            let rate = states as f64 / elapsed.as_secs_f64().max(1e-9);
            eprintln!("heartbeat check: {states} states explored, {rate:.0} states/s");
        }),
        ..settings.options()
    };
    let report = check::check(config, options);
    let output = match format {
        Format::Text => text_report(config, source, &validation, &report, timing),
        Format::Json => json_report(config, source, &validation, &report, timing),
    };
    CheckOutcome {
        output,
        exit_code: exit_code(validation.is_ok(), &report),
    }
}

/// "12,345".
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The process's peak resident memory where the system tells it, else the search's estimate.
fn peak_memory(report: &Report) -> usize {
    explore::peak_resident_bytes().unwrap_or_else(|| report.peak_bytes())
}

fn limit_text(limit: Limit) -> String {
    match limit {
        Limit::States(n) => format!("the state limit ({} unique states)", thousands(n)),
        Limit::Time(t) => format!("the time limit ({:.1} s)", t.as_secs_f64()),
        Limit::Memory(b) => format!("the memory limit ({} MiB)", b >> 20),
    }
}

fn limit_advice(limit: Limit) -> &'static str {
    match limit {
        Limit::States(_) => "raise --max-states (memory grows with it, about 100 bytes a state)",
        Limit::Time(_) => "raise --max-seconds",
        Limit::Memory(_) => "raise --max-memory-mb",
    }
}

fn text_report(
    config: &Config,
    source: &str,
    validation: &heartbeat_core::Validation,
    report: &Result<Report, CheckError>,
    timing: bool,
) -> String {
    let (c, s, n) = (&config.client, &config.server, &config.network);
    let mut out = String::new();
    let _ = writeln!(out, "heartbeat check: {source}\n");
    let _ = writeln!(out, "Configuration");
    let _ = writeln!(
        out,
        "  client:  ping every {}, pong timeout {}, slow after {} misses, reconnect after {}",
        H(c.ping_interval),
        H(c.pong_timeout),
        c.slow_threshold,
        c.max_missed_pongs
    );
    let _ = writeln!(
        out,
        "  server:  ping every {}, idle timeout {}, at most one client ping per {} ({} strikes)",
        H(s.ping_interval),
        H(s.idle_timeout),
        H(s.min_client_ping_interval),
        s.max_ping_strikes
    );
    let _ = writeln!(
        out,
        "  assumed: one-way latency <= {}, server reply delay <= {} under normal load, client timers and reads late <= {}, server timers and reads late <= {}\n",
        H(n.max_latency),
        H(n.max_server_delay),
        H(n.max_timer_lateness),
        H(n.max_server_timer_lateness)
    );
    let verdict = if validation.is_ok() { "ok" } else { "FAILED" };
    let _ = writeln!(
        out,
        "Validation: {verdict} ({} errors, {} warnings)",
        validation.errors.len(),
        validation.warnings.len()
    );
    for e in &validation.errors {
        let _ = writeln!(out, "  error: {e}");
    }
    for w in &validation.warnings {
        let _ = writeln!(out, "  warning: {w}");
    }
    out.push('\n');
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(out, "Model check: not run: {e}");
            return out;
        }
    };
    model_check_text(&mut out, report, timing);
    if let Some(failure) = report.first_failure() {
        let within = match failure.decided_by {
            Some(Approximation::Corners) => {
                "; shortest among the runs with extreme delays, a real run of this configuration"
            }
            _ => "",
        };
        let what = if failure.name == names::TIME_ADVANCES {
            format!(
                "Shortest path to a time-locked state (time can never pass again: a model error{within})"
            )
        } else {
            format!("Shortest counterexample ({}{within})", failure.name)
        };
        let _ = writeln!(out, "{what}:\n");
        if let Some(t) = &failure.trace {
            out.push_str(&render::ascii(t));
        }
        return out;
    }
    if report.verdict != Verdict::Proven {
        return out;
    }
    guarantees_text(&mut out, config, report);
    out
}

/// The "Model check" section: verdict, coverage, one line per property.
fn model_check_text(out: &mut String, report: &Report, timing: bool) {
    let time = if timing {
        format!(
            ", {:.2} s, {} MiB",
            report.elapsed().as_secs_f64(),
            peak_memory(report).div_ceil(1 << 20)
        )
    } else {
        String::new()
    };
    let deciding = report.runs.get(report.deciding);
    let depth = deciding.map_or(0, |r| r.depth);
    let searches = if report.runs.len() > 1 {
        format!(" in {} searches", report.runs.len())
    } else {
        String::new()
    };
    let every = if report.rounded {
        "every reachable state of the rounded model visited"
    } else {
        "every reachable state visited"
    };
    let coverage = match report.verdict {
        Verdict::Proven | Verdict::Vacuous => every.to_owned(),
        Verdict::Failed => match deciding.map(|r| r.stop) {
            Some(Stop::Complete) => every.to_owned(),
            _ => "stopped at the first failure".to_owned(),
        },
        Verdict::Inconclusive(limit) => format!("stopped at {}", limit_text(limit)),
    };
    let _ = writeln!(
        out,
        "Model check: {} ({} states{searches}{time}, depth {depth}, time unit {}, {coverage})",
        report.verdict.as_str(),
        thousands(report.states()),
        H(report.unit),
    );
    if report.rounded {
        let m = &report.network;
        let _ = writeln!(
            out,
            "  checked on the timers' {} grid with the assumptions rounded up (latency <= {}, server delay <= {}, \
             timers late <= {}):\n  every behaviour of the configured assumptions is one of those, so what holds \
             there holds here; the bounds below are the rounded ones (weaker, still true). Counterexamples and \
             witnesses come only from searches of behaviours the configuration has.",
            H(report.unit),
            H(m.max_latency),
            H(m.max_server_delay),
            H(m.max_timer_lateness),
        );
    }
    match report.verdict {
        Verdict::Inconclusive(limit) => {
            let _ = writeln!(
                out,
                "  INCONCLUSIVE: no state covered breaks a property, but the search did not finish: this is \
                 no proof.\n  To finish: {}; or choose durations with a larger common divisor (the time unit \
                 is {}).",
                limit_advice(limit),
                H(report.exact_unit)
            );
        }
        Verdict::Vacuous => {
            let missing: Vec<&str> = report
                .properties
                .iter()
                .filter(|p| p.kind == Kind::Witness && p.status != Status::Reached)
                .map(|p| p.name)
                .collect();
            let _ = writeln!(
                out,
                "  VACUOUS: every property holds, but {} cannot happen in this model, so the properties are \
                 never exercised there: this is no proof.",
                missing.join(" and ")
            );
        }
        Verdict::Proven | Verdict::Failed => {}
    }
    for p in &report.properties {
        let mark = match (p.kind, p.status) {
            (_, Status::Fails) => "FAILS",
            (_, Status::Undecided) if p.kind == Kind::Always => "held so far",
            (_, Status::Undecided) => "not seen yet",
            (Kind::Witness, Status::Unreachable) => "UNREACHABLE",
            (_, status) => status.as_str(),
        };
        let _ = writeln!(out, "  {mark:<12} {}", p.name);
    }
    if report.verdict == Verdict::Proven {
        let _ = writeln!(
            out,
            "  time advances from every reachable state{}",
            match report.idle_states {
                0 => String::new(),
                n => format!(
                    " ({} states wait for nothing: no timer set, nothing in flight)",
                    thousands(n)
                ),
            }
        );
    }
    out.push('\n');
}

fn guarantees_text(out: &mut String, config: &Config, report: &Report) {
    let s = &config.server;
    let n = &report.network;
    let g = &report.guarantees;
    let _ = writeln!(
        out,
        "Guarantees{}, while one-way latency <= {}, client timers and reads are late by <= {} and the server's by <= {}:",
        if report.rounded {
            " (of the rounded assumptions)"
        } else {
            ""
        },
        H(n.max_latency),
        H(n.max_timer_lateness),
        H(n.max_server_timer_lateness)
    );
    let _ = writeln!(
        out,
        "  - no missed pong while the server replies within {} and nothing has failed ({})",
        H(n.max_server_delay),
        names::NO_MISSED_PONG
    );
    let _ = writeln!(
        out,
        "  - no spurious reconnect while the server is alive, however late its pongs: it pings every {}, the \
         client tolerates {} of silence; after a cut or an overload ends, no reconnect of a connection the server still holds open once that is more than {} ago ({})",
        H(s.ping_interval),
        H(g.client_tolerance),
        H(g.heal_settle_client),
        names::NO_SPURIOUS_RECONNECT
    );
    let _ = writeln!(
        out,
        "  - no spurious close of a live client; after a cut or an overload ends, once that is more than {} ago ({})",
        H(g.heal_settle_server),
        names::NO_SPURIOUS_CLOSE
    );
    // The witness reaches the configured bound; a rounded proof prints a larger one.
    let tight = !report.rounded
        && report
            .property(names::DETECTION_BOUND_REACHED)
            .is_some_and(|p| p.status == Status::Reached);
    let _ = writeln!(
        out,
        "  - a dead server or a cut network is detected within {}{} ({})",
        H(g.detection_bound),
        if tight {
            " (tight: the model reaches it)"
        } else {
            ""
        },
        names::BOUNDED_DETECTION
    );
    let _ = writeln!(
        out,
        "  - the slow warning comes at least {} before a reconnect ({})",
        H(g.warning_lead),
        names::WARN_BEFORE_RECONNECT
    );
    let _ = writeln!(
        out,
        "  - a slow period ends within {} ({})",
        H(g.slow_bound),
        names::SLOW_IS_TRANSIENT
    );
    let _ = writeln!(
        out,
        "  - the server closes a dead client's connection within {} = idle timeout + latency + server read and timer lateness{} ({})",
        H(g.server_detection_bound),
        if n.max_server_timer_lateness > heartbeat_core::server::STALL_GRACE {
            " + stall grace + server timer lateness again (a deadline handled more than the grace late is put off once)"
        } else {
            ""
        },
        names::SERVER_CLOSES_DEAD_CLIENT
    );
    let (title, witness) = if tight {
        (
            "Worst case: a dead server, detected as late as the model allows",
            report.property(names::DETECTION_BOUND_REACHED),
        )
    } else {
        (
            "A dead server, detected (one run, not necessarily the latest)",
            report.property(names::RECONNECT_WHEN_DEAD),
        )
    };
    if let Some(t) = witness.and_then(|p| p.trace.as_ref()) {
        let _ = writeln!(out, "\n{title}:\n");
        out.push_str(&render::ascii(&render::fold_routine(t, 4)));
    }
}

#[derive(Serialize)]
struct JsonReport<'a> {
    source: &'a str,
    ok: bool,
    exit_code: i32,
    config: &'a Config,
    validation: JsonValidation,
    model_check: Option<JsonCheck>,
    guarantees_ms: Option<JsonGuarantees>,
}

#[derive(Serialize)]
struct JsonValidation {
    ok: bool,
    errors: Vec<String>,
    warnings: Vec<String>,
}

#[derive(Serialize)]
struct JsonCheck {
    /// "proven", "failed", "vacuous", "inconclusive" or "not run".
    verdict: &'static str,
    proven: bool,
    /// Which limit stopped an inconclusive search.
    limit: Option<String>,
    states: usize,
    depth: usize,
    elapsed_ms: Option<u128>,
    peak_memory_mib: Option<usize>,
    unit_ms: u128,
    /// The assumptions were rounded up onto the grid `unit_ms`; `network_checked` has them.
    rounded: bool,
    /// The exact model's time unit (the greatest common divisor of every duration).
    exact_unit_ms: u128,
    network_checked: Option<heartbeat_core::NetworkAssumptions>,
    idle_states: usize,
    /// Every search, in order (the last decided).
    searches: Vec<JsonRun>,
    properties: Vec<JsonProperty>,
    counterexample: Option<String>,
    error: Option<String>,
}

#[derive(Serialize)]
struct JsonRun {
    /// "exact", "over" (assumptions rounded up) or "corners" (extreme choices only).
    model: &'static str,
    unit_ms: u128,
    network: heartbeat_core::NetworkAssumptions,
    states: usize,
    depth: usize,
    /// "complete", "failure" or the limit.
    stop: String,
}

#[derive(Serialize)]
struct JsonProperty {
    name: &'static str,
    /// "always", "witness" (required for a proof) or "coverage" (reported only).
    kind: &'static str,
    /// "holds", "fails", "reached", "unreachable", "not checked" or "undecided".
    status: &'static str,
    /// `always` properties: true or false once decided, null when not.
    holds: Option<bool>,
    /// Actions in the counterexample or witness: least within the model of `decided_by`.
    path_len: Option<usize>,
    /// The search that decided it: "exact", "over" or "corners".
    decided_by: Option<&'static str>,
}

#[derive(Serialize)]
struct JsonGuarantees {
    rounded: bool,
    client_tolerance: u128,
    detection_bound: u128,
    warning_lead: u128,
    slow_bound: u128,
    server_detection_bound: u128,
}

fn approximation_name(a: Approximation) -> &'static str {
    match a {
        Approximation::Exact => "exact",
        Approximation::Over => "over",
        Approximation::Corners => "corners",
    }
}

fn json_check(r: &Report, timing: bool) -> JsonCheck {
    JsonCheck {
        verdict: match r.verdict {
            Verdict::Proven => "proven",
            Verdict::Failed => "failed",
            Verdict::Vacuous => "vacuous",
            Verdict::Inconclusive(_) => "inconclusive",
        },
        proven: r.proven(),
        limit: match r.verdict {
            Verdict::Inconclusive(limit) => Some(limit_text(limit)),
            _ => None,
        },
        states: r.states(),
        depth: r.runs.get(r.deciding).map_or(0, |run| run.depth),
        elapsed_ms: timing.then_some(r.elapsed().as_millis()),
        peak_memory_mib: timing.then_some(peak_memory(r).div_ceil(1 << 20)),
        unit_ms: r.unit.as_millis(),
        rounded: r.rounded,
        exact_unit_ms: r.exact_unit.as_millis(),
        network_checked: r.rounded.then_some(r.network),
        idle_states: r.idle_states,
        searches: r
            .runs
            .iter()
            .map(|run| JsonRun {
                model: approximation_name(run.approximation),
                unit_ms: run.unit.as_millis(),
                network: run.network,
                states: run.states,
                depth: run.depth,
                stop: match run.stop {
                    Stop::Complete => "complete".to_owned(),
                    Stop::Failure => "failure".to_owned(),
                    Stop::Found => "found what it looked for".to_owned(),
                    Stop::Limit(limit) => limit_text(limit),
                },
            })
            .collect(),
        properties: r
            .properties
            .iter()
            .map(|p| JsonProperty {
                name: p.name,
                kind: match p.kind {
                    Kind::Always => "always",
                    Kind::Witness => "witness",
                    Kind::Coverage => "coverage",
                },
                status: p.status.as_str(),
                holds: match (p.kind, p.status) {
                    (Kind::Always, Status::Holds) => Some(true),
                    (Kind::Always, Status::Fails) => Some(false),
                    _ => None,
                },
                path_len: p.path_len,
                decided_by: p.decided_by.map(approximation_name),
            })
            .collect(),
        counterexample: r
            .first_failure()
            .and_then(|f| f.trace.as_ref())
            .map(render::ascii),
        error: None,
    }
}

fn json_report(
    config: &Config,
    source: &str,
    validation: &heartbeat_core::Validation,
    report: &Result<Report, CheckError>,
    timing: bool,
) -> String {
    let model_check = Some(match report {
        Ok(r) => json_check(r, timing),
        Err(e) => JsonCheck {
            verdict: "not run",
            proven: false,
            limit: None,
            states: 0,
            depth: 0,
            elapsed_ms: None,
            peak_memory_mib: None,
            unit_ms: 0,
            rounded: false,
            exact_unit_ms: 0,
            network_checked: None,
            idle_states: 0,
            searches: Vec::new(),
            properties: Vec::new(),
            counterexample: None,
            error: Some(e.to_string()),
        },
    });
    let proven = report.as_ref().ok().filter(|r| r.proven());
    let exit_code = exit_code(validation.is_ok(), report);
    let json = JsonReport {
        source,
        ok: exit_code == 0,
        exit_code,
        config,
        validation: JsonValidation {
            ok: validation.is_ok(),
            errors: validation.errors.iter().map(ToString::to_string).collect(),
            warnings: validation
                .warnings
                .iter()
                .map(ToString::to_string)
                .collect(),
        },
        model_check,
        guarantees_ms: proven.map(|r| {
            let g = &r.guarantees;
            JsonGuarantees {
                rounded: r.rounded,
                client_tolerance: g.client_tolerance.as_millis(),
                detection_bound: g.detection_bound.as_millis(),
                warning_lead: g.warning_lead.as_millis(),
                slow_bound: g.slow_bound.as_millis(),
                server_detection_bound: g.server_detection_bound.as_millis(),
            }
        }),
    };
    serde_json::to_string_pretty(&json).unwrap_or_default() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A vacuous proof says so, names the witness, and exits 1.
    #[test]
    fn a_vacuous_report_says_why_and_exits_one() {
        let config = Config::default();
        let mut report = check::check(&config, CheckOptions::default()).unwrap();
        report.verdict = Verdict::Vacuous;
        for p in &mut report.properties {
            if p.name == names::SLOW_REACHED {
                p.status = Status::Unreachable;
            }
        }
        let mut out = String::new();
        model_check_text(&mut out, &report, false);
        assert!(out.contains("Model check: VACUOUS"), "{out}");
        assert!(
            out.contains("sometimes-slow cannot happen in this model"),
            "{out}"
        );
        assert!(out.contains("UNREACHABLE  sometimes-slow\n"), "{out}");
        assert_eq!(exit_code(true, &Ok(report)), 1);
    }

    /// Inconclusive is 3, never 0; a broken rule is 1 whatever the search did.
    #[test]
    fn exit_codes() {
        let config = Config::default();
        let mut report = check::check(&config, CheckOptions::default()).unwrap();
        assert_eq!(exit_code(true, &Ok(report.clone())), 0);
        assert_eq!(exit_code(false, &Ok(report.clone())), 1);
        report.verdict = Verdict::Inconclusive(Limit::States(1));
        assert_eq!(exit_code(true, &Ok(report.clone())), 3);
        assert_eq!(exit_code(false, &Ok(report.clone())), 1);
        report.verdict = Verdict::Failed;
        assert_eq!(exit_code(true, &Ok(report)), 1);
    }
}
