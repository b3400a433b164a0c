//! Renderings of a [`Trace`]: an ASCII timing diagram, a Mermaid sequence diagram and a
//! [`Summary`] of the numbers that matter when choosing timeouts.
//!
//! Renderers read only the trace; they never panic, whatever the entries (out of order,
//! unmatched messages, unknown clients).

use std::fmt::{self, Write as _};
use std::time::Duration;

use heartbeat_core::{
    CloseReason, Event, Hint, Instant, Message, ReconnectReason, ServerEvent, Status,
};

use crate::trace::{Entry, Trace, What, Who};

/// Formats an instant as `T=1m30.05s` (millisecond resolution, zero units left out).
#[must_use]
pub fn fmt_time(at: Instant) -> String {
    format!("T={}", fmt_secs(at.as_micros() / 1000))
}

/// Formats a duration compactly: `850ms`, `30s`, `1m30.5s`, `2h`.
#[must_use]
pub fn fmt_dur(d: Duration) -> String {
    let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    if us < 1000 {
        format!("{us}us")
    } else if us < 1_000_000 {
        format!("{}ms", us / 1000)
    } else {
        fmt_secs(us / 1000)
    }
}

fn fmt_secs(total_ms: u64) -> String {
    let (secs, ms) = (total_ms / 1000, total_ms % 1000);
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    let has_secs = s > 0 || ms > 0;
    let mut out = String::new();
    if h > 0 {
        let _ = write!(out, "{h}h");
    }
    if m > 0 || (h > 0 && has_secs) {
        let _ = write!(out, "{m}m");
    }
    if has_secs || out.is_empty() {
        let _ = write!(out, "{s}");
        if ms > 0 {
            let frac = format!("{ms:03}");
            out.push('.');
            out.push_str(frac.trim_end_matches('0'));
        }
        out.push('s');
    }
    out
}

fn msg_text(m: Message) -> String {
    match m {
        Message::Ping { seq } => format!("ping {seq}"),
        Message::Pong { seq } => format!("pong {seq}"),
    }
}

/// A reconnect reason as the logs would say it.
#[must_use]
pub fn reason_text(reason: ReconnectReason) -> String {
    match reason {
        ReconnectReason::MissedPongs { missed } => format!("missed_pongs ({missed} in a row)"),
        ReconnectReason::ConnectionClosed => "connection_closed".to_owned(),
        ReconnectReason::ConnectFailed => "connect_failed".to_owned(),
        ReconnectReason::ConnectTimeout => "connect_timeout".to_owned(),
    }
}

fn close_text(reason: CloseReason) -> String {
    format!("{} {}", reason.close_code(), reason.as_str())
}

/// The one-line text of a client event.
#[must_use]
pub fn event_text(ev: &Event) -> String {
    match *ev {
        Event::Connect { attempt } => format!("open socket (attempt {attempt})"),
        Event::Connected => "connected".to_owned(),
        Event::Rtt(d) => format!("rtt {}", fmt_dur(d)),
        Event::PongMissed {
            missed,
            max_missed_pongs,
        } => format!("pong missed ({missed} of {max_missed_pongs})"),
        Event::Slow { missed } => format!("SLOW warning ({missed} missed)"),
        Event::Recovered { missed } => format!("recovered (after {missed} missed)"),
        Event::Stalled { late_by } => format!(
            "STALLED (deadline {} ago): miss not counted, probe sent",
            fmt_dur(late_by)
        ),
        Event::Reconnect { reason, backoff } => format!(
            "RECONNECT: {}, retry in {}",
            reason_text(reason),
            fmt_dur(backoff)
        ),
    }
}

/// The one-line text of a server event.
#[must_use]
pub fn server_event_text(ev: &ServerEvent) -> String {
    match *ev {
        ServerEvent::Close(r) => format!("CLOSE {}", close_text(r)),
        ServerEvent::Rtt(d) => format!("rtt {}", fmt_dur(d)),
        ServerEvent::Strike { strikes } => format!("ping strike {strikes}"),
    }
}

fn status_text(s: Status) -> &'static str {
    match s {
        Status::Connecting => "connecting",
        Status::Healthy => "healthy",
        Status::Slow => "SLOW",
        Status::Reconnecting => "reconnecting",
        Status::Closed => "closed",
    }
}

fn hint_text(h: Hint) -> &'static str {
    match h {
        Hint::Hidden => "hint: page hidden",
        Hint::Visible => "hint: page visible",
        Hint::Offline => "hint: offline",
        Hint::Online => "hint: online",
    }
}

/// Plain text of an entry without arrows, as used in Mermaid notes and summaries.
#[must_use]
pub fn entry_text(e: &Entry) -> String {
    match &e.what {
        What::Send(m) => format!("sends {}", msg_text(*m)),
        What::Receive(m) => format!("reads {}", msg_text(*m)),
        What::Lost(m) => format!("{} lost", msg_text(*m)),
        What::Event(ev) => event_text(ev),
        What::ServerEvent(ev) => server_event_text(ev),
        What::Status(s) => format!("status: {}", status_text(*s)),
        What::Hint(h) => hint_text(*h).to_owned(),
        What::Open => match e.who {
            Who::Server(_) => "accept: new Server".to_owned(),
            _ => "socket open".to_owned(),
        },
        What::Closed => match e.who {
            Who::Server(_) => "connection dropped".to_owned(),
            _ => "socket closed".to_owned(),
        },
        What::Note(t) => t.to_string(),
    }
}

const TIME_W: usize = 15;
const LEFT_W: usize = 40;

fn width(s: &str) -> usize {
    s.chars().count()
}

fn pad(out: &mut String, s: &str, w: usize) {
    out.push_str(s);
    for _ in width(s)..w {
        out.push(' ');
    }
}

/// Fills `text` to `w` columns with `fill`, then ends with `end` (an arrow head).
fn arrow_right(text: &str, w: usize) -> String {
    let mut s = format!("{text} ");
    while width(&s) + 1 < w {
        s.push('─');
    }
    s.push('►');
    s
}

fn arrow_left(text: &str, w: usize) -> String {
    let mut s = format!("{text} ◄");
    while width(&s) < w {
        s.push('─');
    }
    s
}

fn many_clients(trace: &Trace) -> bool {
    let mut first = None;
    for e in trace {
        if let Who::Client(c) | Who::Server(c) = e.who {
            match first {
                None => first = Some(c),
                Some(f) if f != c => return true,
                _ => {}
            }
        }
    }
    false
}

/// An ASCII timing diagram: one row per entry, `time | frontend | backend`, messages drawn as
/// arrows from the sender's column toward the receiver's, status changes and world notes
/// marked. Readable in a terminal and in Markdown code blocks.
#[must_use]
pub fn ascii(trace: &Trace) -> String {
    let tag = many_clients(trace);
    let mut out = String::new();
    if !trace.title.is_empty() {
        let _ = writeln!(out, "{}", trace.title);
        out.push('\n');
    }
    pad(&mut out, "time", TIME_W);
    pad(&mut out, "frontend", LEFT_W);
    out.push_str("  backend\n");
    for _ in 0..TIME_W + LEFT_W + 2 + 34 {
        out.push('─');
    }
    out.push('\n');
    let entries = &trace.entries;
    let mut i = 0;
    while i < entries.len() {
        let e = &entries[i];
        // Fold an RTT event into the receive row just before it.
        let mut text = entry_text_arrowless(e);
        let mut next = i + 1;
        if let (Some(n), What::Receive(Message::Pong { .. })) = (entries.get(i + 1), &e.what) {
            let rtt = match &n.what {
                What::Event(Event::Rtt(d)) | What::ServerEvent(ServerEvent::Rtt(d)) => Some(*d),
                _ => None,
            };
            if let (Some(d), true) = (rtt, n.who == e.who && n.at == e.at) {
                text = format!("{text} (rtt {})", fmt_dur(d));
                next = i + 2;
            }
        }
        let prefix = match e.who {
            Who::Client(c) | Who::Server(c) if tag => format!("[c{c}] "),
            _ => String::new(),
        };
        let text = format!("{prefix}{text}");
        let mut row = String::new();
        pad(&mut row, &fmt_time(e.at), TIME_W);
        match (e.who, &e.what) {
            (Who::Client(_), What::Send(_)) => {
                row.push_str(&arrow_right(&text, LEFT_W + 1));
            }
            (Who::Client(_), What::Receive(_)) => row.push_str(&arrow_left(&text, LEFT_W + 1)),
            (Who::Client(_), What::Lost(_)) => row.push_str(&format!("{text} ──✕")),
            (Who::Client(_), _) => row.push_str(&text),
            (Who::Server(_), What::Send(_)) => {
                pad(&mut row, "", LEFT_W - 4);
                row.push_str("◄──── ");
                row.push_str(&text);
            }
            (Who::Server(_), What::Receive(_)) => {
                pad(&mut row, "", LEFT_W - 4);
                row.push_str("────► ");
                row.push_str(&text);
            }
            (Who::Server(_), What::Lost(_)) => {
                pad(&mut row, "", LEFT_W - 4);
                row.push_str("✕──── ");
                row.push_str(&text);
            }
            (Who::Server(_), _) => {
                pad(&mut row, "", LEFT_W + 2);
                row.push_str(&text);
            }
            (Who::World, _) => {
                row.push_str("~~ ");
                row.push_str(&text);
                row.push_str(" ~~");
            }
        }
        out.push_str(row.trim_end());
        out.push('\n');
        i = next;
    }
    out
}

/// True for a row that only shows heartbeats flowing: a message written or read, or an RTT.
fn routine(e: &Entry) -> bool {
    matches!(
        e.what,
        What::Send(_)
            | What::Receive(_)
            | What::Event(Event::Rtt(_))
            | What::ServerEvent(ServerEvent::Rtt(_))
    )
}

/// The trace with every run of routine rows (heartbeats written and read, RTTs) longer than
/// `max_run` and `1.5 x max_run` cut to its first and last `max_run / 2` rows and a world note
/// saying how many were left out. Everything else (events, status changes, losses, notes) is
/// kept.
#[must_use]
pub fn fold_routine(trace: &Trace, max_run: usize) -> Trace {
    let keep = max_run / 2;
    let mut out = Trace::titled(trace.title.clone());
    let entries = &trace.entries;
    let mut i = 0;
    while i < entries.len() {
        let start = i;
        while i < entries.len() && routine(&entries[i]) {
            i += 1;
        }
        let run = i - start;
        // Fold only when it saves at least `keep` rows: a short cut is harder to read.
        if run > max_run && run >= 3 * keep && keep > 0 {
            out.entries.extend_from_slice(&entries[start..start + keep]);
            let cut = &entries[start + keep..i - keep];
            let at = cut.first().map_or(Instant::ZERO, |e| e.at);
            let to = cut.last().map_or(Instant::ZERO, |e| e.at);
            out.push(
                at,
                Who::World,
                What::note(format!(
                    "⋮ {} routine heartbeat rows until {} left out ⋮",
                    cut.len(),
                    fmt_time(to)
                )),
            );
            out.entries.extend_from_slice(&entries[i - keep..i]);
        } else {
            out.entries.extend_from_slice(&entries[start..i]);
        }
        if i < entries.len() {
            out.entries.push(entries[i].clone());
            i += 1;
        }
    }
    out
}

fn entry_text_arrowless(e: &Entry) -> String {
    match &e.what {
        What::Send(m) | What::Receive(m) => msg_text(*m),
        What::Lost(m) => format!("{} lost", msg_text(*m)),
        What::Status(s) => format!("== status: {} ==", status_text(*s)),
        _ => entry_text(e),
    }
}

fn mermaid_id(who: Who, tag: bool) -> String {
    match who {
        Who::Client(c) if tag => format!("F{c}"),
        Who::Client(_) => "F".to_owned(),
        Who::Server(_) | Who::World => "B".to_owned(),
    }
}

fn mermaid_safe(text: &str) -> String {
    // `;` ends a statement and `#` starts an entity code in Mermaid.
    text.replace(';', ",").replace('#', "no. ")
}

/// A Mermaid sequence diagram (GitHub renders these in Markdown ```` ```mermaid ```` blocks).
///
/// Each message is one arrow, drawn where it was sent and labelled with its send and read
/// times; a lost message is a cross (`-x`); a duplicate read is drawn again where it was read.
/// Events, status changes and notes are notes over their side.
#[must_use]
pub fn mermaid(trace: &Trace) -> String {
    let tag = many_clients(trace);
    let entries = &trace.entries;
    // For every send, the index of the read that matches it, and whether it was lost.
    let mut read_of: Vec<Option<usize>> = vec![None; entries.len()];
    let mut lost: Vec<bool> = vec![false; entries.len()];
    let mut matched_read: Vec<bool> = vec![false; entries.len()];
    for (i, e) in entries.iter().enumerate() {
        let (m, from, is_lost) = match (&e.what, e.who) {
            (What::Receive(m), Who::Client(c)) => (*m, Who::Server(c), false),
            (What::Receive(m), Who::Server(c)) => (*m, Who::Client(c), false),
            (What::Lost(m), w) => (*m, w, true),
            _ => continue,
        };
        let found = (0..i).find(|&j| {
            let s = &entries[j];
            s.who == from && s.what == What::Send(m) && read_of[j].is_none() && !lost[j]
        });
        if let Some(j) = found {
            if is_lost {
                lost[j] = true;
            } else {
                read_of[j] = Some(i);
            }
            matched_read[i] = true;
        }
    }
    let mut out = String::from("sequenceDiagram\n");
    if !trace.title.is_empty() {
        let _ = writeln!(out, "    title {}", mermaid_safe(&trace.title));
    }
    let mut clients: Vec<u32> = entries
        .iter()
        .filter_map(|e| match e.who {
            Who::Client(c) | Who::Server(c) => Some(c),
            Who::World => None,
        })
        .collect();
    clients.sort_unstable();
    clients.dedup();
    if tag {
        for c in &clients {
            let _ = writeln!(out, "    participant F{c} as frontend {c}");
        }
    } else {
        out.push_str("    participant F as frontend\n");
    }
    out.push_str("    participant B as backend\n");
    let first_client = clients.first().copied().unwrap_or(0);
    for (i, e) in entries.iter().enumerate() {
        let me = mermaid_id(e.who, tag);
        let peer = match e.who {
            Who::Client(_) => "B".to_owned(),
            Who::Server(c) => mermaid_id(Who::Client(c), tag),
            Who::World => mermaid_id(Who::Client(first_client), tag),
        };
        let t = fmt_time(e.at);
        let line = match &e.what {
            What::Send(m) => {
                if let Some(r) = read_of[i] {
                    let read_at = fmt_time(entries[r].at);
                    format!("{me}->>{peer}: {} ({t} → read {read_at})", msg_text(*m))
                } else if lost[i] {
                    format!("{me}-x{peer}: {} ({t}, lost)", msg_text(*m))
                } else {
                    format!("{me}--){peer}: {} ({t}, never read)", msg_text(*m))
                }
            }
            What::Receive(m) if !matched_read[i] => {
                format!(
                    "{peer}->>{me}: {} (read again {t}: duplicate)",
                    msg_text(*m)
                )
            }
            What::Receive(_) => continue,
            What::Lost(_) if matched_read[i] => continue,
            What::Lost(m) => format!("{me}-x{peer}: {} ({t}, lost)", msg_text(*m)),
            What::Event(Event::Rtt(_)) | What::ServerEvent(ServerEvent::Rtt(_)) => continue,
            What::Note(_) if e.who == Who::World => {
                format!("Note over {peer},B: {t} {}", entry_text(e))
            }
            _ => format!("Note over {me}: {t} {}", entry_text(e)),
        };
        let _ = writeln!(out, "    {}", mermaid_safe(&line));
    }
    out
}

/// The numbers of a run: heartbeats, misses, slow windows, reconnects with their reasons,
/// server closes and round-trip percentiles. Built from any [`Trace`]; displays as a short
/// report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Time of the last entry.
    pub duration: Duration,
    /// Pings the clients wrote.
    pub client_pings: u64,
    /// Pongs the clients read.
    pub client_pongs: u64,
    /// Pings the server wrote.
    pub server_pings: u64,
    /// Pongs the server read.
    pub server_pongs: u64,
    /// Messages the network lost.
    pub lost: u64,
    /// `Event::PongMissed` count.
    pub misses: u64,
    /// `Event::Stalled` count (local stalls that were forgiven and probed).
    pub stalls: u64,
    /// Slow windows: from `Event::Slow` to `Recovered` or a reconnect (or the end), per client.
    pub slow_windows: Vec<SlowWindow>,
    /// Every `Event::Reconnect`: when, which client, why.
    pub reconnects: Vec<(Instant, u32, ReconnectReason)>,
    /// Every `ServerEvent::Close`: when, which connection, why.
    pub server_closes: Vec<(Instant, u32, CloseReason)>,
    /// Client round-trip times from `Event::Rtt`, sorted.
    pub rtts: Vec<Duration>,
}

/// One Slow period of one client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlowWindow {
    /// The client.
    pub client: u32,
    /// When `Event::Slow` came.
    pub from: Instant,
    /// When it ended (`Recovered`, a reconnect, or the end of the trace).
    pub to: Instant,
    /// How it ended: true for `Recovered`.
    pub recovered: bool,
}

impl Summary {
    /// Counts everything in `trace`.
    #[must_use]
    pub fn from_trace(trace: &Trace) -> Summary {
        let mut s = Summary {
            duration: trace.end().since_origin(),
            ..Summary::default()
        };
        let mut open: Vec<(u32, Instant)> = Vec::new();
        for e in trace {
            match (e.who, &e.what) {
                (Who::Client(_), What::Send(Message::Ping { .. })) => s.client_pings += 1,
                (Who::Client(_), What::Receive(Message::Pong { .. })) => s.client_pongs += 1,
                (Who::Server(_), What::Send(Message::Ping { .. })) => s.server_pings += 1,
                (Who::Server(_), What::Receive(Message::Pong { .. })) => s.server_pongs += 1,
                (_, What::Lost(_)) => s.lost += 1,
                (Who::Client(c), What::Event(ev)) => match *ev {
                    Event::PongMissed { .. } => s.misses += 1,
                    Event::Stalled { .. } => s.stalls += 1,
                    Event::Rtt(d) => s.rtts.push(d),
                    Event::Slow { .. } if !open.iter().any(|(oc, _)| *oc == c) => {
                        open.push((c, e.at));
                    }
                    Event::Recovered { .. } | Event::Reconnect { .. } => {
                        if let Event::Reconnect { reason, .. } = *ev {
                            s.reconnects.push((e.at, c, reason));
                        }
                        if let Some(k) = open.iter().position(|(oc, _)| *oc == c) {
                            let (_, from) = open.swap_remove(k);
                            s.slow_windows.push(SlowWindow {
                                client: c,
                                from,
                                to: e.at,
                                recovered: matches!(ev, Event::Recovered { .. }),
                            });
                        }
                    }
                    _ => {}
                },
                (Who::Server(c), What::ServerEvent(ServerEvent::Close(r))) => {
                    s.server_closes.push((e.at, c, *r));
                }
                _ => {}
            }
        }
        let end = trace.end();
        open.sort_unstable();
        for (client, from) in open {
            s.slow_windows.push(SlowWindow {
                client,
                from,
                to: end,
                recovered: false,
            });
        }
        s.rtts.sort_unstable();
        s
    }

    /// The `p`-th percentile (0..=100) of the client RTTs, nearest rank; `None` without samples.
    #[must_use]
    pub fn rtt_percentile(&self, p: u32) -> Option<Duration> {
        percentile(&self.rtts, p)
    }
}

/// Nearest-rank percentile of sorted samples.
#[must_use]
pub fn percentile(sorted: &[Duration], p: u32) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len();
    let rank = (u64::from(p.min(100)) * n as u64).div_ceil(100).max(1) as usize;
    sorted.get(rank - 1).copied()
}

impl From<&Trace> for Summary {
    fn from(trace: &Trace) -> Summary {
        Summary::from_trace(trace)
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "simulated time: {}", fmt_dur(self.duration))?;
        writeln!(
            f,
            "client pings: {} sent, {} pongs read; server pings: {} sent, {} pongs read",
            self.client_pings, self.client_pongs, self.server_pings, self.server_pongs
        )?;
        writeln!(
            f,
            "messages lost: {}; pongs missed: {}; local stalls: {}",
            self.lost, self.misses, self.stalls
        )?;
        let longest = self
            .slow_windows
            .iter()
            .map(|w| w.to.saturating_duration_since(w.from))
            .max();
        write!(f, "slow windows: {}", self.slow_windows.len())?;
        if let Some(l) = longest {
            write!(f, " (longest {})", fmt_dur(l))?;
        }
        writeln!(f)?;
        for w in &self.slow_windows {
            writeln!(
                f,
                "  client {}: {} .. {} ({}), {}",
                w.client,
                fmt_time(w.from),
                fmt_time(w.to),
                fmt_dur(w.to.saturating_duration_since(w.from)),
                if w.recovered {
                    "recovered"
                } else {
                    "not recovered"
                }
            )?;
        }
        writeln!(f, "reconnects: {}", self.reconnects.len())?;
        for (at, c, r) in &self.reconnects {
            writeln!(f, "  {} client {c}: {}", fmt_time(*at), reason_text(*r))?;
        }
        writeln!(f, "server closes: {}", self.server_closes.len())?;
        for (at, c, r) in &self.server_closes {
            writeln!(f, "  {} connection {c}: {}", fmt_time(*at), close_text(*r))?;
        }
        write!(f, "rtt: {} samples", self.rtts.len())?;
        if !self.rtts.is_empty() {
            let p = |q| self.rtt_percentile(q).map(fmt_dur).unwrap_or_default();
            write!(
                f,
                ", p50 {}, p90 {}, p99 {}, max {}",
                p(50),
                p(90),
                p(99),
                p(100)
            )?;
        }
        writeln!(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_time_compactly() {
        assert_eq!(fmt_time(Instant::ZERO), "T=0s");
        assert_eq!(fmt_time(Instant::from_millis(30_050)), "T=30.05s");
        assert_eq!(fmt_time(Instant::from_secs(90)), "T=1m30s");
        assert_eq!(fmt_time(Instant::from_secs(60)), "T=1m");
        assert_eq!(fmt_time(Instant::from_secs(7200)), "T=2h");
        assert_eq!(fmt_time(Instant::from_millis(7_230_500)), "T=2h0m30.5s");
        assert_eq!(fmt_dur(Duration::from_micros(612_345)), "612ms");
        assert_eq!(fmt_dur(Duration::from_micros(12)), "12us");
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 50), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&v, 99), Some(Duration::from_millis(99)));
        assert_eq!(percentile(&v, 0), Some(Duration::from_millis(1)));
        assert_eq!(percentile(&[], 50), None);
    }

    #[test]
    fn folding_keeps_everything_but_long_routine_runs() {
        let mut t = Trace::new();
        for i in 0..40u64 {
            t.push(
                Instant::from_secs(i),
                Who::Client(0),
                What::Send(Message::Ping { seq: i }),
            );
        }
        t.push(Instant::from_secs(41), Who::World, What::note("fault"));
        for i in 0..3u64 {
            t.push(
                Instant::from_secs(50 + i),
                Who::Server(0),
                What::Receive(Message::Ping { seq: i }),
            );
        }
        let f = fold_routine(&t, 10);
        // 5 + note + 5, the fault note, the short run of 3.
        assert_eq!(f.len(), 11 + 1 + 3);
        assert!(matches!(&f.entries[5].what, What::Note(n) if n.contains("30 routine")));
        assert_eq!(fold_routine(&t, 100), t);
    }

    #[test]
    fn renderers_survive_odd_traces() {
        let mut t = Trace::new();
        t.push(
            Instant::from_secs(5),
            Who::Server(7),
            What::Receive(Message::Pong { seq: 1 }),
        );
        t.push(
            Instant::ZERO,
            Who::Client(3),
            What::Lost(Message::Ping { seq: 9 }),
        );
        t.push(Instant::MAX, Who::World, What::note("end; of #world"));
        let a = ascii(&t);
        let m = mermaid(&t);
        assert!(a.contains("pong 1"));
        assert!(!m.contains(';') && !m.contains('#'));
        let s = Summary::from_trace(&t);
        assert_eq!(s.lost, 1);
        assert_eq!(s.server_pongs, 1);
    }
}
