//! The JavaScript face: `HeartbeatSocket`, its TypeScript types, and the browser plumbing
//! (WebSocket, setTimeout, performance.now, page events) around a [`Driver`].
//!
//! Re-entrancy rule: JavaScript callbacks are called only after the shared state's borrow is
//! released, so a callback may call `send` or `close`.

use alloc::rc::{Rc, Weak};
use alloc::string::String;
use core::cell::RefCell;
use core::fmt;

use heartbeat_core::{Hint, Instant, Status};
use js_sys::Function;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{BinaryType, MessageEvent, VisibilityState, WebSocket};

use crate::driver::{status_name, Actions, Driver, Input};

/// The TypeScript types wasm-bindgen cannot derive, appended to the generated .d.ts (only the
/// wasm build emits them; the host tests check them against the Rust types).
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
const TS_TYPES: &str = r#"
/** What to show the user. 'slow' is a warning: it always comes before a heartbeat reconnect. */
export type HeartbeatStatus = 'connecting' | 'healthy' | 'slow' | 'reconnecting' | 'closed';

/** A duration as in the YAML files ("15s", "1500ms", "1m 30s"), or a number of seconds. */
export type HeartbeatDuration = string | number;

/**
 * The client's heartbeat settings: the `client:` section of the YAML files, same names and
 * duration strings. Missing fields take their defaults; unknown fields are an error.
 */
export interface HeartbeatConfig {
  /** How often to ping while connected (default "15s"). */
  ping_interval?: HeartbeatDuration;
  /** How long to wait for any sign of life after a ping before counting a miss (default "10s"). */
  pong_timeout?: HeartbeatDuration;
  /** Consecutive misses that make the status 'slow' (default 2). */
  slow_threshold?: number;
  /** Consecutive misses that make the client reconnect (default 4). */
  max_missed_pongs?: number;
  /** A timer this late means the page itself was stalled, not the server (default "5s"). */
  stall_threshold?: HeartbeatDuration;
  /** How long opening the socket may take (default "10s"). */
  connect_timeout?: HeartbeatDuration;
  /** Cap of the first reconnect delay, doubled per attempt, full jitter (default "1s"). */
  backoff_initial?: HeartbeatDuration;
  /** Largest reconnect delay cap (default "30s"). */
  backoff_max?: HeartbeatDuration;
}

/** An entry for an event log: what the heartbeat client did and why. Durations in ms. */
export type HeartbeatEvent =
  | { type: 'connect'; attempt: number }
  | { type: 'connected' }
  | { type: 'rtt'; rtt_ms: number }
  | { type: 'pong_missed'; missed: number; max_missed_pongs: number }
  | { type: 'slow'; missed: number }
  | { type: 'recovered'; missed: number }
  | { type: 'stalled'; late_by_ms: number }
  | {
      type: 'reconnect';
      reason: 'missed_pongs' | 'connection_closed' | 'connect_failed' | 'connect_timeout';
      missed?: number;
      backoff_ms: number;
    }
  | { type: 'hint'; hint: 'hidden' | 'visible' | 'offline' | 'online' };

/** Called with the status and the last round-trip time (ms), whenever either changes. */
export type StatusCallback = (status: HeartbeatStatus, rttMs: number | undefined) => void;
/** Called with every application frame (anything that is not a heartbeat). */
export type MessageCallback = (data: string | ArrayBuffer) => void;
/** Called with every heartbeat event, for logs. */
export type EventCallback = (event: HeartbeatEvent) => void;
"#;

#[wasm_bindgen(typescript_custom_section)]
const TS_APPEND: &str = TS_TYPES;

#[wasm_bindgen]
extern "C" {
    /// The configuration object (TypeScript `HeartbeatConfig`).
    #[wasm_bindgen(typescript_type = "HeartbeatConfig")]
    pub type HeartbeatConfig;
    /// A status name (TypeScript `HeartbeatStatus`).
    #[wasm_bindgen(typescript_type = "HeartbeatStatus")]
    pub type HeartbeatStatus;
    /// `(status, rttMs) => void` (TypeScript `StatusCallback`).
    #[wasm_bindgen(typescript_type = "StatusCallback")]
    pub type StatusCallback;
    /// `(data) => void` (TypeScript `MessageCallback`).
    #[wasm_bindgen(typescript_type = "MessageCallback")]
    pub type MessageCallback;
    /// `(event) => void` (TypeScript `EventCallback`).
    #[wasm_bindgen(typescript_type = "EventCallback")]
    pub type EventCallback;
}

/// The browser clock as the core's [`Instant`]: `performance.now()` in whole microseconds.
fn now() -> Instant {
    let ms = web_sys::window()
        .and_then(|w| w.performance())
        .map_or_else(js_sys::Date::now, |p| p.now());
    // `as` saturates: a negative or NaN reading becomes 0, which the core treats as stale.
    Instant::from_micros((ms * 1_000.0) as u64)
}

/// A seed for the reconnect jitter, so that many tabs do not reconnect in step.
fn seed() -> u64 {
    let half = || (js_sys::Math::random() * 4_294_967_296.0) as u64;
    (half() << 32) | half()
}

fn window() -> Result<web_sys::Window, JsError> {
    web_sys::window().ok_or_else(|| JsError::new("HeartbeatSocket needs a window"))
}

/// The JavaScript functions the browser calls; created once per `HeartbeatSocket`, shared by
/// all its sockets, and holding only a weak reference to the state.
struct Handlers {
    open: Closure<dyn FnMut(JsValue)>,
    message: Closure<dyn FnMut(MessageEvent)>,
    close: Closure<dyn FnMut(JsValue)>,
    timer: Closure<dyn FnMut()>,
    visibility: Closure<dyn FnMut()>,
    online: Closure<dyn FnMut()>,
    offline: Closure<dyn FnMut()>,
}

/// The application's callbacks.
#[derive(Default)]
struct Callbacks {
    status: Option<Function>,
    message: Option<Function>,
    event: Option<Function>,
}

struct State {
    driver: Driver,
    url: String,
    socket: Option<WebSocket>,
    /// The armed `setTimeout` handle and the deadline it is for.
    timer: Option<(i32, Instant)>,
    callbacks: Callbacks,
    handlers: Option<Handlers>,
    /// Holds the state alive until `close()`, like the browser holds an open WebSocket: a
    /// `HeartbeatSocket` the application no longer references (and wasm-bindgen's finalizer
    /// frees) keeps running.
    keep_alive: Option<Rc<RefCell<State>>>,
}

impl State {
    /// Stops listening to the socket and closes it; its late events can no longer arrive.
    fn drop_socket(&mut self) {
        if let Some(socket) = self.socket.take() {
            socket.set_onopen(None);
            socket.set_onmessage(None);
            socket.set_onclose(None);
            socket.set_onerror(None);
            // 1000: normal closure. Closing a socket that is still connecting is allowed.
            let _ = socket.close_with_code(1000);
        }
    }

    fn clear_timer(&mut self) {
        if let (Some((handle, _)), Some(window)) = (self.timer.take(), web_sys::window()) {
            window.clear_timeout_with_handle(handle);
        }
    }

    /// Opens a socket; `false` when the browser refused at once (bad URL, blocked port).
    fn open_socket(&mut self) -> bool {
        let Some(h) = &self.handlers else {
            return false;
        };
        let Ok(socket) = WebSocket::new(&self.url) else {
            return false;
        };
        socket.set_binary_type(BinaryType::Arraybuffer);
        socket.set_onopen(Some(h.open.as_ref().unchecked_ref()));
        socket.set_onmessage(Some(h.message.as_ref().unchecked_ref()));
        // A failed socket fires `error` then `close`; `close` alone is enough.
        socket.set_onclose(Some(h.close.as_ref().unchecked_ref()));
        self.socket = Some(socket);
        true
    }

    fn arm_timer(&mut self, at: Option<Instant>) {
        if self.timer.map(|(_, deadline)| deadline) == at {
            return;
        }
        self.clear_timer();
        let (Some(at), Some(h), Some(window)) = (at, &self.handlers, web_sys::window()) else {
            return;
        };
        let wait = at.saturating_duration_since(now());
        // Round up: a timer that fires a little early would only be re-armed.
        let ms = i32::try_from(wait.as_micros().div_ceil(1_000)).unwrap_or(i32::MAX);
        if let Ok(handle) = window.set_timeout_with_callback_and_timeout_and_arguments_0(
            h.timer.as_ref().unchecked_ref(),
            ms,
        ) {
            self.timer = Some((handle, at));
        }
    }

    /// Carries out the socket and timer actions; returns the follow-up input if opening a
    /// socket failed at once.
    fn carry_out(&mut self, actions: &Actions) -> Option<Input<'static>> {
        for text in &actions.send {
            if let Some(socket) = &self.socket {
                // A send on a socket that is closing fails silently; the core will notice.
                let _ = socket.send_with_str(text);
            }
        }
        if actions.close_socket {
            self.drop_socket();
        }
        let mut follow_up = None;
        if actions.open_socket {
            self.drop_socket();
            if !self.open_socket() {
                follow_up = Some(Input::Closed);
            }
        }
        self.arm_timer(actions.timer);
        follow_up
    }

    fn stop_listening(&mut self) {
        if let (Some(h), Some(window)) = (&self.handlers, web_sys::window()) {
            let _ = window
                .remove_event_listener_with_callback("online", h.online.as_ref().unchecked_ref());
            let _ = window
                .remove_event_listener_with_callback("offline", h.offline.as_ref().unchecked_ref());
            if let Some(document) = window.document() {
                let _ = document.remove_event_listener_with_callback(
                    "visibilitychange",
                    h.visibility.as_ref().unchecked_ref(),
                );
            }
        }
    }
}

impl Drop for State {
    fn drop(&mut self) {
        self.stop_listening();
        self.clear_timer();
        self.drop_socket();
    }
}

/// Feeds one input and carries out everything that follows, then calls the application.
fn step(state: &Rc<RefCell<State>>, input: Input<'_>, data: Option<&JsValue>) {
    let mut notify = alloc::vec::Vec::new();
    let mut next = Some(input);
    let callbacks;
    {
        let mut s = state.borrow_mut();
        while let Some(input) = next.take() {
            let actions = s.driver.step(now(), input);
            next = s.carry_out(&actions);
            notify.push(actions);
        }
        callbacks = (
            s.callbacks.event.clone(),
            s.callbacks.status.clone(),
            s.callbacks.message.clone(),
        );
    }
    // The borrow is released: callbacks may call back into the socket.
    let (on_event, on_status, on_message) = callbacks;
    for actions in notify {
        if let Some(f) = &on_event {
            for entry in &actions.log {
                if let Ok(value) = serde_wasm_bindgen::to_value(entry) {
                    report(f.call1(&JsValue::NULL, &value));
                }
            }
        }
        if let (Some(f), Some((status, rtt))) = (&on_status, actions.status) {
            call_status(f, status, rtt);
        }
        if let (Some(f), Some(data), true) = (&on_message, data, actions.deliver) {
            report(f.call1(&JsValue::NULL, data));
        }
    }
}

fn call_status(f: &Function, status: Status, rtt: Option<f64>) {
    let rtt = rtt.map_or(JsValue::UNDEFINED, JsValue::from_f64);
    report(f.call2(
        &JsValue::NULL,
        &JsValue::from_str(status_name(status)),
        &rtt,
    ));
}

/// An exception thrown by an application callback is reported as an uncaught one would be
/// (`reportError`: the console and the window's `error` event), without unwinding through the
/// socket's own code, which goes on.
fn report(result: Result<JsValue, JsValue>) {
    if let Err(error) = result {
        let global = js_sys::global();
        if let Ok(f) = js_sys::Reflect::get(&global, &JsValue::from_str("reportError")) {
            if let Some(f) = f.dyn_ref::<Function>() {
                let _ = f.call1(&global, &error);
            }
        }
    }
}

/// Runs `f` on the state if it still exists (a handler can outlive a freed socket briefly).
fn with_state(weak: &Weak<RefCell<State>>, f: impl FnOnce(&Rc<RefCell<State>>)) {
    if let Some(state) = weak.upgrade() {
        f(&state);
    }
}

/// Is this event from the socket we are using now (not one we already gave up)?
fn is_current(state: &Rc<RefCell<State>>, event: &JsValue) -> bool {
    let target = js_sys::Reflect::get(event, &JsValue::from_str("target")).ok();
    let s = state.borrow();
    matches!((&s.socket, target), (Some(socket), Some(t)) if JsValue::from(socket.clone()) == t)
}

fn handlers(weak: &Weak<RefCell<State>>) -> Handlers {
    let w = weak.clone();
    let open = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
        with_state(&w, |s| {
            if is_current(s, &event) {
                step(s, Input::Opened, None);
            }
        });
    });
    let w = weak.clone();
    let message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
        with_state(&w, |s| {
            if !is_current(s, &event) {
                return;
            }
            let data = event.data();
            match data.as_string() {
                Some(text) => step(s, Input::Text(&text), Some(&data)),
                None => step(s, Input::Binary, Some(&data)),
            }
        });
    });
    let w = weak.clone();
    let close = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
        with_state(&w, |s| {
            if is_current(s, &event) {
                s.borrow_mut().drop_socket();
                step(s, Input::Closed, None);
            }
        });
    });
    let w = weak.clone();
    let timer = Closure::<dyn FnMut()>::new(move || {
        with_state(&w, |s| {
            s.borrow_mut().timer = None;
            step(s, Input::Timer, None);
        });
    });
    let w = weak.clone();
    let visibility = Closure::<dyn FnMut()>::new(move || {
        let hidden = web_sys::window()
            .and_then(|w| w.document())
            .is_some_and(|d| d.visibility_state() == VisibilityState::Hidden);
        let hint = if hidden { Hint::Hidden } else { Hint::Visible };
        with_state(&w, |s| step(s, Input::Hint(hint), None));
    });
    let w = weak.clone();
    let online = Closure::<dyn FnMut()>::new(move || {
        with_state(&w, |s| step(s, Input::Hint(Hint::Online), None));
    });
    let w = weak.clone();
    let offline = Closure::<dyn FnMut()>::new(move || {
        with_state(&w, |s| step(s, Input::Hint(Hint::Offline), None));
    });
    Handlers {
        open,
        message,
        close,
        timer,
        visibility,
        online,
        offline,
    }
}

/// A WebSocket whose liveness is decided by heartbeat-core: it pings, warns ('slow') before it
/// ever reconnects, reconnects with jittered backoff, and tells a throttled background tab
/// from a dead server.
#[wasm_bindgen]
pub struct HeartbeatSocket {
    state: Rc<RefCell<State>>,
}

impl fmt::Debug for HeartbeatSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.state.borrow();
        f.debug_struct("HeartbeatSocket")
            .field("url", &s.url)
            .field("driver", &s.driver)
            .finish_non_exhaustive()
    }
}

#[wasm_bindgen]
impl HeartbeatSocket {
    /// Opens `url` (ws: or wss:) and keeps it alive until `close()`. The first attempt starts
    /// from a microtask, so callbacks set right after `new` see every event.
    ///
    /// Throws when the configuration has an unknown field, a bad duration, or breaks a rule
    /// (the message names every broken rule with its numbers).
    #[wasm_bindgen(constructor)]
    pub fn new(url: &str, config: Option<HeartbeatConfig>) -> Result<HeartbeatSocket, JsError> {
        let value: JsValue = config.map_or(JsValue::UNDEFINED, Into::into);
        let config = crate::config::client_config(serde_wasm_bindgen::Deserializer::from(value))
            .map_err(|e| JsError::new(&e))?;
        let driver = Driver::new(&config, now(), seed()).map_err(|e| JsError::new(&e))?;
        let window = window()?;
        let state = Rc::new(RefCell::new(State {
            driver,
            url: url.into(),
            socket: None,
            timer: None,
            callbacks: Callbacks::default(),
            handlers: None,
            keep_alive: None,
        }));
        let h = handlers(&Rc::downgrade(&state));
        window
            .add_event_listener_with_callback("online", h.online.as_ref().unchecked_ref())
            .map_err(|_| JsError::new("cannot listen to 'online'"))?;
        window
            .add_event_listener_with_callback("offline", h.offline.as_ref().unchecked_ref())
            .map_err(|_| JsError::new("cannot listen to 'offline'"))?;
        if let Some(document) = window.document() {
            document
                .add_event_listener_with_callback(
                    "visibilitychange",
                    h.visibility.as_ref().unchecked_ref(),
                )
                .map_err(|_| JsError::new("cannot listen to 'visibilitychange'"))?;
        }
        {
            let mut s = state.borrow_mut();
            s.handlers = Some(h);
            s.keep_alive = Some(Rc::clone(&state));
        }
        // Connect from a microtask, so that callbacks set right after `new` see everything,
        // the first 'connect' event included.
        let weak = Rc::downgrade(&state);
        let start = Closure::once_into_js(move || {
            with_state(&weak, |s| step(s, Input::Start, None));
        });
        window.queue_microtask(start.unchecked_ref());
        Ok(HeartbeatSocket { state })
    }

    /// Sets the status callback and calls it at once with the current status and RTT; later
    /// calls report changes of either.
    #[wasm_bindgen(js_name = onStatus)]
    pub fn on_status(&self, callback: Option<StatusCallback>) {
        let f: Option<Function> = callback.map(JsCast::unchecked_into);
        let (status, rtt) = {
            let mut s = self.state.borrow_mut();
            s.callbacks.status.clone_from(&f);
            s.driver.show_now()
        };
        if let Some(f) = f {
            call_status(&f, status, rtt);
        }
    }

    /// Sets the callback for application frames (everything that is not a heartbeat).
    #[wasm_bindgen(js_name = onMessage)]
    pub fn on_message(&self, callback: Option<MessageCallback>) {
        self.state.borrow_mut().callbacks.message = callback.map(JsCast::unchecked_into);
    }

    /// Sets the callback for heartbeat events (connects, RTTs, misses, reconnects, hints).
    #[wasm_bindgen(js_name = onEvent)]
    pub fn on_event(&self, callback: Option<EventCallback>) {
        self.state.borrow_mut().callbacks.event = callback.map(JsCast::unchecked_into);
    }

    /// Sends an application text frame. Returns `false`, sending nothing, while no connection
    /// is open (the application decides whether to queue or drop).
    pub fn send(&self, text: &str) -> bool {
        let s = self.state.borrow();
        match &s.socket {
            Some(socket) if socket.ready_state() == WebSocket::OPEN => {
                socket.send_with_str(text).is_ok()
            }
            _ => false,
        }
    }

    /// Closes the connection for good; the status becomes 'closed'. Until then the socket
    /// keeps running even if the application drops every reference to it.
    pub fn close(&self) {
        step(&self.state, Input::Close, None);
        let keep_alive = {
            let mut s = self.state.borrow_mut();
            s.stop_listening();
            s.keep_alive.take()
        };
        drop(keep_alive);
    }

    /// The current status.
    #[wasm_bindgen(getter)]
    pub fn status(&self) -> HeartbeatStatus {
        JsValue::from_str(status_name(self.state.borrow().driver.status())).unchecked_into()
    }

    /// The last round-trip time in milliseconds, if any pong has been timed.
    #[wasm_bindgen(getter, js_name = rttMs)]
    pub fn rtt_ms(&self) -> Option<f64> {
        self.state.borrow().driver.rtt_ms()
    }

    /// The URL this socket connects to.
    #[wasm_bindgen(getter)]
    pub fn url(&self) -> String {
        self.state.borrow().url.clone()
    }
}

#[cfg(test)]
mod tests {
    use alloc::format;
    use alloc::string::ToString;

    use heartbeat_core::{ClientConfig, Event, ReconnectReason, Status};

    use super::TS_TYPES;
    use crate::driver::{status_name, LogEvent};

    /// The hand-written TypeScript types must follow the core: a field added to `ClientConfig`
    /// or an event added to the log shows up here first.
    #[test]
    fn typescript_config_type_lists_every_client_setting() {
        let json = serde_json::to_value(ClientConfig::default()).unwrap();
        let fields = json.as_object().unwrap();
        assert_eq!(fields.len(), 8);
        for (name, value) in fields {
            let kind = if value.is_string() {
                "HeartbeatDuration"
            } else {
                "number"
            };
            let line = format!("  {name}?: {kind};");
            assert!(TS_TYPES.contains(&line), "HeartbeatConfig lacks `{line}`");
        }
    }

    #[test]
    fn typescript_status_and_event_types_match_the_rust_ones() {
        for status in [
            Status::Connecting,
            Status::Healthy,
            Status::Slow,
            Status::Reconnecting,
            Status::Closed,
        ] {
            let name = format!("'{}'", status_name(status));
            assert!(TS_TYPES.contains(&name), "HeartbeatStatus lacks {name}");
        }
        let events = [
            LogEvent::from(Event::Connect { attempt: 0 }),
            Event::Connected.into(),
            Event::Rtt(core::time::Duration::ZERO).into(),
            Event::PongMissed {
                missed: 1,
                max_missed_pongs: 4,
            }
            .into(),
            Event::Slow { missed: 2 }.into(),
            Event::Recovered { missed: 2 }.into(),
            Event::Stalled {
                late_by: core::time::Duration::ZERO,
            }
            .into(),
            Event::Reconnect {
                reason: ReconnectReason::MissedPongs { missed: 4 },
                backoff: core::time::Duration::ZERO,
            }
            .into(),
            LogEvent::Hint { hint: "hidden" },
        ];
        for event in events {
            let json = serde_json::to_value(&event).unwrap();
            let object = json.as_object().unwrap();
            let kind = object["type"].as_str().unwrap().to_string();
            assert!(
                TS_TYPES.contains(&format!("type: '{kind}'")),
                "HeartbeatEvent lacks type '{kind}'"
            );
            for field in object.keys().filter(|k| *k != "type") {
                assert!(
                    TS_TYPES.contains(&format!("{field}: "))
                        || TS_TYPES.contains(&format!("{field}?: ")),
                    "HeartbeatEvent '{kind}' lacks field {field}"
                );
            }
        }
        for reason in [
            "missed_pongs",
            "connection_closed",
            "connect_failed",
            "connect_timeout",
        ] {
            assert!(TS_TYPES.contains(&format!("'{reason}'")), "reason {reason}");
        }
    }
}
