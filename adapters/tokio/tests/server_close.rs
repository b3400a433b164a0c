//! How a served connection ends when something is stuck: a write the peer does not take, a
//! message the application does not take, an application that let go. In-memory pipes under
//! tokio's paused clock; every wait bounded.

mod common;

use std::time::Duration;

use common::{frame, header, read_frame, CLOSE, MASK, TEXT};
use futures_util::{SinkExt, StreamExt};
use heartbeat_core::{CloseReason, ServerConfig};
use heartbeat_tokio::{
    serve, CloseCause, ConnectionEvent, Limits, ServerConnection, ServerOptions,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::time::{timeout, Instant};
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

const LIMIT: Duration = Duration::from_secs(30);
const IDLE: Duration = Duration::from_secs(3);
/// How long the reader lingers for the peer's close frame, and a close frame may take.
const LINGER: Duration = Duration::from_secs(1);
const BINARY: u8 = 0x2;

fn options() -> ServerOptions {
    ServerOptions {
        config: ServerConfig {
            ping_interval: Duration::from_secs(1),
            idle_timeout: IDLE,
            min_client_ping_interval: Duration::from_millis(500),
            max_ping_strikes: 2,
        },
        limits: Limits {
            inbound_budget: 64 * 1024,
            ..Limits::default()
        },
        ..ServerOptions::default()
    }
}

/// A served connection over a pipe of `buffer` bytes each way, created with the options'
/// limits; the peer's end is raw bytes.
async fn served(buffer: usize, options: &ServerOptions) -> (ServerConnection, DuplexStream) {
    let (a, b) = tokio::io::duplex(buffer);
    let ws =
        WebSocketStream::from_raw_socket(a, Role::Server, Some(options.limits.websocket_config()))
            .await;
    (serve(ws, options).unwrap(), b)
}

async fn closed_event(events: &mut tokio::sync::mpsc::Receiver<ConnectionEvent>) -> CloseCause {
    loop {
        match timeout(LIMIT, events.recv())
            .await
            .expect("the connection ends in time")
        {
            Some(ConnectionEvent::Closed(cause)) => return cause,
            Some(_) => {}
            None => panic!("events ended without Closed"),
        }
    }
}

fn json_ping(seq: u64) -> Vec<u8> {
    frame(
        0x80 | TEXT,
        format!(r#"{{"type":"ping","seq":{seq}}}"#).as_bytes(),
        Some(MASK),
    )
}

/// Keeps the application's sender busy with 8 KiB binary messages.
fn feed(conn: &ServerConnection) -> tokio::task::JoinHandle<()> {
    let sender = conn.sender.clone();
    tokio::spawn(
        async move { while sender.send(Message::binary(vec![0u8; 8192])).await.is_ok() {} },
    )
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_pings_but_reads_nothing_is_closed_as_write_stalled() {
    // The peer pings every second, so it is never idle by reads; it takes none of the 8 KiB
    // frame the writer is stuck on.
    let (mut conn, mut peer) = served(1024, &options()).await;
    let start = Instant::now();
    let feeder = feed(&conn);
    let pinger = tokio::spawn(async move {
        for seq in 0.. {
            if peer.write_all(&json_ping(seq)).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    assert_eq!(
        closed_event(&mut conn.events).await,
        CloseCause::WriteStalled
    );
    assert!(
        start.elapsed() <= IDLE + Duration::from_secs(1),
        "closed after {:?}",
        start.elapsed()
    );
    feeder.abort();
    pinger.abort();
}

#[tokio::test(start_paused = true)]
async fn a_violation_while_a_write_is_stuck_ends_the_connection_with_its_code() {
    let (mut conn, mut peer) = served(1024, &options()).await;
    let feeder = feed(&conn);
    // Let the writer get stuck on its first 8 KiB frame.
    tokio::time::sleep(Duration::from_millis(10)).await;
    let start = Instant::now();
    // A frame header announcing 2 MiB, over the 1 MiB frame limit.
    peer.write_all(&header(0x80 | BINARY, 2 << 20, Some(MASK)))
        .await
        .unwrap();
    let cause = closed_event(&mut conn.events).await;
    assert!(
        matches!(cause, CloseCause::Violation { code: 1009, .. }),
        "{cause:?}"
    );
    assert!(
        start.elapsed() <= LINGER,
        "ended after {:?}",
        start.elapsed()
    );
    feeder.abort();
}

#[tokio::test(start_paused = true)]
async fn the_peers_close_while_a_write_is_stuck_ends_the_connection_as_the_peers() {
    let (mut conn, mut peer) = served(1024, &options()).await;
    let feeder = feed(&conn);
    tokio::time::sleep(Duration::from_millis(10)).await;
    let start = Instant::now();
    peer.write_all(&frame(0x80 | CLOSE, &1000u16.to_be_bytes(), Some(MASK)))
        .await
        .unwrap();
    assert_eq!(
        closed_event(&mut conn.events).await,
        CloseCause::Peer { code: Some(1000) }
    );
    assert!(
        start.elapsed() <= LINGER,
        "ended after {:?}",
        start.elapsed()
    );
    feeder.abort();
}

#[tokio::test(start_paused = true)]
async fn a_close_is_sent_within_a_second_or_not_at_all_even_behind_unread_pongs() {
    // A ping flood from a peer that reads nothing: the pongs owed to it do not fit in the
    // 16-byte pipe, and the 1008 close is decided behind them. The server's own pings are
    // 10 s apart, so no timer of theirs happens to end the wait.
    let options = ServerOptions {
        config: ServerConfig {
            ping_interval: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            min_client_ping_interval: Duration::from_secs(5),
            max_ping_strikes: 2,
        },
        ..options()
    };
    let (mut conn, mut peer) = served(16, &options).await;
    let start = Instant::now();
    let flood = tokio::spawn(async move {
        for seq in 0..12 {
            peer.write_all(&json_ping(seq)).await.unwrap();
        }
        peer
    });
    assert_eq!(
        closed_event(&mut conn.events).await,
        CloseCause::Heartbeat(CloseReason::TooManyPings)
    );
    assert!(
        start.elapsed() <= LINGER,
        "ended after {:?}",
        start.elapsed()
    );
    drop(flood);
}

#[tokio::test(start_paused = true)]
async fn the_reader_lets_go_within_a_second_of_the_close_while_it_holds_a_message() {
    // The application takes nothing. The peer sends a 70 KiB message (over the 64 KiB budget
    // on its own) and goes silent: closed 1011 at the idle timeout. Then it sends 40 KiB more,
    // which the reader cannot queue, and reads on: the socket ends within the linger.
    let (conn, mut peer) = served(256 * 1024, &options()).await;
    peer.write_all(&frame(0x80 | BINARY, &vec![1; 70 * 1024], Some(MASK)))
        .await
        .unwrap();
    let code = timeout(LIMIT, async {
        loop {
            let (opcode, payload) = read_frame(&mut peer).await.unwrap();
            if opcode == CLOSE {
                break u16::from_be_bytes([payload[0], payload[1]]);
            }
        }
    })
    .await
    .expect("a close frame in time");
    assert_eq!(code, 1011);
    let closed_at = Instant::now();
    peer.write_all(&frame(0x80 | BINARY, &vec![2; 40 * 1024], Some(MASK)))
        .await
        .unwrap();
    let mut rest = Vec::new();
    timeout(LIMIT, peer.read_to_end(&mut rest))
        .await
        .expect("the server lets the socket go")
        .unwrap();
    assert!(
        closed_at.elapsed() <= LINGER,
        "socket held {:?} after the close",
        closed_at.elapsed()
    );
    drop(conn);
}

#[tokio::test(start_paused = true)]
async fn an_application_that_lets_go_of_both_sides_closes_with_1001() {
    let (conn, mut peer) = served(64 * 1024, &options()).await;
    let ServerConnection {
        messages,
        sender,
        mut events,
        ..
    } = conn;
    drop(messages);
    drop(sender);
    let start = Instant::now();
    let pinger = tokio::spawn({
        async move {
            let code = timeout(LIMIT, async {
                for seq in 0.. {
                    peer.write_all(&json_ping(seq)).await.unwrap();
                    let next = timeout(Duration::from_secs(1), async {
                        loop {
                            let (opcode, payload) = read_frame(&mut peer).await.unwrap();
                            if opcode == CLOSE {
                                break u16::from_be_bytes([payload[0], payload[1]]);
                            }
                        }
                    });
                    if let Ok(code) = next.await {
                        return code;
                    }
                }
                unreachable!()
            })
            .await
            .expect("a close frame in time");
            (code, Instant::now())
        }
    });
    assert_eq!(closed_event(&mut events).await, CloseCause::Application);
    let (code, at) = pinger.await.unwrap();
    assert_eq!(code, 1001);
    assert!(at - start < LINGER, "closed after {:?}", at - start);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_whole_connection_closes_it_with_1001() {
    let (conn, mut peer) = served(64 * 1024, &options()).await;
    drop(conn);
    let start = Instant::now();
    let code = timeout(LIMIT, async {
        for seq in 0.. {
            peer.write_all(&json_ping(seq)).await.unwrap();
            let next = timeout(Duration::from_secs(1), async {
                loop {
                    let (opcode, payload) = read_frame(&mut peer).await.unwrap();
                    if opcode == CLOSE {
                        break u16::from_be_bytes([payload[0], payload[1]]);
                    }
                }
            });
            if let Ok(code) = next.await {
                return code;
            }
        }
        unreachable!()
    })
    .await
    .expect("a close frame in time");
    assert_eq!(code, 1001);
    assert!(
        start.elapsed() < LINGER,
        "closed after {:?}",
        start.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn dropping_only_the_inbox_or_only_the_sender_keeps_the_connection() {
    for keep_sender in [true, false] {
        let (conn, peer) = served(64 * 1024, &options()).await;
        let ServerConnection {
            messages,
            sender,
            mut events,
            ..
        } = conn;
        let kept: Box<dyn std::any::Any> = if keep_sender {
            drop(messages);
            Box::new(sender)
        } else {
            drop(sender);
            Box::new(messages)
        };
        // The peer answers the server's pings for 10 s (past the 3 s idle timeout).
        let mut peer = WebSocketStream::from_raw_socket(peer, Role::Client, None).await;
        let answered = timeout(Duration::from_secs(10), async {
            while let Some(Ok(m)) = peer.next().await {
                if let Message::Text(t) = m {
                    let pong = t.as_str().replace("ping", "pong");
                    peer.send(Message::text(pong)).await.unwrap();
                }
            }
        })
        .await;
        assert!(
            answered.is_err(),
            "keep_sender={keep_sender}: the connection ended"
        );
        while let Ok(e) = events.try_recv() {
            assert!(
                !matches!(e, ConnectionEvent::Closed(_)),
                "keep_sender={keep_sender}: {e:?}"
            );
        }
        drop(kept);
    }
}

#[tokio::test(start_paused = true)]
async fn closed_is_delivered_after_more_events_than_the_channel_holds() {
    // Nobody drains the events while 70 round trips (more than the 64 slots) are reported.
    let (mut conn, peer) = served(64 * 1024, &options()).await;
    let mut peer = WebSocketStream::from_raw_socket(peer, Role::Client, None).await;
    let mut pongs = 0;
    while pongs < 70 {
        let m = timeout(LIMIT, peer.next())
            .await
            .expect("a ping in time")
            .expect("open")
            .expect("a frame");
        if let Message::Text(t) = m {
            peer.send(Message::text(t.as_str().replace("ping", "pong")))
                .await
                .unwrap();
            pongs += 1;
        }
    }
    drop(peer);
    // The inbox ends once the reader and the writer have both ended: Closed was sent by then.
    let rest = timeout(LIMIT, conn.messages.recv())
        .await
        .expect("the connection ends");
    assert!(rest.is_none());
    let mut events = Vec::new();
    while let Some(e) = timeout(LIMIT, conn.events.recv())
        .await
        .expect("events end in time")
    {
        events.push(e);
    }
    assert!(events.len() >= 63, "{} events", events.len());
    assert!(
        matches!(events.last(), Some(ConnectionEvent::Closed(_))),
        "the last event: {:?}",
        events.last()
    );
}

#[tokio::test(start_paused = true)]
async fn sending_a_close_message_closes_the_connection_as_the_applications() {
    let (mut conn, mut peer) = served(64 * 1024, &options()).await;
    conn.sender.send(Message::Close(None)).await.unwrap();
    let (opcode, _) = timeout(LIMIT, read_frame(&mut peer))
        .await
        .expect("a frame in time")
        .unwrap();
    assert_eq!(opcode, CLOSE);
    assert_eq!(
        closed_event(&mut conn.events).await,
        CloseCause::Application
    );
}

fn json_pong(seq: u64) -> Vec<u8> {
    frame(
        0x80 | TEXT,
        format!(r#"{{"type":"pong","seq":{seq}}}"#).as_bytes(),
        Some(MASK),
    )
}

/// The seq of a heartbeat text frame: (`"ping"` or `"pong"`, seq).
fn heartbeat_of(payload: &[u8]) -> (String, u64) {
    let text = String::from_utf8(payload.to_vec()).unwrap();
    let kind = if text.contains(r#""ping""#) {
        "ping"
    } else {
        "pong"
    };
    let seq = text
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('}')
        .parse()
        .unwrap();
    (kind.to_owned(), seq)
}

#[tokio::test(start_paused = true)]
async fn nothing_follows_closed_even_if_the_peer_sends_during_the_linger() {
    // The application closes; the peer, which has not read our close frame yet, answers the
    // server's ping, floods pings and sends a message while the reader lingers for its close
    // frame. None of it reaches the core or the application: no round trip, no strike, no
    // second close, no message after Closed.
    let (mut conn, mut peer) = served(64 * 1024, &options()).await;
    let (opcode, payload) = timeout(LIMIT, read_frame(&mut peer))
        .await
        .expect("the server's ping in time")
        .unwrap();
    assert_eq!(opcode, TEXT);
    let (kind, seq) = heartbeat_of(&payload);
    assert_eq!(kind, "ping");
    conn.sender.send(Message::Close(None)).await.unwrap();
    let mut before = Vec::new();
    loop {
        let e = timeout(LIMIT, conn.events.recv())
            .await
            .expect("Closed in time")
            .expect("events open");
        let closed = matches!(e, ConnectionEvent::Closed(_));
        before.push(e);
        if closed {
            break;
        }
    }
    assert_eq!(before, [ConnectionEvent::Closed(CloseCause::Application)]);
    peer.write_all(&json_pong(seq)).await.unwrap();
    for s in 0..6 {
        peer.write_all(&json_ping(s)).await.unwrap();
    }
    peer.write_all(&frame(0x80 | TEXT, b"after the close", Some(MASK)))
        .await
        .unwrap();
    // The inbox and the events end once the reader has let go (within its linger).
    let message = timeout(LIMIT, conn.messages.recv())
        .await
        .expect("the inbox ends in time");
    assert_eq!(message, None);
    let mut after = Vec::new();
    while let Some(e) = timeout(LIMIT, conn.events.recv())
        .await
        .expect("the events end in time")
    {
        after.push(e);
    }
    assert_eq!(after, []);
}

#[tokio::test(start_paused = true)]
async fn heartbeat_frames_owed_when_a_close_is_decided_all_go_before_the_close_frame() {
    // A 1000-byte application frame fills the 64-byte pipe; four pongs and two of the server's
    // pings queue behind it. The peer takes the frame, so the writer starts on the heartbeat
    // frames and gets stuck on the third; then a ping flood decides a 1008 close. Every frame
    // owed still goes out, in order, before the close frame.
    let (mut conn, peer) = served(64, &options()).await;
    let (mut rd, mut wr) = tokio::io::split(peer);
    conn.sender
        .send(Message::binary(vec![7u8; 1000]))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    for seq in 0..4 {
        wr.write_all(&json_ping(seq)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    let (opcode, payload) = timeout(LIMIT, read_frame(&mut rd))
        .await
        .expect("the application frame in time")
        .unwrap();
    assert_eq!((opcode, payload.len()), (BINARY, 1000));
    tokio::time::sleep(Duration::from_millis(10)).await;
    for seq in 100..112 {
        wr.write_all(&json_ping(seq)).await.unwrap();
    }
    let mut pongs = Vec::new();
    let mut pings = Vec::new();
    let code = timeout(LIMIT, async {
        loop {
            let (opcode, payload) = read_frame(&mut rd).await.unwrap();
            if opcode == CLOSE {
                break u16::from_be_bytes([payload[0], payload[1]]);
            }
            match heartbeat_of(&payload) {
                (kind, seq) if kind == "pong" => pongs.push(seq),
                (_, seq) => pings.push(seq),
            }
        }
    })
    .await
    .expect("a close frame in time");
    assert_eq!(code, 1008);
    assert_eq!(pongs[..4], [0, 1, 2, 3], "pongs {pongs:?}");
    assert!(pongs[4..].iter().all(|s| *s >= 100), "pongs {pongs:?}");
    assert_eq!(pings, [0, 1], "the server's pings");
    assert_eq!(
        closed_event(&mut conn.events).await,
        CloseCause::Heartbeat(CloseReason::TooManyPings)
    );
}

/// The peer pings every 600 ms and reads nothing.
fn pinger(mut peer: DuplexStream) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        for seq in 0.. {
            if peer.write_all(&json_ping(seq)).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(600)).await;
        }
    })
}

#[tokio::test(start_paused = true)]
async fn the_applications_close_goes_after_the_messages_queued_before_it() {
    let (conn, mut peer) = served(64 * 1024, &options()).await;
    for m in ["first", "second"] {
        conn.sender.send(Message::text(m)).await.unwrap();
    }
    conn.sender.send(Message::Close(None)).await.unwrap();
    let mut seen = Vec::new();
    timeout(LIMIT, async {
        loop {
            let (opcode, payload) = read_frame(&mut peer).await.unwrap();
            seen.push((opcode, String::from_utf8(payload).unwrap()));
            if opcode == CLOSE {
                break;
            }
        }
    })
    .await
    .expect("a close frame in time");
    assert_eq!(
        seen,
        [
            (TEXT, "first".to_owned()),
            (TEXT, "second".to_owned()),
            (CLOSE, String::new())
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_close_behind_a_message_the_peer_does_not_take_ends_as_write_stalled() {
    // The application's Close, or its letting go (1001), queues behind a 64 KiB message; the
    // peer pings (so it is not idle) but takes none of it. The message stalls idle_timeout
    // after its write started and the connection ends as WriteStalled, no close frame sent.
    for let_go in [false, true] {
        let (conn, peer) = served(1024, &options()).await;
        let ServerConnection {
            messages,
            sender,
            mut events,
            ..
        } = conn;
        let start = Instant::now();
        sender
            .send(Message::binary(vec![0u8; 64 * 1024]))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        if let_go {
            drop(sender);
            drop(messages);
        } else {
            sender.send(Message::Close(None)).await.unwrap();
        }
        let pinging = pinger(peer);
        assert_eq!(
            closed_event(&mut events).await,
            CloseCause::WriteStalled,
            "let_go={let_go}"
        );
        let waited = start.elapsed();
        assert!(
            waited >= IDLE && waited <= IDLE + Duration::from_millis(200),
            "let_go={let_go}: ended after {waited:?}"
        );
        pinging.abort();
    }
}

#[tokio::test(start_paused = true)]
async fn a_steady_reader_too_slow_for_one_large_frame_is_closed_as_write_stalled() {
    // The peer reads 1 KiB every 100 ms (10 KiB/s) and pings every 600 ms. A 256 KiB frame
    // needs 85 KiB/s to be taken within the 3 s idle timeout: the rule is per frame, so this
    // peer is closed although it reads all the time.
    let (mut conn, peer) = served(4096, &options()).await;
    let (mut rd, mut wr) = tokio::io::split(peer);
    let taken = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = std::sync::Arc::clone(&taken);
    let reader = tokio::spawn(async move {
        let mut buf = [0u8; 1024];
        while let Ok(n @ 1..) = rd.read(&mut buf).await {
            counted.fetch_add(n, std::sync::atomic::Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let pinging = tokio::spawn(async move {
        for seq in 0.. {
            if wr.write_all(&json_ping(seq)).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(600)).await;
        }
    });
    let start = Instant::now();
    conn.sender
        .send(Message::binary(vec![0u8; 256 * 1024]))
        .await
        .unwrap();
    assert_eq!(
        closed_event(&mut conn.events).await,
        CloseCause::WriteStalled
    );
    let waited = start.elapsed();
    assert!(
        waited >= IDLE && waited <= IDLE + Duration::from_millis(200),
        "ended after {waited:?}"
    );
    let taken = taken.load(std::sync::atomic::Ordering::SeqCst);
    assert!(taken >= 25 * 1024, "the peer read {taken} bytes");
    reader.abort();
    pinging.abort();
}

#[tokio::test(start_paused = true)]
async fn a_write_stall_check_that_runs_late_is_put_off_once_by_the_stall_grace() {
    // A 64 KiB frame the peer takes nothing of until 4.5 s; this process does not run from
    // 2 s to 4.5 s (the clock jumps), so the stall check due at 3 s runs 1.5 s late, more than
    // STALL_GRACE (1 s). It is put off by STALL_GRACE, the peer takes the frame meanwhile, and
    // the connection lives on.
    let (mut conn, peer) = served(4096, &options()).await;
    let (mut rd, mut wr) = tokio::io::split(peer);
    let pinging = tokio::spawn(async move {
        for seq in 0.. {
            if wr.write_all(&json_ping(seq)).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(600)).await;
        }
    });
    let (go, ready) = tokio::sync::oneshot::channel::<()>();
    let reader = tokio::spawn(async move {
        ready.await.unwrap();
        let (opcode, payload) = read_frame(&mut rd).await.unwrap();
        assert_eq!((opcode, payload.len()), (BINARY, 64 * 1024));
        // Then whatever follows (the server's pings), for as long as the test runs.
        let mut buf = [0u8; 4096];
        while let Ok(1..) = rd.read(&mut buf).await {}
    });
    let start = Instant::now();
    conn.sender
        .send(Message::binary(vec![0u8; 64 * 1024]))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    tokio::time::advance(Duration::from_millis(2500)).await;
    // The writer's late check runs first (at 4.5 s); the peer reads from 4.501 s.
    tokio::time::sleep(Duration::from_millis(1)).await;
    go.send(()).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    while let Ok(e) = conn.events.try_recv() {
        assert!(
            !matches!(e, ConnectionEvent::Closed(_)),
            "{e:?} after {:?}",
            start.elapsed()
        );
    }
    assert!(!reader.is_finished(), "the peer's reader ended");
    reader.abort();
    pinging.abort();
}
