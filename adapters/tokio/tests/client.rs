//! The client side against a scripted server over in-memory pipes, under tokio's paused clock.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use heartbeat_core::wire::MAX_ENCODED_LEN;
use heartbeat_core::{Config, Event, Message as Hb, ReconnectReason, Status};
use heartbeat_tokio::{connect_with, ClientHandle, ClientOptions};
use tokio::io::DuplexStream;
use tokio::sync::{mpsc, watch};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

const LIMIT: Duration = Duration::from_secs(60);

/// A scripted server: answers JSON pings and echoes data, except while its connection's
/// `frozen` flag is set, when it reads nothing at all (like a stalled process).
struct FakeServer {
    accepted: Arc<AtomicUsize>,
    freeze: Vec<watch::Sender<bool>>,
    conns: mpsc::UnboundedReceiver<watch::Sender<bool>>,
}

impl FakeServer {
    async fn next_conn(&mut self) -> usize {
        let f = timeout(LIMIT, self.conns.recv()).await.unwrap().unwrap();
        self.freeze.push(f);
        self.freeze.len() - 1
    }
}

fn start(options: ClientOptions) -> (ClientHandle, FakeServer) {
    let accepted = Arc::new(AtomicUsize::new(0));
    let (conn_tx, conn_rx) = mpsc::unbounded_channel();
    let count = Arc::clone(&accepted);
    let client = connect_with(
        move || {
            let (a, b) = tokio::io::duplex(64 * 1024);
            let (freeze_tx, freeze_rx) = watch::channel(false);
            count.fetch_add(1, Ordering::SeqCst);
            let _ = conn_tx.send(freeze_tx);
            tokio::spawn(serve_fake(a, freeze_rx));
            async move {
                Ok::<_, tokio_tungstenite::tungstenite::Error>(
                    WebSocketStream::from_raw_socket(b, Role::Client, None).await,
                )
            }
        },
        options,
    )
    .unwrap();
    (
        client,
        FakeServer {
            accepted,
            freeze: Vec::new(),
            conns: conn_rx,
        },
    )
}

async fn serve_fake(io: DuplexStream, mut frozen: watch::Receiver<bool>) {
    let mut ws = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
    loop {
        if frozen.wait_for(|f| !*f).await.is_err() {
            return;
        }
        let frame = tokio::select! {
            f = ws.next() => f,
            _ = frozen.wait_for(|f| *f) => continue,
        };
        let Some(Ok(frame)) = frame else { return };
        let reply = match frame {
            // The client's pings are compact; longer texts are echoed without decoding, so that
            // a test of the client's decoder does not lean on the same decoder here.
            Message::Text(t) if t.len() > MAX_ENCODED_LEN => Message::Text(t),
            Message::Text(t) => match Hb::from_json(t.as_str()) {
                Ok(Hb::Ping { seq }) => Message::text(format!(r#"{{"type":"pong","seq":{seq}}}"#)),
                Ok(Hb::Pong { .. }) => continue,
                Err(_) => Message::Text(t),
            },
            _ => continue,
        };
        if ws.send(reply).await.is_err() {
            return;
        }
    }
}

async fn next_event(client: &mut ClientHandle) -> Event {
    timeout(LIMIT, client.events.recv())
        .await
        .expect("an event in time")
        .expect("events open")
}

/// Events up to and including the first one `stop` accepts.
async fn events_until(client: &mut ClientHandle, stop: impl Fn(&Event) -> bool) -> Vec<Event> {
    let mut seen = Vec::new();
    loop {
        let e = next_event(client).await;
        let done = stop(&e);
        seen.push(e);
        if done {
            return seen;
        }
    }
}

fn options() -> ClientOptions {
    ClientOptions {
        config: common::client_config(),
        seed: 7,
        ..ClientOptions::default()
    }
}

#[tokio::test(start_paused = true)]
async fn connects_and_reports_healthy_with_rtt() {
    let (mut client, mut server) = start(options());
    server.next_conn().await;
    let seen = events_until(&mut client, |e| matches!(e, Event::Rtt(_))).await;
    assert_eq!(seen[0], Event::Connect { attempt: 0 });
    assert!(seen.contains(&Event::Connected));
    let status = *client.status.borrow();
    assert_eq!(status.status, Status::Healthy);
    assert!(status.rtt.is_some());
    client.close().await;
}

#[tokio::test(start_paused = true)]
async fn a_short_server_stall_gives_slow_then_recovered_and_loses_no_message() {
    let (mut client, mut server) = start(options());
    let c = server.next_conn().await;
    events_until(&mut client, |e| matches!(e, Event::Rtt(_))).await;
    server.freeze[c].send(true).unwrap();
    // Messages sent through the whole Slow period.
    let sender = client.sender.clone();
    let feeder = tokio::spawn(async move {
        for i in 0..40u32 {
            sender.send(Message::text(format!("m{i}"))).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let seen = events_until(&mut client, |e| matches!(e, Event::Slow { .. })).await;
    assert_eq!(client.status.borrow().status, Status::Slow);
    assert!(
        !seen.iter().any(|e| matches!(e, Event::Reconnect { .. })),
        "{seen:?}"
    );
    server.freeze[c].send(false).unwrap();
    let seen = events_until(&mut client, |e| matches!(e, Event::Recovered { .. })).await;
    assert!(
        !seen.iter().any(|e| matches!(e, Event::Reconnect { .. })),
        "{seen:?}"
    );
    assert_eq!(client.status.borrow().status, Status::Healthy);
    timeout(LIMIT, feeder).await.unwrap().unwrap();
    let mut got = Vec::new();
    while got.len() < 40 {
        let m = timeout(LIMIT, client.messages.recv())
            .await
            .unwrap()
            .unwrap();
        got.push(m.into_text().unwrap().to_string());
    }
    let expected: Vec<String> = (0..40).map(|i| format!("m{i}")).collect();
    assert_eq!(got, expected);
    assert_eq!(server.accepted.load(Ordering::SeqCst), 1, "no reconnect");
    client.close().await;
}

#[tokio::test(start_paused = true)]
async fn a_silent_server_is_given_up_within_the_detection_bound_and_reconnected() {
    let cfg = Config {
        client: common::client_config(),
        ..Config::default()
    };
    let bound = cfg.guarantees().detection_bound;
    let (mut client, mut server) = start(options());
    let c = server.next_conn().await;
    events_until(&mut client, |e| matches!(e, Event::Rtt(_))).await;
    let frozen_at = tokio::time::Instant::now();
    server.freeze[c].send(true).unwrap();
    let seen = events_until(&mut client, |e| matches!(e, Event::Reconnect { .. })).await;
    let waited = frozen_at.elapsed();
    assert!(waited <= bound, "gave up after {waited:?}, bound {bound:?}");
    let missed: Vec<u32> = seen
        .iter()
        .filter_map(|e| match e {
            Event::PongMissed { missed, .. } => Some(*missed),
            _ => None,
        })
        .collect();
    assert_eq!(missed, [1, 2, 3, 4]);
    let slow_at = seen
        .iter()
        .position(|e| matches!(e, Event::Slow { .. }))
        .unwrap();
    let reconnect_at = seen.len() - 1;
    assert!(slow_at < reconnect_at, "Slow comes before the reconnect");
    assert!(matches!(
        seen[reconnect_at],
        Event::Reconnect {
            reason: ReconnectReason::MissedPongs { missed: 4 },
            ..
        }
    ));
    assert_eq!(
        client.status.borrow().last_reconnect,
        Some(ReconnectReason::MissedPongs { missed: 4 })
    );
    // The backoff passes and a new connection (not frozen) is healthy again.
    server.next_conn().await;
    events_until(&mut client, |e| matches!(e, Event::Rtt(_))).await;
    assert_eq!(client.status.borrow().status, Status::Healthy);
    assert_eq!(server.accepted.load(Ordering::SeqCst), 2);
    client.close().await;
}

#[tokio::test(start_paused = true)]
async fn a_failed_connect_backs_off_and_retries() {
    let attempts = Arc::new(AtomicUsize::new(0));
    let a = Arc::clone(&attempts);
    let mut client = connect_with(
        move || {
            a.fetch_add(1, Ordering::SeqCst);
            async {
                Err::<WebSocketStream<DuplexStream>, _>(
                    tokio_tungstenite::tungstenite::Error::ConnectionClosed,
                )
            }
        },
        options(),
    )
    .unwrap();
    let seen = events_until(&mut client, |e| matches!(e, Event::Connect { attempt: 3 })).await;
    let reasons: Vec<ReconnectReason> = seen
        .iter()
        .filter_map(|e| match e {
            Event::Reconnect { reason, backoff } => {
                assert!(*backoff <= Duration::from_secs(2));
                Some(*reason)
            }
            _ => None,
        })
        .collect();
    assert_eq!(reasons, [ReconnectReason::ConnectFailed; 3]);
    assert_eq!(client.status.borrow().status, Status::Reconnecting);
    assert_eq!(attempts.load(Ordering::SeqCst), 4);
    client.close().await;
}

#[tokio::test(start_paused = true)]
async fn dropping_the_handle_closes_the_socket() {
    let (ended_tx, ended_rx) = tokio::sync::oneshot::channel::<()>();
    let mut ended_tx = Some(ended_tx);
    let (opened_tx, opened_rx) = tokio::sync::oneshot::channel::<()>();
    let mut opened_tx = Some(opened_tx);
    let client = connect_with(
        move || {
            let (a, b) = tokio::io::duplex(64 * 1024);
            let ended = ended_tx.take();
            let opened = opened_tx.take();
            tokio::spawn(async move {
                let mut ws = WebSocketStream::from_raw_socket(a, Role::Server, None).await;
                if let Some(o) = opened {
                    let _ = o.send(());
                }
                while let Some(Ok(_)) = ws.next().await {}
                if let Some(e) = ended {
                    let _ = e.send(());
                }
            });
            async move {
                Ok::<_, tokio_tungstenite::tungstenite::Error>(
                    WebSocketStream::from_raw_socket(b, Role::Client, None).await,
                )
            }
        },
        options(),
    )
    .unwrap();
    timeout(LIMIT, opened_rx).await.unwrap().unwrap();
    drop(client);
    timeout(LIMIT, ended_rx)
        .await
        .expect("the server side sees the socket end")
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_deeply_nested_frame_and_texts_naming_ping_reach_the_application() {
    let (mut client, mut server) = start(options());
    server.next_conn().await;
    events_until(&mut client, |e| matches!(e, Event::Rtt(_))).await;
    // The fake server echoes them back: a hostile server's 1 MB of nesting (a decoder that
    // recursed per level overflowed the client's stack), then messages that only look like
    // heartbeats.
    let texts = [
        format!(r#"{{"type":"pong","seq":1,"a":{}"#, "[".repeat(999_970)),
        r#"{"type":"chat","seq":"a1","body":"ping"}"#.to_owned(),
        r#"[{"type":"pong","seq":1}]"#.to_owned(),
        "{\"type\":\"pong\",\"seq\":1}\n{\"type\":\"pong\",\"seq\":2}".to_owned(),
    ];
    for text in &texts {
        client
            .sender
            .send(Message::text(text.clone()))
            .await
            .unwrap();
    }
    for text in &texts {
        let m = timeout(LIMIT, client.messages.recv())
            .await
            .expect("echo in time")
            .expect("messages open");
        assert_eq!(m, Message::text(text.clone()));
    }
    assert_eq!(client.status.borrow().status, Status::Healthy);
    assert_eq!(server.accepted.load(Ordering::SeqCst), 1, "no reconnect");
    client.close().await;
}

/// A client whose one server is `script`: raw bytes written after the client connects; returns
/// the code of the close frame the client sends back.
async fn client_close_code_after(script: Vec<u8>) -> Option<u16> {
    client_close_code_with(script, None).await
}

/// As [`client_close_code_after`], with the client's stream created with `config`.
async fn client_close_code_with(
    script: Vec<u8>,
    config: Option<tokio_tungstenite::tungstenite::protocol::WebSocketConfig>,
) -> Option<u16> {
    common::client_close_code(script, options(), config, LIMIT).await
}

#[tokio::test(start_paused = true)]
async fn invalid_utf8_from_the_server_is_closed_with_1007() {
    let script = common::frame(0x80 | common::TEXT, &[0xff, 0xfe, 0xfd], None);
    assert_eq!(client_close_code_after(script).await, Some(1007));
}

#[tokio::test(start_paused = true)]
async fn a_masked_server_frame_is_closed_with_1002() {
    let script = common::frame(0x80 | common::TEXT, b"hi", Some(common::MASK));
    assert_eq!(client_close_code_after(script).await, Some(1002));
}

#[tokio::test(start_paused = true)]
async fn a_fragmented_message_over_1_mib_from_the_server_is_closed_with_1009() {
    let part = vec![b'x'; 600 * 1024];
    let mut script = common::frame(common::TEXT, &part, None); // FIN clear: more follows
    script.extend(common::frame(0x80 | common::CONTINUATION, &part, None));
    let config = heartbeat_tokio::Limits::default().websocket_config();
    assert_eq!(
        client_close_code_with(script, Some(config)).await,
        Some(1009)
    );
}

#[tokio::test(start_paused = true)]
async fn a_reserved_opcode_from_the_server_is_closed_with_1002() {
    let script = common::frame(0x83, b"", None);
    let config = heartbeat_tokio::Limits::default().websocket_config();
    assert_eq!(
        client_close_code_with(script, Some(config)).await,
        Some(1002)
    );
}
