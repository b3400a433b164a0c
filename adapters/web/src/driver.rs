//! The glue between browser happenings and the core, with no browser in it.
//!
//! [`Driver`] turns one input (the socket opened, a frame arrived, the timer fired, the page was
//! hidden) into one `handle_*` call on the real [`Client`], drains its outputs in the documented
//! order, and returns what the browser side must carry out as plain data ([`Actions`]). It makes
//! no liveness decision of its own: every "is it alive?" answer comes from the core. Keeping it
//! free of JavaScript types lets the host-side tests run it.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::time::Duration;

use heartbeat_core::{
    Client, ClientConfig, DecodeError, Event, Hint, Instant, Message, ReconnectReason, Status,
};
use serde::Serialize;

/// One thing that happened in the browser.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Input<'a> {
    /// Nothing happened; drain what the client has pending (its first `Connect`).
    Start,
    /// The WebSocket opened.
    Opened,
    /// The WebSocket closed, failed, or could not be created.
    Closed,
    /// A text frame arrived.
    Text(&'a str),
    /// A binary frame arrived: application data, and a sign of life.
    Binary,
    /// The timer set from the last [`Actions::timer`] fired.
    Timer,
    /// The page was hidden or shown, or the browser went offline or online.
    Hint(Hint),
    /// The application closed the socket for good.
    Close,
}

/// An entry for the application's event log: a core [`Event`] or a hint, in a JS-friendly shape
/// (`{ "type": "pong_missed", "missed": 1, "max_missed_pongs": 4 }`). Durations are in
/// milliseconds, as everywhere in JavaScript.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum LogEvent {
    /// A new socket is being opened.
    Connect { attempt: u32 },
    /// The socket is open; the first ping has been sent.
    Connected,
    /// A round-trip time from a matching pong.
    Rtt { rtt_ms: f64 },
    /// A ping went unanswered for `pong_timeout`.
    PongMissed { missed: u32, max_missed_pongs: u32 },
    /// The status became Slow.
    Slow { missed: u32 },
    /// A sign of life ended a Slow period.
    Recovered { missed: u32 },
    /// This page's timers fired late (background tab, sleep); a probe ping was sent.
    Stalled { late_by_ms: f64 },
    /// The connection was given up; a new one follows after `backoff_ms`.
    Reconnect {
        reason: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        missed: Option<u32>,
        backoff_ms: f64,
    },
    /// A hint was passed to the core.
    Hint { hint: &'static str },
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

impl From<Event> for LogEvent {
    fn from(event: Event) -> Self {
        match event {
            Event::Connect { attempt } => LogEvent::Connect { attempt },
            Event::Connected => LogEvent::Connected,
            Event::Rtt(rtt) => LogEvent::Rtt {
                rtt_ms: millis(rtt),
            },
            Event::PongMissed {
                missed,
                max_missed_pongs,
            } => LogEvent::PongMissed {
                missed,
                max_missed_pongs,
            },
            Event::Slow { missed } => LogEvent::Slow { missed },
            Event::Recovered { missed } => LogEvent::Recovered { missed },
            Event::Stalled { late_by } => LogEvent::Stalled {
                late_by_ms: millis(late_by),
            },
            Event::Reconnect { reason, backoff } => {
                let (reason, missed) = match reason {
                    ReconnectReason::MissedPongs { missed } => ("missed_pongs", Some(missed)),
                    ReconnectReason::ConnectionClosed => ("connection_closed", None),
                    ReconnectReason::ConnectFailed => ("connect_failed", None),
                    ReconnectReason::ConnectTimeout => ("connect_timeout", None),
                };
                LogEvent::Reconnect {
                    reason,
                    missed,
                    backoff_ms: millis(backoff),
                }
            }
        }
    }
}

/// The name the JavaScript API uses for a status.
pub(crate) fn status_name(status: Status) -> &'static str {
    match status {
        Status::Connecting => "connecting",
        Status::Healthy => "healthy",
        Status::Slow => "slow",
        Status::Reconnecting => "reconnecting",
        Status::Closed => "closed",
    }
}

fn hint_name(hint: Hint) -> &'static str {
    match hint {
        Hint::Hidden => "hidden",
        Hint::Visible => "visible",
        Hint::Offline => "offline",
        Hint::Online => "online",
    }
}

/// What the browser side must do after one input, in this order: close the old socket, open a
/// new one, write the frames, (re)arm the timer, then tell the application.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Actions {
    /// Close the current socket (the core gave it up, or the application closed).
    pub(crate) close_socket: bool,
    /// Open a new socket (the core asked to connect).
    pub(crate) open_socket: bool,
    /// Heartbeat frames to write, in order (a pong answering the server before our ping).
    pub(crate) send: Vec<String>,
    /// When the core wants [`Input::Timer`]; `None`: no timer (closed).
    pub(crate) timer: Option<Instant>,
    /// The text or binary frame was application data: pass it to the message callback.
    pub(crate) deliver: bool,
    /// Entries for the event log.
    pub(crate) log: Vec<LogEvent>,
    /// The status or the last RTT changed: call the status callback with these.
    pub(crate) status: Option<(Status, Option<f64>)>,
}

/// One heartbeat client and what the application was last told about it.
#[derive(Debug)]
pub(crate) struct Driver {
    client: Client,
    shown: Option<(Status, Option<f64>)>,
    rtt_ms: Option<f64>,
}

impl Driver {
    /// A driver whose client will ask to connect on the first [`Input::Start`].
    ///
    /// # Errors
    /// The configuration's broken rules, one per line, naming fields and numbers.
    pub(crate) fn new(config: &ClientConfig, now: Instant, seed: u64) -> Result<Driver, String> {
        let client = Client::new(config, now, seed).map_err(|e| e.to_string())?;
        Ok(Driver {
            client,
            shown: None,
            rtt_ms: None,
        })
    }

    /// The status to show now.
    pub(crate) fn status(&self) -> Status {
        self.client.status()
    }

    /// The last round-trip time, in milliseconds.
    pub(crate) fn rtt_ms(&self) -> Option<f64> {
        self.rtt_ms
    }

    /// The status and RTT to show a newly set status callback; later steps report only changes
    /// from them.
    pub(crate) fn show_now(&mut self) -> (Status, Option<f64>) {
        let shown = (self.client.status(), self.rtt_ms);
        self.shown = Some(shown);
        shown
    }

    /// Feeds one input to the core at `now` and drains every output.
    pub(crate) fn step(&mut self, now: Instant, input: Input<'_>) -> Actions {
        let mut actions = Actions::default();
        let client = &mut self.client;
        match input {
            Input::Start => {}
            Input::Opened => client.handle_connected(now),
            Input::Closed => client.handle_disconnected(now),
            // Only exact heartbeats are taken out; any other text, however much it looks like
            // one, is the application's.
            Input::Text(text) => match Message::from_json(text) {
                Ok(message) => client.handle_message(now, message),
                Err(DecodeError::NotHeartbeat) => {
                    client.handle_read(now);
                    actions.deliver = true;
                }
            },
            Input::Binary => {
                client.handle_read(now);
                actions.deliver = true;
            }
            Input::Timer => client.handle_timeout(now),
            Input::Hint(hint) => {
                client.handle_hint(now, hint);
                actions.log.push(LogEvent::Hint {
                    hint: hint_name(hint),
                });
            }
            Input::Close => {
                client.close();
                actions.close_socket = true;
            }
        }
        let mut buf = [0; heartbeat_core::wire::MAX_ENCODED_LEN];
        while let Some(message) = client.poll_transmit() {
            actions.send.push(message.to_json(&mut buf).to_string());
        }
        while let Some(event) = client.poll_event() {
            match event {
                Event::Connect { .. } => actions.open_socket = true,
                Event::Reconnect { .. } => actions.close_socket = true,
                Event::Rtt(rtt) => self.rtt_ms = Some(millis(rtt)),
                _ => {}
            }
            actions.log.push(event.into());
        }
        actions.timer = client.poll_timeout();
        let now_shown = (client.status(), self.rtt_ms);
        if self.shown != Some(now_shown) {
            self.shown = Some(now_shown);
            actions.status = Some(now_shown);
        }
        actions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ClientConfig {
        ClientConfig {
            ping_interval: Duration::from_millis(500),
            pong_timeout: Duration::from_millis(400),
            slow_threshold: 2,
            max_missed_pongs: 4,
            stall_threshold: Duration::from_millis(300),
            connect_timeout: Duration::from_secs(2),
            backoff_initial: Duration::from_millis(200),
            backoff_max: Duration::from_secs(1),
        }
    }

    fn ms(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    /// A driver that has connected at t=10ms and sent ping 0.
    fn connected() -> Driver {
        let mut d = Driver::new(&config(), ms(0), 7).unwrap();
        let a = d.step(ms(0), Input::Start);
        assert!(a.open_socket);
        assert_eq!(a.status, Some((Status::Connecting, None)));
        assert_eq!(a.timer, Some(ms(2_000)), "connect timeout");
        let a = d.step(ms(10), Input::Opened);
        assert_eq!(a.send, ["{\"type\":\"ping\",\"seq\":0}"]);
        assert_eq!(a.status, Some((Status::Healthy, None)));
        d
    }

    #[test]
    fn pong_gives_rtt_and_status_update() {
        let mut d = connected();
        let a = d.step(ms(35), Input::Text(r#"{"type":"pong","seq":0}"#));
        assert_eq!(a.log, [LogEvent::Rtt { rtt_ms: 25.0 }]);
        assert_eq!(a.status, Some((Status::Healthy, Some(25.0))));
        assert!(!a.deliver);
        assert_eq!(a.timer, Some(ms(510)), "next ping");
        // Nothing changed: the application is not told again.
        let a = d.step(ms(36), Input::Timer);
        assert_eq!(a.status, None);
    }

    #[test]
    fn a_status_shown_at_once_is_not_reported_again() {
        let mut d = Driver::new(&config(), ms(0), 7).unwrap();
        assert_eq!(d.show_now(), (Status::Connecting, None));
        let a = d.step(ms(0), Input::Start);
        assert!(a.open_socket);
        assert_eq!(a.status, None);
        let a = d.step(ms(5), Input::Opened);
        assert_eq!(a.status, Some((Status::Healthy, None)));
    }

    #[test]
    fn server_ping_is_answered_at_once() {
        let mut d = connected();
        let a = d.step(ms(20), Input::Text(r#"{"type":"ping","seq":41}"#));
        assert_eq!(a.send, ["{\"type\":\"pong\",\"seq\":41}"]);
    }

    #[test]
    fn application_text_is_delivered_and_counts_as_evidence() {
        let mut d = connected();
        // Two misses: Slow.
        d.step(ms(410), Input::Timer);
        d.step(ms(510), Input::Timer);
        let a = d.step(ms(910), Input::Timer);
        assert_eq!(a.status, Some((Status::Slow, None)));
        assert!(a.log.contains(&LogEvent::Slow { missed: 2 }));
        // An echoed application message, not a pong, ends the Slow period.
        let a = d.step(ms(950), Input::Text(r#"{"type":"chat","text":"hi"}"#));
        assert!(a.deliver);
        assert_eq!(a.log, [LogEvent::Recovered { missed: 2 }]);
        assert_eq!(a.status, Some((Status::Healthy, None)));
        assert!(!a.close_socket);
        let a = d.step(ms(960), Input::Text("plain words"));
        assert!(a.deliver);
        let a = d.step(ms(970), Input::Binary);
        assert!(a.deliver);
    }

    #[test]
    fn text_that_only_looks_like_a_heartbeat_is_delivered() {
        let mut d = connected();
        for text in [
            r#"{"type":"chat","seq":"a1","body":"ping"}"#,
            r#"[{"type":"ping","seq":1}]"#,
            "{\"type\":\"ping\",\"seq\":1}\n{\"type\":\"ping\",\"seq\":2}",
            r#"{"type":"pong"}"#,
            r#"{"type":"ping","seq":-1}"#,
        ] {
            let a = d.step(ms(20), Input::Text(text));
            assert!(a.deliver, "{text:?}");
            assert!(a.send.is_empty() && a.log.is_empty(), "{text:?}: {a:?}");
        }
    }

    #[test]
    fn a_deeply_nested_frame_is_delivered_without_recursion() {
        extern crate std;
        // 1 MiB of nesting, on a 64 KiB stack: a decoder that recursed per level would overflow.
        let deep = alloc::format!(r#"{{"type":"ping","seq":1,"a":{}"#, "[".repeat(1 << 20));
        let a = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || connected().step(ms(20), Input::Text(&deep)))
            .unwrap()
            .join()
            .unwrap();
        assert!(a.deliver);
        assert!(a.send.is_empty(), "no pong for a frame that is not a ping");
    }

    #[test]
    fn missed_pongs_warn_then_reconnect_then_connect_again() {
        let mut d = connected();
        let mut statuses = Vec::new();
        let mut t = 10;
        let mut closed_at = None;
        while closed_at.is_none() && t < 5_000 {
            t += 10;
            let a = d.step(ms(t), Input::Timer);
            statuses.extend(a.status.map(|s| s.0));
            if a.close_socket {
                closed_at = Some(t);
                assert!(matches!(
                    a.log.last(),
                    Some(LogEvent::Reconnect {
                        reason: "missed_pongs",
                        missed: Some(4),
                        ..
                    })
                ));
            }
        }
        assert_eq!(statuses, [Status::Slow, Status::Reconnecting]);
        let closed_at = closed_at.expect("gave up");
        // The socket is gone; the browser reports its close, which changes nothing more.
        let a = d.step(ms(closed_at), Input::Closed);
        assert!(!a.open_socket && a.status.is_none());
        let at = a.timer.expect("backoff timer");
        let a = d.step(at, Input::Timer);
        assert!(a.open_socket);
        assert_eq!(a.log, [LogEvent::Connect { attempt: 1 }]);
    }

    #[test]
    fn hidden_never_reconnects_and_visible_probes() {
        let mut d = connected();
        d.step(ms(30), Input::Text(r#"{"type":"pong","seq":0}"#));
        let a = d.step(ms(100), Input::Hint(Hint::Hidden));
        assert_eq!(a.log, [LogEvent::Hint { hint: "hidden" }]);
        assert!(a.send.is_empty() && !a.close_socket && a.status.is_none());
        // Within a pong timeout of an answered ping there is nothing to learn: no probe.
        let a = d.step(ms(200), Input::Hint(Hint::Visible));
        assert!(a.send.is_empty());
        let a = d.step(ms(250), Input::Hint(Hint::Offline));
        assert!(a.send.is_empty() && !a.close_socket);
        // Later (timers were throttled while hidden): probe at once, before the next ping is due.
        let a = d.step(ms(450), Input::Hint(Hint::Visible));
        assert_eq!(a.send, ["{\"type\":\"ping\",\"seq\":1}"], "probe at once");
        assert_eq!(a.timer, Some(ms(850)), "the probe's deadline");
    }

    #[test]
    fn socket_closed_by_server_reconnects() {
        let mut d = connected();
        let a = d.step(ms(100), Input::Closed);
        assert_eq!(a.status, Some((Status::Reconnecting, None)));
        assert!(matches!(
            a.log[..],
            [LogEvent::Reconnect {
                reason: "connection_closed",
                ..
            }]
        ));
    }

    #[test]
    fn close_is_terminal() {
        let mut d = connected();
        let a = d.step(ms(100), Input::Close);
        assert!(a.close_socket);
        assert_eq!(a.timer, None);
        assert_eq!(a.status, Some((Status::Closed, None)));
        let a = d.step(ms(200), Input::Text(r#"{"type":"ping","seq":1}"#));
        assert!(a.send.is_empty());
    }

    #[test]
    fn log_events_have_the_documented_json_shape() {
        let json = |e: LogEvent| serde_json::to_string(&e).unwrap();
        assert_eq!(
            json(LogEvent::PongMissed {
                missed: 1,
                max_missed_pongs: 4
            }),
            r#"{"type":"pong_missed","missed":1,"max_missed_pongs":4}"#
        );
        assert_eq!(
            json(
                Event::Reconnect {
                    reason: ReconnectReason::ConnectionClosed,
                    backoff: Duration::from_millis(150),
                }
                .into()
            ),
            r#"{"type":"reconnect","reason":"connection_closed","backoff_ms":150.0}"#
        );
        assert_eq!(json(LogEvent::Connected), r#"{"type":"connected"}"#);
    }
}
