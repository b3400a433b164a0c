//! Configuration from text (YAML, TOML, JSON) and from environment-style overrides, shared by
//! the CLI and every adapter. Pure: the caller reads files and the environment and passes the
//! text and the pairs in.
//!
//! Two layouts are accepted: this crate's own (`client:`, `server:`, `network:` sections, as
//! [`Config`] serializes), and the story's (`websocket.frontend.*` / `websocket.backend.*` with
//! `*_seconds` fields), so a team can point the tools at the config it already has.

use std::borrow::ToOwned;
use std::format;
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
    #[error("{format} error{}: {message}", position(*line, *column))]
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
    /// YAML flow collections nest deeper than [`MAX_YAML_FLOW_DEPTH`]; found before parsing.
    #[error("{format} error at line {line}, column {column}: [ and {{ nested more than {limit} deep (a configuration needs two or three levels)")]
    TooDeep {
        /// The format.
        format: Format,
        /// 1-based line of the bracket that goes one level too deep.
        line: usize,
        /// 1-based column of that bracket.
        column: usize,
        /// The limit, [`MAX_YAML_FLOW_DEPTH`].
        limit: usize,
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

/// " at line L, column C", or nothing when the parser gave no position.
fn position(line: usize, column: usize) -> String {
    if line == 0 {
        String::new()
    } else {
        format!(" at line {line}, column {column}")
    }
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
/// [`LoadError::Parse`] with the line and column of the problem; [`LoadError::TooDeep`] for YAML
/// nested deeper than [`MAX_YAML_FLOW_DEPTH`] (JSON and TOML parsers stop at their own recursion
/// limits in linear time).
pub fn parse(text: &str, format: Format) -> Result<Config, LoadError> {
    if format == Format::Yaml {
        if let Some((line, column)) = yaml_flow_too_deep(text, MAX_YAML_FLOW_DEPTH) {
            return Err(LoadError::TooDeep {
                format,
                line,
                column,
                limit: MAX_YAML_FLOW_DEPTH,
            });
        }
    }
    // Which layout: a first look that accepts any value under any key (a full tree of the
    // document would refuse numbers it cannot hold and blame the wrong thing).
    let probe = match format {
        Format::Yaml => serde_yaml_ng::from_str::<Option<Probe>>(text).map_err(drop),
        Format::Toml => toml::from_str::<Probe>(text).map(Some).map_err(drop),
        Format::Json => serde_json::from_str::<Option<Probe>>(text).map_err(drop),
    };
    let story = match probe {
        // An empty document (or `null`): the defaults.
        Ok(None) => return Ok(Config::default()),
        Ok(Some(p)) => p.websocket,
        // The typed pass below reports the error with its position.
        Err(()) => false,
    };
    // Deserialize from the text (not a tree) so that errors keep their position.
    macro_rules! typed {
        ($t:ty) => {
            match format {
                Format::Yaml => serde_yaml_ng::from_str::<$t>(text).map_err(|e| yaml_error(&e)),
                Format::Toml => toml::from_str::<$t>(text)
                    .map_err(|e| name_field(text, format, story, toml_error(text, &e))),
                Format::Json => serde_json::from_str::<$t>(text)
                    .map_err(|e| name_field(text, format, story, json_error(&e))),
            }
        };
    }
    if story {
        typed!(StoryFile)?.into_config()
    } else {
        typed!(Config)
    }
}

/// The first look at a file: is it in the story's layout?
#[derive(Deserialize)]
struct Probe {
    #[serde(default, deserialize_with = "present")]
    websocket: bool,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(d).map(|_| true)
}

/// YAML's messages name the field (`client.ping_interval: ...`); TOML's and JSON's give only a
/// position. Finds the setting at fault by reading each one alone, and names it the same way.
fn name_field(text: &str, format: Format, story: bool, error: LoadError) -> LoadError {
    let LoadError::Parse {
        format: f,
        line,
        column,
        message,
    } = error
    else {
        return error;
    };
    let tree: Option<serde_json::Value> = match format {
        Format::Toml => toml::from_str(text).ok(),
        Format::Json => serde_json::from_str(text).ok(),
        Format::Yaml => None,
    };
    let field = tree
        .and_then(|tree| failing_field(&tree, story, &message))
        .or_else(|| {
            (format == Format::Toml)
                .then(|| toml_key_at(text, line))
                .flatten()
        });
    LoadError::Parse {
        format: f,
        line,
        column,
        message: match field {
            Some(field) => format!("{field}: {message}"),
            None => message,
        },
    }
}

/// The dotted key set on 1-based `line` of TOML text, under the nearest `[table]` above it: for
/// errors the document tree cannot show (a number TOML cannot hold, a NaN).
fn toml_key_at(text: &str, line: usize) -> Option<String> {
    let lines: std::vec::Vec<&str> = text.lines().take(line).collect();
    let (key, _) = lines.get(line.checked_sub(1)?)?.split_once('=')?;
    let key = key.trim();
    let table = lines
        .iter()
        .rev()
        .map(|l| l.trim())
        .find(|l| l.starts_with('[') && !l.starts_with("[["))
        .and_then(|l| l.strip_prefix('[')?.split(']').next());
    Some(match table {
        Some(table) => format!("{}.{key}", table.trim()),
        None => key.to_owned(),
    })
}

/// The setting (`section.field`, or a whole section) that does not deserialize on its own,
/// preferring the one whose error reads as `message`.
fn failing_field(tree: &serde_json::Value, story: bool, message: &str) -> Option<String> {
    use serde_json::{json, Value};
    let (root, prefix, sections) = if story {
        (
            tree.get("websocket")?,
            "websocket.",
            ["frontend", "backend", "network"],
        )
    } else {
        (tree, "", ["client", "server", "network"])
    };
    let fails = |section: &str, one: Value| -> Option<String> {
        let one = json!({ section: one });
        if story {
            serde_json::from_value::<StoryFile>(json!({ "websocket": one }))
                .err()
                .map(|e| e.to_string())
        } else {
            serde_json::from_value::<Config>(one)
                .err()
                .map(|e| e.to_string())
        }
    };
    let mut first = None;
    for section in sections {
        let Some(value) = root.get(section) else {
            continue;
        };
        let candidates: std::vec::Vec<(String, Value)> = match value {
            Value::Object(fields) => fields
                .iter()
                .map(|(k, v)| (format!("{prefix}{section}.{k}"), json!({ k: v })))
                .collect(),
            other => std::vec![(format!("{prefix}{section}"), other.clone())],
        };
        for (name, one) in candidates {
            if let Some(e) = fails(section, one) {
                if strip_position(&e) == message {
                    return Some(name);
                }
                first.get_or_insert(name);
            }
        }
    }
    first
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

/// The deepest nesting of YAML flow collections (`[` and `{`) a file may have. A configuration
/// needs two or three levels; the YAML parser's time grows with the square of this depth (a
/// 400 KB file of `[[[[...` took minutes), so deeper text is refused before it is parsed.
pub const MAX_YAML_FLOW_DEPTH: usize = 64;

/// Where YAML flow collections first nest deeper than `limit`, as (line, column), both 1-based;
/// `None` when they never do.
///
/// One pass over the text that follows libyaml's scanner (the parser under serde_yaml_ng) far
/// enough to know where it sees a `[`, `{`, `]` or `}` token: comments, quoted, plain and block
/// scalars, tags, anchors, document markers and the block indentation that decides where a plain
/// or block scalar ends. Wherever the two could disagree, the parser stops with an error at or
/// before that point, which bounds its work as well. The `config` fuzz target checks the depth
/// against libyaml's own tokens.
#[must_use]
pub fn yaml_flow_too_deep(text: &str, limit: usize) -> Option<(usize, usize)> {
    YamlScan::new(text.as_bytes()).run(limit)
}

/// The little of libyaml's scanner state the flow depth depends on.
struct YamlScan<'a> {
    b: &'a [u8],
    /// Byte offset.
    i: usize,
    /// 0-based line and column (in characters), and the character offset, as libyaml counts.
    line: usize,
    col: usize,
    chars: usize,
    flow: usize,
    /// Block indentation (-1 at the top) and the enclosing ones.
    indent: isize,
    indents: std::vec::Vec<isize>,
    /// libyaml's `simple_key_allowed`.
    allowed: bool,
    /// The possible simple key in block context: its line, character offset and column.
    key: Option<(usize, usize, usize)>,
}

impl<'a> YamlScan<'a> {
    fn new(b: &'a [u8]) -> Self {
        YamlScan {
            b,
            i: 0,
            line: 0,
            col: 0,
            chars: 0,
            flow: 0,
            indent: -1,
            indents: std::vec::Vec::new(),
            allowed: true,
            key: None,
        }
    }

    fn at(&self, k: usize) -> u8 {
        self.b.get(self.i + k).copied().unwrap_or(0)
    }

    fn eof(&self) -> bool {
        self.i >= self.b.len()
    }

    /// The length in bytes of a line break at `i + k` (CR LF, CR, LF, NEL, LS, PS), else 0.
    fn brk(&self, k: usize) -> usize {
        match (self.at(k), self.at(k + 1), self.at(k + 2)) {
            (b'\r', b'\n', _) => 2,
            (b'\r' | b'\n', _, _) => 1,
            (0xC2, 0x85, _) => 2,
            (0xE2, 0x80, 0xA8 | 0xA9) => 3,
            _ => 0,
        }
    }

    fn blank(&self, k: usize) -> bool {
        matches!(self.at(k), b' ' | b'\t')
    }

    fn blankz(&self, k: usize) -> bool {
        self.blank(k) || self.brk(k) > 0 || self.i + k >= self.b.len()
    }

    /// Moves past one character (a line break, CR LF included, is one).
    fn advance(&mut self) {
        let n = self.brk(0);
        if n > 0 {
            self.i += n;
            self.chars += if self.at(0) == b'\r' && n == 2 { 2 } else { 1 };
            self.line += 1;
            self.col = 0;
            return;
        }
        let len = match self.at(0) {
            0x00..=0x7F => 1,
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            _ => 4,
        };
        self.i = (self.i + len).min(self.b.len());
        self.chars += 1;
        self.col += 1;
    }

    fn document_marker(&self) -> bool {
        self.col == 0
            && (self.b[self.i..].starts_with(b"---") || self.b[self.i..].starts_with(b"..."))
            && self.blankz(3)
    }

    fn roll(&mut self, column: usize) {
        let column = column as isize;
        if self.flow == 0 && self.indent < column {
            self.indents.push(self.indent);
            self.indent = column;
        }
    }

    fn unroll(&mut self, column: isize) {
        if self.flow == 0 {
            while self.indent > column {
                self.indent = self.indents.pop().unwrap_or(-1);
            }
        }
    }

    fn save_key(&mut self) {
        if self.allowed && self.flow == 0 {
            self.key = Some((self.line, self.chars, self.col));
        }
    }

    fn run(mut self, limit: usize) -> Option<(usize, usize)> {
        loop {
            // Whitespace, comments and line breaks between tokens; a byte order mark at the
            // start of any line counts as a character of its own, as libyaml skips it.
            loop {
                if self.col == 0 && self.b[self.i..].starts_with(&[0xEF, 0xBB, 0xBF]) {
                    self.advance();
                }
                while self.at(0) == b' '
                    || (self.at(0) == b'\t' && (self.flow > 0 || !self.allowed))
                {
                    self.advance();
                }
                if self.at(0) == b'#' {
                    while self.brk(0) == 0 && !self.eof() {
                        self.advance();
                    }
                }
                if self.brk(0) == 0 {
                    break;
                }
                self.advance();
                if self.flow == 0 {
                    self.allowed = true;
                }
            }
            if self.eof() {
                return None;
            }
            if let Some((line, chars, _)) = self.key {
                if line < self.line || chars + 1024 < self.chars {
                    self.key = None;
                }
            }
            self.unroll(self.col as isize);
            let c = self.at(0);
            if self.col == 0 && c == b'%' || self.document_marker() {
                // A directive or a document marker: back to the top level.
                self.unroll(-1);
                self.key = None;
                self.allowed = false;
                if c == b'%' {
                    while self.brk(0) == 0 && !self.eof() {
                        self.advance();
                    }
                } else {
                    (0..3).for_each(|_| self.advance());
                }
                continue;
            }
            match c {
                b'[' | b'{' => {
                    self.save_key();
                    self.flow += 1;
                    if self.flow > limit {
                        return Some((self.line + 1, self.col + 1));
                    }
                    self.allowed = true;
                    self.advance();
                }
                b']' | b'}' => {
                    self.flow = self.flow.saturating_sub(1);
                    self.allowed = false;
                    self.advance();
                }
                b',' => {
                    self.allowed = true;
                    self.advance();
                }
                b'-' if self.blankz(1) => {
                    self.roll(self.col);
                    self.take_key();
                    self.allowed = true;
                    self.advance();
                }
                b'?' if self.flow > 0 || self.blankz(1) => {
                    self.roll(self.col);
                    self.take_key();
                    self.allowed = self.flow == 0;
                    self.advance();
                }
                b':' if self.flow > 0 || self.blankz(1) => {
                    // After a simple key's `:` no simple key may follow on the line; after a
                    // bare `:` in block context one may.
                    self.allowed = false;
                    if self.flow == 0 {
                        match self.key.take() {
                            Some((_, _, column)) => self.roll(column),
                            None => {
                                self.roll(self.col);
                                self.allowed = true;
                            }
                        }
                    }
                    self.advance();
                }
                b'*' | b'&' => {
                    self.save_key();
                    self.advance();
                    while self.at(0).is_ascii_alphanumeric() || matches!(self.at(0), b'_' | b'-') {
                        self.advance();
                    }
                    self.allowed = false;
                }
                b'!' => {
                    self.save_key();
                    self.tag();
                    self.allowed = false;
                }
                b'|' | b'>' if self.flow == 0 => {
                    self.take_key();
                    self.block_scalar();
                    self.allowed = true;
                }
                b'\'' | b'"' => {
                    self.save_key();
                    self.quoted(c);
                    self.allowed = false;
                }
                _ => {
                    self.save_key();
                    self.allowed = self.plain();
                }
            }
        }
    }

    /// libyaml removes the possible simple key of the current level at an indicator.
    fn take_key(&mut self) {
        if self.flow == 0 {
            self.key = None;
        }
    }

    /// `!tag`, `!handle!suffix` or `!<verbatim>`: the token runs to a blank (or, in a flow
    /// collection, a comma); only a verbatim tag may hold `,`, `[` and `]`.
    fn tag(&mut self) {
        self.advance();
        if self.at(0) == b'<' {
            while self.at(0) != b'>' && !self.blankz(0) {
                self.advance();
            }
        }
        while !(self.blankz(0) || self.flow > 0 && self.at(0) == b',') {
            self.advance();
        }
    }

    fn quoted(&mut self, quote: u8) {
        self.advance();
        while !self.eof() {
            let c = self.at(0);
            if quote == b'\'' && c == b'\'' {
                self.advance();
                if self.at(0) != b'\'' {
                    return;
                }
            } else if quote == b'"' && c == b'\\' {
                self.advance();
            } else if c == quote {
                self.advance();
                return;
            }
            self.advance();
        }
    }

    /// A plain scalar, ended as libyaml ends it; returns whether a simple key may follow
    /// (it ended after a line break).
    fn plain(&mut self) -> bool {
        let indent = self.indent + 1;
        let mut leading_blanks = false;
        loop {
            if self.document_marker() || self.at(0) == b'#' {
                break;
            }
            while !self.blankz(0) {
                let c = self.at(0);
                let flow_stop = |c: u8| matches!(c, b',' | b'[' | b']' | b'{' | b'}');
                if c == b':'
                    && (self.blankz(1)
                        || self.flow > 0 && (flow_stop(self.at(1)) || self.at(1) == b'?'))
                    || self.flow > 0 && flow_stop(c)
                {
                    return leading_blanks;
                }
                leading_blanks = false;
                self.advance();
            }
            if !(self.blank(0) || self.brk(0) > 0) {
                break;
            }
            while self.blank(0) || self.brk(0) > 0 {
                if self.brk(0) > 0 {
                    leading_blanks = true;
                }
                self.advance();
            }
            if self.flow == 0 && (self.col as isize) < indent {
                break;
            }
        }
        leading_blanks
    }

    /// `|` or `>` with its header, then every line indented at least as far as the first.
    fn block_scalar(&mut self) {
        self.advance();
        let mut increment = 0;
        for _ in 0..2 {
            match self.at(0) {
                b'+' | b'-' => self.advance(),
                d @ b'1'..=b'9' if increment == 0 => {
                    increment = isize::from(d - b'0');
                    self.advance();
                }
                _ => {}
            }
        }
        while self.blank(0) {
            self.advance();
        }
        if self.at(0) == b'#' {
            while self.brk(0) == 0 && !self.eof() {
                self.advance();
            }
        }
        if self.brk(0) == 0 {
            // libyaml stops here with an error; so may we.
            return;
        }
        self.advance();
        let mut indent = if increment > 0 {
            if self.indent >= 0 {
                self.indent + increment
            } else {
                increment
            }
        } else {
            0
        };
        self.block_breaks(&mut indent);
        while self.col as isize == indent && !self.eof() {
            while self.brk(0) == 0 && !self.eof() {
                self.advance();
            }
            if self.eof() {
                return;
            }
            self.advance();
            self.block_breaks(&mut indent);
        }
    }

    /// Blank lines and the indentation of a block scalar's next line; fixes the scalar's
    /// indentation from its first line when the header gave none.
    fn block_breaks(&mut self, indent: &mut isize) {
        let mut max = 0;
        loop {
            while (*indent == 0 || (self.col as isize) < *indent) && self.at(0) == b' ' {
                self.advance();
            }
            max = max.max(self.col as isize);
            if self.brk(0) == 0 {
                break;
            }
            self.advance();
        }
        if *indent == 0 {
            *indent = max.max(self.indent + 1).max(1);
        }
    }
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

    /// A 400 KB file of `[[[[...` used to keep the YAML parser busy for about two minutes
    /// (its time grows with the square of the depth) before it failed on its recursion limit;
    /// now it is refused before parsing, naming the bracket that goes too deep and the limit.
    #[test]
    fn a_400_kb_deeply_nested_yaml_file_is_refused_before_parsing() {
        let n = 200_000;
        let text = format!("client: {}{}\n", "[".repeat(n), "]".repeat(n));
        let err = parse(&text, Format::Yaml).unwrap_err();
        assert!(
            matches!(
                err,
                LoadError::TooDeep {
                    line: 1,
                    column: 73,
                    limit: MAX_YAML_FLOW_DEPTH,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            "YAML error at line 1, column 73: [ and { nested more than 64 deep (a configuration needs two or three levels)"
        );
        // The same in mappings, over many lines, and behind quoted closers that are no closers.
        let maps = format!("client:\n{}", "  {a: \n".repeat(n / 8));
        assert!(matches!(
            parse(&maps, Format::Yaml),
            Err(LoadError::TooDeep { line: 66, .. })
        ));
        let quoted = format!("x: {}", "[\"]\", '}', ".repeat(n / 8));
        assert!(matches!(
            parse(&quoted, Format::Yaml),
            Err(LoadError::TooDeep { line: 1, .. })
        ));
    }

    /// Found by the config fuzz target: libyaml skips a byte order mark at the start of any
    /// line, so a `[` after one opens a flow collection.
    #[test]
    fn a_byte_order_mark_at_a_line_start_does_not_hide_nesting() {
        let deep = "[".repeat(MAX_YAML_FLOW_DEPTH + 1);
        let text = format!("a: b\n\u{feff}  {deep}\n");
        assert!(matches!(
            parse(&text, Format::Yaml),
            Err(LoadError::TooDeep {
                line: 2,
                column: 68,
                ..
            })
        ));
        assert_eq!(yaml_flow_too_deep("\u{feff}[[", 1), Some((1, 3)));
    }

    /// YAML aliases that would expand a billion-fold: ignored at once under an application's
    /// own key of the story's layout, an error at once under a setting, and never an error "at
    /// line 0" (a parser error without a position is shown without one).
    #[test]
    fn alias_bombs_are_ignored_or_refused_at_once() {
        let mut bomb = String::from("  a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let refs = vec![format!("*a{}", i - 1); 10].join(", ");
            bomb += &format!("  a{i}: &a{i} [{refs}]\n");
        }
        let ignored = format!("websocket: {{}}\napp:\n{bomb}");
        assert_eq!(parse(&ignored, Format::Yaml).unwrap(), Config::default());
        let used = format!("app:\n{bomb}websocket:\n  frontend:\n    max_missed_pongs: *a11\n");
        let err = parse(&used, Format::Yaml).unwrap_err().to_string();
        assert!(err.contains("websocket.frontend.max_missed_pongs"), "{err}");
        let positionless = LoadError::Parse {
            format: Format::Yaml,
            line: 0,
            column: 0,
            message: "repetition limit exceeded".into(),
        };
        assert_eq!(
            positionless.to_string(),
            "YAML error: repetition limit exceeded"
        );
    }

    #[test]
    fn yaml_nesting_up_to_the_limit_is_parsed() {
        let depth = |d: usize| format!("x: {}{}\n", "[".repeat(d), "]".repeat(d));
        let err = parse(&depth(MAX_YAML_FLOW_DEPTH), Format::Yaml).unwrap_err();
        assert!(
            matches!(err, LoadError::Parse { .. }) && err.to_string().contains("unknown field `x`"),
            "{err}"
        );
        assert!(matches!(
            parse(&depth(MAX_YAML_FLOW_DEPTH + 1), Format::Yaml),
            Err(LoadError::TooDeep { .. })
        ));
    }

    /// Brackets that YAML reads as text (comments, quoted, plain and block scalars, tags) are
    /// not nesting: a story file full of them loads.
    #[test]
    fn brackets_in_yaml_text_are_not_nesting() {
        let many = "[".repeat(100);
        let text = format!(
            "# {many}\nwebsocket:\n  frontend:\n    ping_interval_seconds: 15 # {many}\n\
             app:\n  single: '{many}'\n  double: \"{many}\\\"\"\n  plain: a{many}\n  \
             multi: a\n    {many}\n  block: |\n    {many}\n    {many}\n  folded: >-\n    {many}\n\
             \x20 tagged: !!str '{many}'\n  flow: [a, {{b: '{many}'}}, \"]]]\", c]\n"
        );
        let c = parse(&text, Format::Yaml).unwrap();
        assert_eq!(c.client.ping_interval, Duration::from_secs(15));
    }

    /// Deep JSON and TOML need no pre-check: their parsers stop at once, at the first value
    /// that does not fit or at their own recursion limits.
    #[test]
    fn deep_json_and_toml_are_parse_errors() {
        let n = 200_000;
        let json = format!("{{\"client\": {}{}}}", "[".repeat(n), "]".repeat(n));
        let toml = format!("x = {}{}", "[".repeat(n), "]".repeat(n));
        let json_in_a_field = format!("{{\"x\": {}{}}}", "[".repeat(n), "]".repeat(n));
        for (text, f) in [
            (json, Format::Json),
            (toml, Format::Toml),
            (json_in_a_field, Format::Json),
        ] {
            let err = parse(&text, f).unwrap_err();
            assert!(
                matches!(err, LoadError::Parse { line: 1, .. }),
                "{f}: {err}"
            );
        }
    }

    /// `path` (dotted) set to `value` in `format`, as a file would say it.
    fn file_setting(path: &str, value: &str, format: Format) -> String {
        let parts: vec::Vec<&str> = path.split('.').collect();
        let (tables, key) = parts.split_at(parts.len() - 1);
        match format {
            Format::Yaml => {
                let mut text = String::new();
                for (depth, t) in tables.iter().enumerate() {
                    text += &format!("{}{t}:\n", "  ".repeat(depth));
                }
                text + &format!("{}{}: {value}\n", "  ".repeat(tables.len()), key[0])
            }
            Format::Toml => format!("[{}]\n{} = {value}\n", tables.join("."), key[0]),
            Format::Json => {
                let open: String = tables.iter().map(|t| format!("{{\"{t}\": ")).collect();
                format!(
                    "{open}{{\"{}\": {value}}}{}",
                    key[0],
                    "}".repeat(tables.len())
                )
            }
        }
    }

    /// In both layouts and all three formats, a value that is no number, a negative, a NaN or
    /// one too large for its setting is a load error naming the setting and what is wrong with
    /// the value (not a zero that validation then misreports).
    #[test]
    fn bad_values_are_load_errors_naming_the_field_in_every_layout_and_format() {
        let fields = [
            "client.ping_interval",
            "client.max_missed_pongs",
            "server.idle_timeout",
            "server.max_ping_strikes",
            "network.max_latency",
            "websocket.frontend.ping_interval_seconds",
            "websocket.frontend.max_missed_pongs",
            "websocket.backend.heartbeat_timeout_seconds",
            "websocket.network.max_server_delay",
        ];
        // (yaml, toml, json) spellings of each kind of bad value, and the words of its reason.
        type Spellings<'a> = [Option<&'a str>; 3];
        let values: [(&str, Spellings, &[&str]); 5] = [
            (
                "text",
                [Some("abc"), Some("\"abc\""), Some("\"abc\"")],
                &["invalid duration \"abc\"", "invalid type: string \"abc\""],
            ),
            (
                "negative",
                [Some("-5"), Some("-5"), Some("-5")],
                &["negative", "`-5`, expected u32"],
            ),
            (
                "NaN",
                [Some(".nan"), Some("nan"), None],
                &["not NaN", "not a number", "`NaN`, expected u32"],
            ),
            (
                "huge float",
                [Some("1e300"), Some("1e300"), Some("1e300")],
                &["too large", "expected u32"],
            ),
            (
                "huge integer",
                [
                    Some("99999999999999999999"),
                    Some("99999999999999999999"),
                    Some("99999999999999999999"),
                ],
                &["too large", "expected u32"],
            ),
        ];
        for field in fields {
            for (kind, spellings, reasons) in &values {
                for (format, value) in [Format::Yaml, Format::Toml, Format::Json]
                    .into_iter()
                    .zip(spellings)
                {
                    let Some(value) = value else { continue };
                    let text = file_setting(field, value, format);
                    let shown = match parse(&text, format) {
                        Ok(c) => panic!("{format} {field} {kind}: accepted as {c:?}"),
                        Err(e) => e.to_string(),
                    };
                    assert!(
                        shown.contains(field) && reasons.iter().any(|r| shown.contains(r)),
                        "{format} {field} {kind}:\n{text}\n{shown}"
                    );
                }
            }
        }
    }

    /// The same values in environment overrides name the variable and what is wrong.
    #[test]
    fn bad_override_values_name_the_variable() {
        for var in [
            "HEARTBEAT_CLIENT__PING_INTERVAL",
            "HEARTBEAT_CLIENT__MAX_MISSED_PONGS",
            "HEARTBEAT_SERVER__MAX_PING_STRIKES",
            "HEARTBEAT_NETWORK__MAX_LATENCY",
        ] {
            for value in ["abc", "-5", "NaN", "1e300", "99999999999999999999", ""] {
                let err = apply_overrides(&mut Config::default(), [(var, value)]).unwrap_err();
                let shown = err.to_string();
                assert!(
                    matches!(err, LoadError::BadOverride { .. })
                        && shown.starts_with(&format!("{var}={value:?}: "))
                        && (shown.contains("invalid duration") || shown.contains("whole number")),
                    "{shown}"
                );
            }
        }
    }

    /// Inside the heartbeat sections every key must be known, in every format and layout; the
    /// story's layout ignores an application's other top-level keys, ours has none.
    #[test]
    fn unknown_keys_in_heartbeat_sections_are_errors_and_other_top_level_keys_only_in_the_story() {
        for field in [
            "client.pingg",
            "server.idle",
            "network.latency",
            "websocket.frontend.ping_interval",
            "websocket.backend.idle_timeout",
            "websocket.network.latency",
            "websocket.other",
        ] {
            for format in [Format::Yaml, Format::Toml, Format::Json] {
                let value = if field == "websocket.other" {
                    "{}"
                } else {
                    "1"
                };
                let value = if format == Format::Toml && value == "{}" {
                    "{}"
                } else {
                    value
                };
                let shown = parse(&file_setting(field, value, format), format)
                    .unwrap_err()
                    .to_string();
                let key = field.rsplit('.').next().unwrap();
                assert!(
                    shown.contains(&format!("unknown field `{key}`")),
                    "{format} {field}: {shown}"
                );
            }
        }
        let story = [
            (
                "websocket:\n  frontend: {}\napp:\n  name: x\n",
                Format::Yaml,
            ),
            ("[websocket.frontend]\n[app]\nname = \"x\"\n", Format::Toml),
            (
                r#"{"websocket": {"frontend": {}}, "app": {"name": "x"}}"#,
                Format::Json,
            ),
        ];
        for (text, format) in story {
            assert_eq!(parse(text, format).unwrap(), Config::default(), "{format}");
        }
        let ours = [
            ("client: {}\napp:\n  name: x\n", Format::Yaml),
            ("[client]\n[app]\nname = \"x\"\n", Format::Toml),
            (r#"{"client": {}, "app": {"name": "x"}}"#, Format::Json),
        ];
        for (text, format) in ours {
            let shown = parse(text, format).unwrap_err().to_string();
            assert!(shown.contains("unknown field `app`"), "{format}: {shown}");
        }
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
