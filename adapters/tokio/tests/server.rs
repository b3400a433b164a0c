//! The server side over in-memory pipes, under tokio's paused clock: deterministic, no sleeps
//! for synchronisation, every wait bounded.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use heartbeat_core::{CloseReason, ServerConfig};
use heartbeat_tokio::{serve, CloseCause, ConnectionEvent, Limits, PingStyle, ServerOptions};
use tokio::io::DuplexStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

type Ws = WebSocketStream<DuplexStream>;

const LIMIT: Duration = Duration::from_secs(30);

fn config() -> ServerConfig {
    ServerConfig {
        ping_interval: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(3),
        min_client_ping_interval: Duration::from_millis(500),
        max_ping_strikes: 2,
    }
}

fn options() -> ServerOptions {
    ServerOptions {
        config: config(),
        ..ServerOptions::default()
    }
}

async fn pair(buffer: usize) -> (Ws, Ws) {
    let (a, b) = tokio::io::duplex(buffer);
    (
        WebSocketStream::from_raw_socket(a, Role::Server, None).await,
        WebSocketStream::from_raw_socket(b, Role::Client, None).await,
    )
}

async fn next(peer: &mut Ws) -> Message {
    timeout(LIMIT, peer.next())
        .await
        .expect("a frame in time")
        .expect("stream open")
        .expect("a valid frame")
}

async fn closed_event(conn: &mut heartbeat_tokio::ServerConnection) -> CloseCause {
    loop {
        match timeout(LIMIT, conn.events.recv())
            .await
            .expect("event in time")
        {
            Some(ConnectionEvent::Closed(cause)) => return cause,
            Some(_) => {}
            None => panic!("events ended without Closed"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn json_ping_is_answered_and_the_server_pings_on_schedule() {
    let (srv, mut peer) = pair(64 * 1024).await;
    let _conn = serve(srv, &options()).unwrap();
    let start = tokio::time::Instant::now();
    peer.send(Message::text(r#"{"type":"ping","seq":7}"#))
        .await
        .unwrap();
    assert_eq!(
        next(&mut peer).await,
        Message::text(r#"{"type":"pong","seq":7}"#)
    );
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "the pong is not held for a timer"
    );
    assert_eq!(
        next(&mut peer).await,
        Message::text(r#"{"type":"ping","seq":0}"#)
    );
    assert_eq!(start.elapsed(), Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn protocol_pings_are_answered_and_protocol_pongs_give_rtt() {
    let (srv, mut peer) = pair(64 * 1024).await;
    let opts = ServerOptions {
        pings: PingStyle::Protocol,
        ..options()
    };
    let mut conn = serve(srv, &opts).unwrap();
    peer.send(Message::Ping(b"abc".to_vec().into()))
        .await
        .unwrap();
    assert_eq!(next(&mut peer).await, Message::Pong(b"abc".to_vec().into()));
    // The server's own ping is a protocol Ping; tungstenite on the peer answers it while reading.
    let ping = next(&mut peer).await;
    assert_eq!(ping, Message::Ping(0u64.to_be_bytes().to_vec().into()));
    let reader = tokio::spawn(async move {
        let _ = timeout(Duration::from_secs(2), peer.next()).await;
        peer
    });
    match timeout(LIMIT, conn.events.recv()).await.unwrap() {
        Some(ConnectionEvent::Rtt(_)) => {}
        other => panic!("expected an RTT from the peer's protocol pong, got {other:?}"),
    }
    drop(reader.await.unwrap());
}

#[tokio::test(start_paused = true)]
async fn a_silent_client_is_closed_with_1011_after_the_idle_timeout() {
    let (srv, mut peer) = pair(64 * 1024).await;
    let mut conn = serve(srv, &options()).unwrap();
    let start = tokio::time::Instant::now();
    let close = loop {
        if let Message::Close(frame) = next(&mut peer).await {
            break frame.expect("a close frame with a code");
        }
    };
    assert_eq!(u16::from(close.code), 1011);
    assert_eq!(close.reason.as_str(), "idle_timeout");
    assert_eq!(start.elapsed(), Duration::from_secs(3));
    assert_eq!(
        closed_event(&mut conn).await,
        CloseCause::Heartbeat(CloseReason::IdleTimeout)
    );
}

#[tokio::test(start_paused = true)]
async fn a_ping_flood_is_closed_with_1008() {
    let (srv, mut peer) = pair(64 * 1024).await;
    let mut conn = serve(srv, &options()).unwrap();
    // Flood policing is a GCRA (heartbeat-core): one ping per 500 ms on average with a burst
    // allowance of idle_timeout - min_client_ping_interval = 2.5 s, i.e. 6 pings at once; then
    // 2 strikes are tolerated and the third closes.
    for seq in 0..12 {
        peer.send(Message::text(format!(r#"{{"type":"ping","seq":{seq}}}"#)))
            .await
            .unwrap();
    }
    let mut pongs = Vec::new();
    let mut strikes = Vec::new();
    let close = loop {
        match next(&mut peer).await {
            Message::Close(frame) => break frame.expect("a close frame"),
            Message::Text(t) => pongs.push(t.as_str().to_owned()),
            other => panic!("unexpected {other:?}"),
        }
    };
    let expected: Vec<String> = (0..8)
        .map(|seq| format!(r#"{{"type":"pong","seq":{seq}}}"#))
        .collect();
    assert_eq!(
        pongs, expected,
        "the burst and the tolerated strikes are answered"
    );
    assert_eq!(u16::from(close.code), 1008);
    assert_eq!(close.reason.as_str(), "too_many_pings");
    let cause = loop {
        match timeout(LIMIT, conn.events.recv()).await.unwrap() {
            Some(ConnectionEvent::Strike { strikes: n }) => strikes.push(n),
            Some(ConnectionEvent::Closed(cause)) => break cause,
            Some(_) => {}
            None => panic!("no Closed event"),
        }
    };
    assert_eq!(strikes, [1, 2, 3]);
    assert_eq!(cause, CloseCause::Heartbeat(CloseReason::TooManyPings));
}

#[tokio::test(start_paused = true)]
async fn a_backlog_of_pings_after_a_stall_is_not_a_flood() {
    let (srv, mut peer) = pair(64 * 1024).await;
    let mut conn = serve(srv, &options()).unwrap();
    // Four pings read at once, as a server reads its backlog after a stall.
    for seq in 0..4 {
        peer.send(Message::text(format!(r#"{{"type":"ping","seq":{seq}}}"#)))
            .await
            .unwrap();
    }
    for seq in 0..4 {
        assert_eq!(
            next(&mut peer).await,
            Message::text(format!(r#"{{"type":"pong","seq":{seq}}}"#))
        );
    }
    assert!(conn.events.try_recv().is_err(), "no strike, no close");
}

#[tokio::test(start_paused = true)]
async fn a_pong_goes_ahead_of_queued_application_frames() {
    // A small pipe: the writer blocks in the middle of the first big application frame.
    let (srv, mut peer) = pair(1024).await;
    let conn = serve(srv, &options()).unwrap();
    let big = "x".repeat(4096);
    for i in 0..20 {
        conn.sender
            .send(Message::text(format!("{i}:{big}")))
            .await
            .unwrap();
    }
    peer.send(Message::text(r#"{"type":"ping","seq":1}"#))
        .await
        .unwrap();
    // Let every task run until idle (the paused clock moves only then).
    tokio::time::sleep(Duration::from_millis(1)).await;
    let mut order = Vec::new();
    for _ in 0..21 {
        match next(&mut peer).await {
            Message::Text(t) if t.as_str().starts_with('{') => order.push(t.as_str().to_owned()),
            Message::Text(t) => order.push(t.as_str().split(':').next().unwrap().to_owned()),
            other => panic!("unexpected {other:?}"),
        }
    }
    let pong_at = order
        .iter()
        .position(|m| m == r#"{"type":"pong","seq":1}"#)
        .expect("the pong arrived");
    assert!(
        pong_at <= 1,
        "pong behind {pong_at} application frames: {order:?}"
    );
    let data: Vec<String> = order.into_iter().filter(|m| !m.starts_with('{')).collect();
    let expected: Vec<String> = (0..20).map(|i| i.to_string()).collect();
    assert_eq!(data, expected, "application frames stay in order");
}

#[tokio::test(start_paused = true)]
async fn a_slow_application_backpressures_a_live_peer_without_getting_it_closed_or_delaying_others()
{
    // About four small messages fit in the inbound budget (each counts its length + 64 bytes).
    let opts = ServerOptions {
        limits: Limits {
            inbound_budget: 300,
            ..Limits::default()
        },
        ..options()
    };
    // Connection A: the peer floods, and pings the JSON way once a second; the application
    // takes one message every 2 s, less than the peer sends and slower than the 1 s ping
    // interval, within the 3 s idle timeout.
    let (srv_a, peer_a) = pair(4096).await;
    let mut conn_a = serve(srv_a, &opts).unwrap();
    let flood = tokio::spawn(async move {
        let mut sent = 0u32;
        let (mut sink, mut stream) = peer_a.split();
        let drain = tokio::spawn(async move { while stream.next().await.is_some() {} });
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let mut next_ping = tokio::time::Instant::now();
        while tokio::time::Instant::now() < deadline {
            let m = if tokio::time::Instant::now() >= next_ping {
                next_ping += Duration::from_secs(1);
                Message::text(format!(r#"{{"type":"ping","seq":{sent}}}"#))
            } else {
                Message::text(format!("data {sent}"))
            };
            match timeout(Duration::from_millis(100), sink.send(m)).await {
                Ok(Ok(())) => sent += 1,
                Ok(Err(_)) => break,
                Err(_) => {} // backpressure: the server is not reading
            }
        }
        drain.abort();
        sent
    });
    let slow_app = tokio::spawn(async move {
        let mut got = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_secs(2)).await;
            if let Ok(m) = conn_a.messages.try_recv() {
                got.push(m.into_text().unwrap().to_string());
            }
        }
        (conn_a, got)
    });
    // Connection B: pings are answered at once while A is held up.
    let (srv_b, mut peer_b) = pair(64 * 1024).await;
    let _conn_b = serve(srv_b, &options()).unwrap();
    for seq in 0..5u64 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let t = tokio::time::Instant::now();
        peer_b
            .send(Message::text(format!(r#"{{"type":"ping","seq":{seq}}}"#)))
            .await
            .unwrap();
        loop {
            let m = next(&mut peer_b).await;
            if m == Message::text(format!(r#"{{"type":"pong","seq":{seq}}}"#)) {
                break;
            }
        }
        assert_eq!(t.elapsed(), Duration::ZERO);
    }
    let sent = timeout(LIMIT, flood).await.unwrap().unwrap();
    let (mut conn_a, got) = timeout(LIMIT, slow_app).await.unwrap().unwrap();
    // Ten seconds in, well past the 3 s idle timeout: A was held up, never closed.
    while let Ok(e) = conn_a.events.try_recv() {
        assert!(
            !matches!(e, ConnectionEvent::Closed(_)),
            "the backpressured connection was closed: {e:?}"
        );
    }
    assert_eq!(got.len(), 5, "the application took one message per 2 s");
    assert!(got.iter().all(|m| m.starts_with("data ")), "{got:?}");
    // Without backpressure the flood would never stop sending at this paused instant. What
    // did go out is what the pipe (4 KiB) and tungstenite's last read of it hold: ~600 frames.
    assert!(
        sent < 1000,
        "the peer was slowed down (backpressure): {sent} sent"
    );
}

#[tokio::test(start_paused = true)]
async fn a_dead_client_is_closed_on_time_even_while_a_write_to_it_is_stuck() {
    // The peer neither reads nor writes (a power cut); the application streams data to it.
    // The pipe fills, the writer blocks mid-frame, and the idle timeout must still fire.
    let (srv, peer) = pair(1024).await;
    let mut conn = serve(srv, &options()).unwrap();
    let start = tokio::time::Instant::now();
    let big = "x".repeat(8192);
    let sender = conn.sender.clone();
    let feeder =
        tokio::spawn(async move { while sender.send(Message::text(big.clone())).await.is_ok() {} });
    assert_eq!(
        closed_event(&mut conn).await,
        CloseCause::Heartbeat(CloseReason::IdleTimeout)
    );
    assert_eq!(start.elapsed(), Duration::from_secs(3));
    feeder.abort();
    drop(peer);
}

/// Waits for the next application message on `conn`.
async fn app_message(conn: &mut heartbeat_tokio::ServerConnection) -> Message {
    timeout(LIMIT, conn.messages.recv())
        .await
        .expect("an application message in time")
        .expect("messages open")
}

#[tokio::test(start_paused = true)]
async fn a_deeply_nested_frame_reaches_the_application_and_the_server_lives_on() {
    let (srv, mut peer) = pair(64 * 1024).await;
    let mut conn = serve(srv, &options()).unwrap();
    // 1 MB of `[`: nesting one level per byte, as measured crashing the server (a decoder that
    // recursed per level overflowed the I/O thread's stack at 66 KB). Below 1 MiB, so that it is
    // application data under a 1 MiB message limit too.
    let deep = format!(r#"{{"type":"ping","seq":1,"a":{}"#, "[".repeat(999_970));
    assert!(deep.len() <= 1_000_000);
    peer.send(Message::text(deep.clone())).await.unwrap();
    assert_eq!(app_message(&mut conn).await, Message::text(deep));
    // Still serving: a ping is answered, and nothing was sent for the deep frame.
    peer.send(Message::text(r#"{"type":"ping","seq":2}"#))
        .await
        .unwrap();
    assert_eq!(
        next(&mut peer).await,
        Message::text(r#"{"type":"pong","seq":2}"#)
    );
}

#[tokio::test(start_paused = true)]
async fn application_messages_naming_ping_reach_the_application_unanswered() {
    let (srv, mut peer) = pair(64 * 1024).await;
    let mut conn = serve(srv, &options()).unwrap();
    let texts = [
        r#"{"type":"chat","seq":"a1","body":"ping"}"#,
        r#"[{"type":"ping","seq":1}]"#,
        "{\"type\":\"ping\",\"seq\":1}\n{\"type\":\"ping\",\"seq\":2}",
        r#"{"type":"ping","seq":-1}"#,
    ];
    for text in texts {
        peer.send(Message::text(text)).await.unwrap();
    }
    peer.send(Message::text(r#"{"type":"ping","seq":3}"#))
        .await
        .unwrap();
    for text in texts {
        assert_eq!(app_message(&mut conn).await, Message::text(text));
    }
    // The only answer is the exact ping's pong.
    assert_eq!(
        next(&mut peer).await,
        Message::text(r#"{"type":"pong","seq":3}"#)
    );
}

/// Sends `n` text messages of `len` bytes as fast as the server takes them, for at most
/// `for_at_most`; returns how many went out. Backpressure shows as a send that does not finish.
async fn send_until_held_up(
    sink: &mut futures_util::stream::SplitSink<Ws, Message>,
    n: usize,
    len: usize,
) -> usize {
    let body = "x".repeat(len);
    let mut sent = 0;
    while sent < n {
        match timeout(
            Duration::from_millis(100),
            sink.send(Message::text(body.clone())),
        )
        .await
        {
            Ok(Ok(())) => sent += 1,
            Ok(Err(_)) | Err(_) => break,
        }
    }
    sent
}

#[tokio::test(start_paused = true)]
async fn a_silent_peer_whose_messages_the_application_never_takes_is_closed_at_the_idle_timeout() {
    // Measured on the old code: a peer sent more than the application's buffer holds, stopped
    // reading and went silent; the waiting reader counted as "alive" on every tick and the
    // connection was never closed (2 GB pinned for 133 unread 15 MiB echoes).
    let (srv, peer) = pair(64 * 1024).await;
    let mut conn = serve(srv, &options()).unwrap();
    let start = tokio::time::Instant::now();
    let (mut sink, stream) = peer.split();
    let sent = send_until_held_up(&mut sink, 200, 16 * 1024).await;
    assert!(sent < 200, "the server stopped reading ({sent} sent)");
    // Silence: the peer neither sends nor reads from here on; the application takes nothing.
    assert_eq!(
        closed_event(&mut conn).await,
        CloseCause::Heartbeat(CloseReason::IdleTimeout)
    );
    assert_eq!(start.elapsed(), Duration::from_secs(3));
    drop((sink, stream));
}

#[tokio::test(start_paused = true)]
async fn a_protocol_ping_flood_is_closed_with_1008() {
    // The same policing as for JSON pings (see a_ping_flood_is_closed_with_1008): a burst of
    // 6, 2 tolerated strikes, the ninth ping closes. tungstenite answers each itself.
    let (srv, mut peer) = pair(64 * 1024).await;
    let mut conn = serve(srv, &options()).unwrap();
    for seq in 0..12u64 {
        peer.send(Message::Ping(seq.to_be_bytes().to_vec().into()))
            .await
            .unwrap();
    }
    let close = timeout(LIMIT, async {
        loop {
            match next(&mut peer).await {
                Message::Close(frame) => break frame.expect("a close frame with a code"),
                Message::Pong(_) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    })
    .await
    .expect("the flood is closed");
    assert_eq!(u16::from(close.code), 1008);
    assert_eq!(close.reason.as_str(), "too_many_pings");
    let mut strikes = Vec::new();
    let cause = loop {
        match timeout(LIMIT, conn.events.recv()).await.unwrap() {
            Some(ConnectionEvent::Strike { strikes: n }) => strikes.push(n),
            Some(ConnectionEvent::Closed(cause)) => break cause,
            Some(_) => {}
            None => panic!("no Closed event"),
        }
    };
    assert_eq!(strikes, [1, 2, 3]);
    assert_eq!(cause, CloseCause::Heartbeat(CloseReason::TooManyPings));
}

#[tokio::test(start_paused = true)]
async fn many_small_unread_messages_do_not_stop_the_reader_the_budget_counts_bytes() {
    // 100 messages of 10 bytes are far below the inbound byte budget: the reader goes on
    // reading, and the ping behind them is answered at once although the application takes
    // nothing. (A channel that counted messages, 64 of them, stopped the reader here.)
    let (srv, mut peer) = pair(64 * 1024).await;
    let _conn = serve(srv, &options()).unwrap();
    let start = tokio::time::Instant::now();
    for i in 0..100 {
        peer.send(Message::text(format!("data {i:05}")))
            .await
            .unwrap();
    }
    peer.send(Message::text(r#"{"type":"ping","seq":1}"#))
        .await
        .unwrap();
    let pong = Message::text(r#"{"type":"pong","seq":1}"#);
    timeout(Duration::from_millis(500), async {
        while next(&mut peer).await != pong {}
    })
    .await
    .expect("the ping behind 100 small messages is answered");
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn many_small_outbound_messages_queue_without_waiting_the_budget_counts_bytes() {
    // The peer reads nothing; 1,000 messages of 10 bytes are far below the outbound byte
    // budget, so the application queues them all without waiting.
    let (srv, _peer) = pair(1024).await;
    let conn = serve(srv, &options()).unwrap();
    for i in 0..1000 {
        timeout(
            Duration::from_millis(10),
            conn.sender.send(Message::text(format!("data {i:05}"))),
        )
        .await
        .unwrap_or_else(|_| panic!("message {i} waited"))
        .unwrap();
    }
}
