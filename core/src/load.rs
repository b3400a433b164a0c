//! Configuration from text (YAML, TOML, JSON) and from environment-style overrides, shared by
//! the CLI and every adapter. Pure: the caller reads files and the environment and passes the
//! text and the pairs in.
//!
//! Two layouts are accepted: this crate's own (`client:`, `server:`, `network:` sections, as
//! [`Config`] serializes), and the story's (`websocket.frontend.*` / `websocket.backend.*` with
//! `*_seconds` fields), so a team can point the tools at the config it already has.

use std::borrow::ToOwned;
use std::string::{String, ToString};
use std::time::Duration;

use serde::Deserialize;

use crate::config::{ClientConfig, Config, ServerConfig};

/// The prefix of environment overrides: `HEARTBEAT_CLIENT__PING_INTERVAL=15s`.
pub const ENV_PREFIX: &str = "HEARTBEAT_";

/// A text format of configuration files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `.yaml` / `.yml`
    Yaml,
    /// `.toml`
    Toml,
    /// `.json`
    Json,
}

impl Format {
    /// The format a file name's extension names.
    #[must_use]
    pub fn from_path(path: &str) -> Option<Format> {
        let ext = path.rsplit_once('.')?.1.to_ascii_lowercase();
        match ext.as_str() {
            "yaml" | "yml" => Some(Format::Yaml),
            "toml" => Some(Format::Toml),
            "json" => Some(Format::Json),
            _ => None,
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::Yaml => "YAML",
            Format::Toml => "TOML",
            Format::Json => "JSON",
        })
    }
}

/// Why configuration text or an override could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The file name has no known extension.
    #[error("cannot tell the format of {path:?}: use a .yaml, .yml, .toml or .json file")]
    UnknownFormat {
        /// The path given.
        path: String,
    },
    /// The text does not parse, or names an unknown key or a bad value.
    #[error("{format} error at line {line}, column {column}: {message}")]
    Parse {
        /// The format.
        format: Format,
        /// 1-based line (0 when the parser gave none).
        line: usize,
        /// 1-based column (0 when the parser gave none).
        column: usize,
        /// The parser's words.
        message: String,
    },
    /// A value of the story's layout is no duration in seconds (NaN, negative, too large).
    #[error("{field} = {value}: must be a finite, non-negative number of seconds ({message})")]
    BadSeconds {
        /// The field, e.g. `websocket.frontend.ping_interval_seconds`.
        field: &'static str,
        /// The value as read.
        value: f64,
        /// What is wrong.
        message: &'static str,
    },
    /// An override names a setting that does not exist.
    #[error("{var}: no such setting (HEARTBEAT_<CLIENT|SERVER|NETWORK>__<FIELD> with a field of that section, e.g. HEARTBEAT_CLIENT__PING_INTERVAL)")]
    UnknownOverride {
        /// The variable's name.
        var: String,
    },
    /// An override's value does not fit its setting.
    #[error("{var}={value:?}: {message}")]
    BadOverride {
        /// The variable's name.
        var: String,
        /// Its value.
        value: String,
        /// What is wrong.
        message: String,
    },
}

/// The story's layout: `websocket.frontend.*` and `websocket.backend.*`.
#[derive(Deserialize)]
struct StoryFile {
    websocket: StoryWebsocket,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StoryWebsocket {
    #[serde(default)]
    frontend: StoryFrontend,
    #[serde(default)]
    backend: StoryBackend,
    #[serde(default)]
    network: Option<crate::config::NetworkAssumptions>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct StoryFrontend {
    ping_interval_seconds: Option<f64>,
    pong_timeout_seconds: Option<f64>,
    max_missed_pongs: Option<u32>,
    slow_connection_threshold: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct StoryBackend {
    ping_interval_seconds: Option<f64>,
    pong_timeout_seconds: Option<f64>,
    heartbeat_timeout_seconds: Option<f64>,
}

/// The story's seconds as a duration; NaN, negatives and values past `Duration` are errors that
/// name the field (they used to become zero and fail validation with the wrong reason).
fn secs(field: &'static str, value: f64) -> Result<Duration, LoadError> {
    let message = if value.is_nan() {
        "it is not a number"
    } else if value < 0.0 {
        "it is negative"
    } else {
        return Duration::try_from_secs_f64(value).map_err(|_| LoadError::BadSeconds {
            field,
            value,
            message: "it is too large",
        });
    };
    Err(LoadError::BadSeconds {
        field,
        value,
        message,
    })
}

impl StoryFile {
    /// Maps the story's fields onto ours (see docs/configuration.md for the mapping).
    fn into_config(self) -> Result<Config, LoadError> {
        let (fe, be) = (self.websocket.frontend, self.websocket.backend);
        let mut client = ClientConfig::default();
        if let Some(v) = fe.ping_interval_seconds {
            client.ping_interval = secs("websocket.frontend.ping_interval_seconds", v)?;
            // The story's frontend waits one full interval for each pong.
            client.pong_timeout = client.ping_interval;
        }
        if let Some(v) = fe.pong_timeout_seconds {
            client.pong_timeout = secs("websocket.frontend.pong_timeout_seconds", v)?;
        }
        if let Some(v) = fe.max_missed_pongs {
            client.max_missed_pongs = v;
        }
        if let Some(v) = fe.slow_connection_threshold {
            client.slow_threshold = v;
        }
        let mut server = ServerConfig::default();
        if let Some(v) = be.ping_interval_seconds {
            server.ping_interval = secs("websocket.backend.ping_interval_seconds", v)?;
        }
        // A protocol-level pong timeout closes a silent peer one ping interval plus that
        // timeout after the last read: our idle timeout.
        if let Some(v) = be.pong_timeout_seconds {
            let timeout = secs("websocket.backend.pong_timeout_seconds", v)?;
            server.idle_timeout = server.ping_interval.saturating_add(timeout);
        }
        if let Some(v) = be.heartbeat_timeout_seconds {
            server.idle_timeout = secs("websocket.backend.heartbeat_timeout_seconds", v)?;
        }
        Ok(Config {
            client,
            server,
            network: self.websocket.network.unwrap_or_default(),
        })
    }
}

/// Parses configuration text in either layout. Missing fields take their defaults; unknown
/// fields are errors.
///
/// # Errors
/// [`LoadError::Parse`] with the line and column of the problem.
pub fn parse(text: &str, format: Format) -> Result<Config, LoadError> {
    let value: serde_json::Value = match format {
        Format::Yaml => serde_yaml_ng::from_str(text).map_err(|e| yaml_error(&e))?,
        Format::Toml => toml::from_str(text).map_err(|e| toml_error(text, &e))?,
        Format::Json => serde_json::from_str(text).map_err(|e| json_error(&e))?,
    };
    let story = value.get("websocket").is_some();
    // Deserialize from the text again (not the Value) so that errors keep their position.
    macro_rules! typed {
        ($t:ty) => {
            match format {
                Format::Yaml => serde_yaml_ng::from_str::<$t>(text).map_err(|e| yaml_error(&e)),
                Format::Toml => toml::from_str::<$t>(text).map_err(|e| toml_error(text, &e)),
                Format::Json => serde_json::from_str::<$t>(text).map_err(|e| json_error(&e)),
            }
        };
    }
    if value.is_null() {
        return Ok(Config::default());
    }
    if story {
        typed!(StoryFile)?.into_config()
    } else {
        typed!(Config)
    }
}

fn yaml_error(e: &serde_yaml_ng::Error) -> LoadError {
    let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
    LoadError::Parse {
        format: Format::Yaml,
        line,
        column,
        message: strip_position(&e.to_string()),
    }
}

fn json_error(e: &serde_json::Error) -> LoadError {
    LoadError::Parse {
        format: Format::Json,
        line: e.line(),
        column: e.column(),
        message: strip_position(&e.to_string()),
    }
}

fn toml_error(text: &str, e: &toml::de::Error) -> LoadError {
    let (line, column) = e.span().map_or((0, 0), |span| {
        let before = &text[..span.start.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, column)
    });
    LoadError::Parse {
        format: Format::Toml,
        line,
        column,
        message: e.message().to_owned(),
    }
}

/// Parsers append " at line X column Y"; we report the position in fields of our own.
fn strip_position(message: &str) -> String {
    message
        .find(" at line ")
        .map_or(message, |i| &message[..i])
        .to_owned()
}

/// Applies `HEARTBEAT_<CLIENT|SERVER|NETWORK>__<FIELD>=value` overrides; other variables,
/// including other `HEARTBEAT_*` ones, are ignored.
///
/// Pass `std::env::vars()` in production. Durations take the same text as files (`15s`).
///
/// # Errors
/// [`LoadError::UnknownOverride`] for a variable of one of our sections that names no setting,
/// [`LoadError::BadOverride`] for a value that does not fit.
///
/// Returns how many overrides were applied.
pub fn apply_overrides<I, K, V>(config: &mut Config, vars: I) -> Result<usize, LoadError>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: AsRef<str>,
{
    let mut tree = serde_json::to_value(*config).map_err(|e| LoadError::BadOverride {
        var: String::new(),
        value: String::new(),
        message: e.to_string(),
    })?;
    let mut vars: std::vec::Vec<(String, String)> = vars
        .into_iter()
        .filter(|(k, _)| k.as_ref().starts_with(ENV_PREFIX))
        .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned()))
        .collect();
    // The environment's order is arbitrary; apply in a fixed one so errors are reproducible.
    vars.sort();
    let mut applied = 0;
    for (var, value) in vars {
        let path = var[ENV_PREFIX.len()..].to_ascii_lowercase();
        // Only HEARTBEAT_<CLIENT|SERVER|NETWORK>__<FIELD> is ours: other tools may use the
        // prefix for their own variables. A misspelt field in one of our sections is an error.
        let Some((section, field)) = path.split_once("__") else {
            continue;
        };
        if !["client", "server", "network"].contains(&section) {
            continue;
        }
        let Some(slot) = tree.get_mut(section).and_then(|s| s.get_mut(field)) else {
            return Err(LoadError::UnknownOverride { var });
        };
        *slot = if slot.is_number() {
            let n: u32 = value.trim().parse().map_err(|_| LoadError::BadOverride {
                var: var.clone(),
                value: value.clone(),
                message: "expected a whole number".into(),
            })?;
            n.into()
        } else {
            value.clone().into()
        };
        *config = serde_json::from_value(tree.clone()).map_err(|e| LoadError::BadOverride {
            var: var.clone(),
            value: value.clone(),
            message: e.to_string(),
        })?;
        applied += 1;
    }
    Ok(applied)
}

/// The one way every tool builds its configuration: the text of a configuration file (named by
/// its path, which tells the format) or, without one, the defaults; then the environment's
/// overrides. The caller reads the file and the environment.
///
/// Returns the configuration and how many overrides were applied. It is not validated.
///
/// # Errors
/// A parse error (with line and column) or a bad override; tell them apart with
/// [`LoadError::is_override`].
pub fn resolve<I, K, V>(file: Option<(&str, &str)>, env: I) -> Result<(Config, usize), LoadError>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: AsRef<str>,
{
    let mut config = match file {
        Some((path, text)) => parse_named(path, text)?,
        None => Config::default(),
    };
    let applied = apply_overrides(&mut config, env)?;
    Ok((config, applied))
}

impl LoadError {
    /// True when an environment override, not the file, is at fault.
    #[must_use]
    pub fn is_override(&self) -> bool {
        matches!(
            self,
            LoadError::UnknownOverride { .. } | LoadError::BadOverride { .. }
        )
    }
}

/// Reads nothing itself: parses `text` whose format is told by `path`'s extension.
///
/// # Errors
/// [`LoadError::UnknownFormat`] or a parse error.
pub fn parse_named(path: &str, text: &str) -> Result<Config, LoadError> {
    let format = Format::from_path(path).ok_or_else(|| LoadError::UnknownFormat {
        path: path.to_string(),
    })?;
    parse(text, format)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;
    use std::vec;

    #[test]
    fn own_layout_in_three_formats() {
        let yaml =
            "client:\n  ping_interval: 20s\n  pong_timeout: 1500ms\nserver:\n  idle_timeout: 2m\n";
        let toml = "[client]\nping_interval = \"20s\"\npong_timeout = \"1500ms\"\n[server]\nidle_timeout = \"2m\"\n";
        let json = r#"{"client":{"ping_interval":"20s","pong_timeout":"1500ms"},"server":{"idle_timeout":"2m"}}"#;
        for (text, f) in [
            (yaml, Format::Yaml),
            (toml, Format::Toml),
            (json, Format::Json),
        ] {
            let c = parse(text, f).unwrap();
            assert_eq!(c.client.ping_interval, Duration::from_secs(20), "{f}");
            assert_eq!(c.client.pong_timeout, Duration::from_millis(1500), "{f}");
            assert_eq!(c.server.idle_timeout, Duration::from_secs(120), "{f}");
            assert_eq!(c.network, Config::default().network, "{f}");
        }
    }

    /// NaN, negative and huge seconds in the story's layout are load errors naming the field
    /// (they used to become zero and be reported as "must be greater than zero").
    #[test]
    fn story_seconds_that_are_no_duration_are_errors() {
        for (value, why) in [
            (".nan", "not a number"),
            ("-30", "negative"),
            ("1e300", "too large"),
        ] {
            let yaml = format!("websocket:\n  frontend:\n    ping_interval_seconds: {value}\n");
            let e = parse(&yaml, Format::Yaml).unwrap_err();
            let text = e.to_string();
            assert!(
                text.contains("websocket.frontend.ping_interval_seconds") && text.contains(why),
                "{value}: {text}"
            );
        }
        let e = parse(
            "websocket:\n  backend:\n    heartbeat_timeout_seconds: -1\n",
            Format::Yaml,
        )
        .unwrap_err();
        assert!(e.to_string().contains("heartbeat_timeout_seconds"), "{e}");
    }

    #[test]
    fn story_layout_maps_onto_ours() {
        let yaml = "websocket:\n  frontend:\n    ping_interval_seconds: 15\n    max_missed_pongs: 4\n    slow_connection_threshold: 2\n  backend:\n    ping_interval_seconds: 30\n    pong_timeout_seconds: 5\n";
        let c = parse(yaml, Format::Yaml).unwrap();
        assert_eq!(c.client.ping_interval, Duration::from_secs(15));
        assert_eq!(c.client.pong_timeout, Duration::from_secs(15));
        assert_eq!((c.client.max_missed_pongs, c.client.slow_threshold), (4, 2));
        assert_eq!(c.server.ping_interval, Duration::from_secs(30));
        assert_eq!(c.server.idle_timeout, Duration::from_secs(35));
    }

    #[test]
    fn errors_carry_line_and_column() {
        let err = parse("client:\n  ping_intervl: 20s\n", Format::Yaml).unwrap_err();
        assert!(matches!(err, LoadError::Parse { line: 2, .. }), "{err}");
        let err = parse("[client]\nping_interval = \"20x\"\n", Format::Toml).unwrap_err();
        assert!(matches!(err, LoadError::Parse { line: 2, .. }), "{err}");
        let err = parse("{\"client\": {\"slow_threshold\": -1}}", Format::Json).unwrap_err();
        assert!(matches!(err, LoadError::Parse { line: 1, .. }), "{err}");
    }

    #[test]
    fn overrides_apply_and_reject_unknown_keys() {
        let mut c = Config::default();
        let vars = vec![
            ("HEARTBEAT_CLIENT__PING_INTERVAL", "12s"),
            ("HEARTBEAT_SERVER__MAX_PING_STRIKES", "5"),
            ("PATH", "/usr/bin"),
        ];
        assert_eq!(apply_overrides(&mut c, vars).unwrap(), 2);
        assert_eq!(c.client.ping_interval, Duration::from_secs(12));
        assert_eq!(c.server.max_ping_strikes, 5);
        let err = apply_overrides(&mut c, [("HEARTBEAT_CLIENT__PING", "1s")]).unwrap_err();
        assert!(matches!(err, LoadError::UnknownOverride { .. }));
        // Other tools' variables with the prefix are not ours.
        let before = c;
        apply_overrides(
            &mut c,
            [("HEARTBEAT_TOOLS", "/opt"), ("HEARTBEAT_CI__X", "1")],
        )
        .unwrap();
        assert_eq!(c, before);
        let err =
            apply_overrides(&mut c, [("HEARTBEAT_CLIENT__PING_INTERVAL", "soon")]).unwrap_err();
        assert!(matches!(err, LoadError::BadOverride { .. }), "{err}");
    }

    #[test]
    fn resolve_reads_the_file_then_the_environment() {
        let file = Some(("app.toml", "[client]\nping_interval = \"20s\"\n"));
        let (c, n) = resolve(file, [("HEARTBEAT_CLIENT__PING_INTERVAL", "12s")]).unwrap();
        assert_eq!(
            (c.client.ping_interval, n),
            (Duration::from_secs(12), 1),
            "the environment wins"
        );
        let (c, n) = resolve(None, std::iter::empty::<(&str, &str)>()).unwrap();
        assert_eq!((c, n), (Config::default(), 0));
        let err = resolve(Some(("app.ini", "")), std::iter::empty::<(&str, &str)>()).unwrap_err();
        assert!(!err.is_override(), "{err}");
        let err = resolve(None, [("HEARTBEAT_SERVER__IDLE", "1s")]).unwrap_err();
        assert!(err.is_override(), "{err}");
    }
}
