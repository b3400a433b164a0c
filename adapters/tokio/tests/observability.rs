//! The tracing events and metrics a dashboard relies on, checked by name, under paused time.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use heartbeat_core::{ClientConfig, Event, Message as Hb};
use heartbeat_tokio::{connect_with, observe, ClientOptions};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

/// An event name with its field names.
type Seen = (String, Vec<String>);

/// Records each event's name and field names.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Seen>>>);

struct Fields(Vec<String>);
impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, _: &dyn std::fmt::Debug) {
        self.0.push(field.name().to_owned());
    }
}

impl<S: tracing::Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut fields = Fields(Vec::new());
        event.record(&mut fields);
        self.0
            .lock()
            .unwrap()
            .push((event.metadata().name().to_owned(), fields.0));
    }
}

#[test]
fn a_lost_server_leaves_the_storys_log_lines_and_the_dashboard_metrics() {
    let capture = Capture::default();
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    tracing::subscriber::with_default(subscriber, || {
        metrics::with_local_recorder(&recorder, || {
            rt.block_on(async {
                let (alive_tx, alive_rx) = watch::channel(true);
                let options = ClientOptions {
                    config: ClientConfig {
                        ping_interval: Duration::from_secs(1),
                        pong_timeout: Duration::from_millis(800),
                        stall_threshold: Duration::from_millis(500),
                        ..ClientConfig::default()
                    },
                    seed: 3,
                    ..ClientOptions::default()
                };
                let mut client = connect_with(
                    move || {
                        let (a, b) = tokio::io::duplex(64 * 1024);
                        let mut alive = alive_rx.clone();
                        tokio::spawn(async move {
                            let mut ws =
                                WebSocketStream::from_raw_socket(a, Role::Server, None).await;
                            while let Some(Ok(Message::Text(t))) = ws.next().await {
                                if !*alive.borrow_and_update() {
                                    // Dead: keep the socket open, answer nothing.
                                    let _ = alive.wait_for(|a| *a).await;
                                    continue;
                                }
                                if let Ok(Hb::Ping { seq }) = Hb::from_json(t.as_str()) {
                                    let pong = format!(r#"{{"type":"pong","seq":{seq}}}"#);
                                    if ws.send(Message::text(pong)).await.is_err() {
                                        return;
                                    }
                                }
                            }
                        });
                        async move {
                            Ok::<_, tokio_tungstenite::tungstenite::Error>(
                                WebSocketStream::from_raw_socket(b, Role::Client, None).await,
                            )
                        }
                    },
                    options,
                )
                .unwrap();
                let limit = Duration::from_secs(120);
                loop {
                    let e = tokio::time::timeout(limit, client.events.recv())
                        .await
                        .unwrap();
                    if matches!(e, Some(Event::Rtt(_))) {
                        break;
                    }
                }
                alive_tx.send(false).unwrap();
                loop {
                    let e = tokio::time::timeout(limit, client.events.recv())
                        .await
                        .unwrap();
                    if matches!(e, Some(Event::Reconnect { .. })) {
                        break;
                    }
                }
                let snapshot = snapshotter.snapshot().into_vec();
                let find = |name: &str| {
                    snapshot
                        .iter()
                        .filter(|(k, ..)| k.key().name() == name)
                        .map(|(k, _, _, v)| {
                            let labels: Vec<String> = k
                                .key()
                                .labels()
                                .map(|l| format!("{}={}", l.key(), l.value()))
                                .collect();
                            (labels, v)
                        })
                        .collect::<Vec<_>>()
                };
                assert_eq!(
                    find(observe::MISSED_PONGS_TOTAL),
                    [(vec![], &DebugValue::Counter(4))]
                );
                assert_eq!(
                    find(observe::RECONNECTS_TOTAL),
                    [(
                        vec!["reason=too_many_missed_pongs".to_owned()],
                        &DebugValue::Counter(1)
                    )]
                );
                assert_eq!(
                    find(observe::SLOW_TOTAL),
                    [(vec![], &DebugValue::Counter(1))]
                );
                let status = find(observe::STATUS);
                assert_eq!(status.len(), 1);
                assert_eq!(
                    status[0].1,
                    &DebugValue::Gauge(
                        observe::status_value(heartbeat_core::Status::Reconnecting).into()
                    )
                );
                let rtt = find(observe::RTT_SECONDS);
                assert_eq!(rtt.len(), 1);
                assert_eq!(rtt[0].0, ["side=client"]);
                assert!(matches!(rtt[0].1, DebugValue::Histogram(v) if !v.is_empty()));
                client.close().await;
            });
        });
    });
    let events = capture.0.lock().unwrap().clone();
    let named = |n: &str| {
        events
            .iter()
            .filter(|(name, _)| name == n)
            .collect::<Vec<_>>()
    };
    let missed = named("websocket.heartbeat_missed_pong");
    assert_eq!(missed.len(), 4, "{events:?}");
    for (_, fields) in &missed {
        assert!(fields.contains(&"missed_pongs".to_owned()), "{fields:?}");
        assert!(
            fields.contains(&"max_missed_pongs".to_owned()),
            "{fields:?}"
        );
    }
    assert_eq!(named("websocket.slow_connection_detected").len(), 1);
    let reconnect = named("websocket.heartbeat_reconnect");
    assert_eq!(reconnect.len(), 1);
    assert!(reconnect[0].1.contains(&"reason".to_owned()));
}
