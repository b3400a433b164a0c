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

use crate::check::{self, names, CheckError, CheckOptions, Report};
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
    Check {
        /// A YAML, TOML or JSON file (ours or the story's `websocket.frontend/backend` layout).
        /// Without it, the embedded default configuration. HEARTBEAT_<SECTION>__<FIELD>
        /// environment variables override either.
        config: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Also explore runs with two faults (an overload followed by a death or a cut).
        #[arg(long)]
        combined_faults: bool,
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
    /// The file or an override does not parse.
    #[error("{path}: {source}")]
    Load {
        /// The path, or "environment".
        path: String,
        /// Why.
        source: LoadError,
    },
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
        Some(p) => Some(
            std::fs::read_to_string(p).map_err(|source| InputError::Read {
                path: p.display().to_string(),
                source,
            })?,
        ),
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
    let source = shown.unwrap_or_else(|| "the embedded default configuration".to_owned());
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
    /// 0: everything holds; 1: a rule or a property fails.
    pub exit_code: i32,
}

/// Validates and model-checks `config`; `timing` false leaves wall times out (for snapshots).
#[must_use]
pub fn run_check(
    config: &Config,
    source: &str,
    format: Format,
    combined_faults: bool,
    timing: bool,
) -> CheckOutcome {
    let validation = config.validate();
    let options = CheckOptions {
        progress: Some(|states, elapsed| {
            let rate = states as f64 / elapsed.as_secs_f64().max(1e-9);
            eprintln!("heartbeat check: {states} states explored, {rate:.0} states/s");
        }),
        ..CheckOptions::default()
    };
    let report = check::check_with(config, options, combined_faults);
    let ok = validation.is_ok() && report.as_ref().is_ok_and(Report::proven);
    let output = match format {
        Format::Text => text_report(config, source, &validation, &report, timing),
        Format::Json => json_report(config, source, &validation, &report, timing),
    };
    CheckOutcome {
        output,
        exit_code: if ok { 0 } else { 1 },
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
        "  assumed: one-way latency <= {}, server reply delay <= {} under normal load, client timers late <= {}\n",
        H(n.max_latency),
        H(n.max_server_delay),
        H(n.max_timer_lateness)
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
    let time = if timing {
        format!(", {:.2} s", report.elapsed.as_secs_f64())
    } else {
        String::new()
    };
    let verdict = if report.proven() { "proven" } else { "FAILED" };
    let _ =
        writeln!(
        out,
        "Model check: {verdict} ({} states{time}, time unit {}, every reachable state visited: {})",
        report.states,
        H(report.unit),
        if report.proven() { "yes" } else { "stopped at the first failure" }
    );
    for p in &report.properties {
        let mark = match (p.sometimes, p.holds, report.proven()) {
            (false, true, _) => "holds",
            (false, false, _) => "FAILS",
            (true, true, _) => "reached",
            (true, false, true) => "unreachable",
            (true, false, false) => "not seen",
        };
        let _ = writeln!(out, "  {mark:<12} {}", p.name);
    }
    out.push('\n');
    if let Some(failure) = report.first_failure() {
        let _ = writeln!(out, "Shortest counterexample ({}):\n", failure.name);
        if let Some(t) = &failure.trace {
            out.push_str(&render::ascii(t));
        }
        return out;
    }
    let g = config.guarantees();
    let _ = writeln!(
        out,
        "Guarantees, while one-way latency <= {} and client timers are late by <= {}:",
        H(n.max_latency),
        H(n.max_timer_lateness)
    );
    let _ = writeln!(
        out,
        "  - no missed pong while the server replies within {} ({})",
        H(n.max_server_delay),
        names::NO_MISSED_PONG
    );
    let _ = writeln!(
        out,
        "  - no spurious reconnect while the server is alive, however late its pongs: it pings every {}, the \
         client tolerates {} of silence ({})",
        H(s.ping_interval),
        H(g.client_tolerance),
        names::NO_SPURIOUS_RECONNECT
    );
    let _ = writeln!(
        out,
        "  - no spurious close of a live client ({})",
        names::NO_SPURIOUS_CLOSE
    );
    let tight = report
        .property(names::DETECTION_BOUND_REACHED)
        .is_some_and(|p| p.holds);
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
        "  - the server closes a dead client's connection within {} (idle timeout + latency)",
        H(g.server_detection_bound)
    );
    let worst = report
        .property(names::DETECTION_BOUND_REACHED)
        .or_else(|| report.property(names::RECONNECT_WHEN_DEAD));
    if let Some(t) = worst.and_then(|p| p.trace.as_ref()) {
        let _ = writeln!(
            out,
            "\nWorst case: a dead server, detected as late as the model allows:\n"
        );
        out.push_str(&render::ascii(&render::fold_routine(t, 4)));
    }
    out
}

#[derive(Serialize)]
struct JsonReport<'a> {
    source: &'a str,
    ok: bool,
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
    proven: bool,
    states: usize,
    elapsed_ms: Option<u128>,
    unit_ms: u128,
    properties: Vec<JsonProperty>,
    counterexample: Option<String>,
    error: Option<String>,
}

#[derive(Serialize)]
struct JsonProperty {
    name: &'static str,
    kind: &'static str,
    holds: bool,
}

#[derive(Serialize)]
struct JsonGuarantees {
    client_tolerance: u128,
    detection_bound: u128,
    warning_lead: u128,
    slow_bound: u128,
    server_detection_bound: u128,
}

fn json_report(
    config: &Config,
    source: &str,
    validation: &heartbeat_core::Validation,
    report: &Result<Report, CheckError>,
    timing: bool,
) -> String {
    let model_check = Some(match report {
        Ok(r) => JsonCheck {
            proven: r.proven(),
            states: r.states,
            elapsed_ms: timing.then_some(r.elapsed.as_millis()),
            unit_ms: r.unit.as_millis(),
            properties: r
                .properties
                .iter()
                .map(|p| JsonProperty {
                    name: p.name,
                    kind: if p.sometimes { "sometimes" } else { "always" },
                    holds: p.holds,
                })
                .collect(),
            counterexample: r
                .first_failure()
                .and_then(|f| f.trace.as_ref())
                .map(render::ascii),
            error: None,
        },
        Err(e) => JsonCheck {
            proven: false,
            states: 0,
            elapsed_ms: None,
            unit_ms: 0,
            properties: Vec::new(),
            counterexample: None,
            error: Some(e.to_string()),
        },
    });
    let proven = report.as_ref().is_ok_and(Report::proven);
    let g = config.guarantees();
    let json = JsonReport {
        source,
        ok: validation.is_ok() && proven,
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
        guarantees_ms: proven.then_some(JsonGuarantees {
            client_tolerance: g.client_tolerance.as_millis(),
            detection_bound: g.detection_bound.as_millis(),
            warning_lead: g.warning_lead.as_millis(),
            slow_bound: g.slow_bound.as_millis(),
            server_detection_bound: g.server_detection_bound.as_millis(),
        }),
    };
    serde_json::to_string_pretty(&json).unwrap_or_default() + "\n"
}
