//! The client against servers that leave it stuck: one that floods pings and never reads, one
//! that dies while the client's application takes nothing. In-memory pipes under tokio's paused
//! clock; every wait bounded.

mod common;

use std::time::Duration;

use common::{frame, read_frame, TEXT};
use heartbeat_core::{Config, Event, ReconnectReason, Status};
use heartbeat_tokio::{connect_with, ClientHandle, ClientOptions, Limits, STALL_GRACE};
use tokio::io::{AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;
use tokio::time::{timeout, Instant};
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

const LIMIT: Duration = Duration::from_secs(120);

fn options(limits: Limits) -> ClientOptions {
    ClientOptions {
        config: common::client_config(),
        seed: 7,
        limits,
        ..ClientOptions::default()
    }
}

/// The core's own figures for [`config`].
fn guarantees() -> heartbeat_core::Guarantees {
    Config {
        client: common::client_config(),
        ..Config::default()
    }
    .guarantees()
}

/// A client whose every connection is a pipe of `buffer` bytes each way; the server's raw end of
/// each connection comes out of the receiver, in order.
fn client(buffer: usize, limits: Limits) -> (ClientHandle, mpsc::UnboundedReceiver<DuplexStream>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let client = connect_with(
        move || {
            let (a, b) = tokio::io::duplex(buffer);
            let _ = tx.send(a);
            async move {
                Ok::<_, tokio_tungstenite::tungstenite::Error>(
                    WebSocketStream::from_raw_socket(b, Role::Client, None).await,
                )
            }
        },
        options(limits),
    )
    .unwrap();
    (client, rx)
}

async fn next_server(servers: &mut mpsc::UnboundedReceiver<DuplexStream>) -> DuplexStream {
    timeout(LIMIT, servers.recv())
        .await
        .expect("a connection in time")
        .expect("the client connects")
}

/// Events up to and including the first one `stop` accepts.
async fn events_until(client: &mut ClientHandle, stop: impl Fn(&Event) -> bool) -> Vec<Event> {
    let mut seen = Vec::new();
    loop {
        let e = timeout(LIMIT, client.events.recv())
            .await
            .expect("an event in time")
            .expect("events open");
        let done = stop(&e);
        seen.push(e);
        if done {
            return seen;
        }
    }
}

fn json_ping(seq: u64) -> Vec<u8> {
    frame(
        0x80 | TEXT,
        format!(r#"{{"type":"ping","seq":{seq}}}"#).as_bytes(),
        None,
    )
}

/// `count` server pings (unmasked text frames), back to back.
fn pings(from: u64, count: u64) -> Vec<u8> {
    (from..from + count).flat_map(json_ping).collect()
}

#[tokio::test(start_paused = true)]
async fn the_heartbeat_frames_owed_to_a_server_that_reads_nothing_stay_at_most_16() {
    // 5,000 pings from a server that reads nothing for a second (less than the write-stall
    // time), then reads everything. What reaches it: the pongs that fit in the 1 KiB pipe, the
    // one frame being written, and at most 16 owed; before the cap, every one of the 5,000
    // pongs waited in the client's memory.
    let (mut client, mut servers) = client(1024, Limits::default());
    let mut server = next_server(&mut servers).await;
    events_until(&mut client, |e| matches!(e, Event::Connected)).await;
    let flood = pings(0, 5_000);
    for chunk in flood.chunks(4096) {
        timeout(LIMIT, server.write_all(chunk))
            .await
            .expect("the client reads on")
            .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut pongs = 0;
    while let Ok(frame) = timeout(Duration::from_millis(300), read_frame(&mut server)).await {
        let (_, payload) = frame.unwrap();
        if String::from_utf8_lossy(&payload).contains("pong") {
            pongs += 1;
        }
    }
    // A client pong frame is 29-30 bytes (masked): at most 36 fit in 1 KiB.
    assert!(pongs >= 16, "{pongs} pongs");
    assert!(pongs <= 36 + 1 + 16, "{pongs} pongs reached the server");
    drop(client);
}

#[tokio::test(start_paused = true)]
async fn a_server_that_floods_pings_and_never_reads_is_left_after_the_write_stall_time() {
    // Every ping read is a sign of life, so the heartbeat alone would keep this connection
    // Healthy forever. The client's pong that the server does not take ends it instead.
    let stall_after = guarantees().client_tolerance;
    let (mut client, mut servers) = client(1024, Limits::default());
    let mut server = next_server(&mut servers).await;
    events_until(&mut client, |e| matches!(e, Event::Connected)).await;
    let start = Instant::now();
    let flood = tokio::spawn(async move {
        for round in 0.. {
            if server.write_all(&pings(round * 100, 100)).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let seen = events_until(&mut client, |e| matches!(e, Event::Reconnect { .. })).await;
    let waited = start.elapsed();
    assert!(
        matches!(
            seen.last(),
            Some(Event::Reconnect {
                reason: ReconnectReason::ConnectionClosed,
                ..
            })
        ),
        "{seen:?}"
    );
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, Event::PongMissed { .. } | Event::Slow { .. })),
        "{seen:?}"
    );
    // The pipe fills within the first round; the stuck write is given up `stall_after` later
    // (put off by STALL_GRACE at most once, if the check ran late).
    assert!(
        waited <= stall_after + STALL_GRACE + Duration::from_millis(100),
        "left after {waited:?}, write-stall time {stall_after:?}"
    );
    assert!(waited >= stall_after, "left after {waited:?}");
    // It connects again.
    next_server(&mut servers).await;
    flood.abort();
    drop(client);
}

#[tokio::test(start_paused = true)]
async fn a_dead_server_is_given_up_while_the_application_takes_nothing() {
    // The server writes three 2000-byte messages and dies. The application takes none of them:
    // the first is queued (the queue was below its 1000-byte budget), the second is held and
    // nothing more is read, so the end of the stream goes unseen. What is not read earns no
    // credit: the pings go unanswered and the core gives the server up within its detection
    // bound. (Before, every timer tick counted the held message as a sign of life, and the
    // client stayed Healthy for as long as the application did not read.)
    let bound = guarantees().detection_bound;
    let (mut client, mut servers) = client(
        64 * 1024,
        Limits {
            inbound_budget: 1000,
            ..Limits::default()
        },
    );
    let mut server = next_server(&mut servers).await;
    for _ in 0..3 {
        server
            .write_all(&frame(0x80 | TEXT, &[b'x'; 2000], None))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(server);
    let died = Instant::now();
    let seen = events_until(&mut client, |e| matches!(e, Event::Reconnect { .. })).await;
    let waited = died.elapsed();
    assert!(
        matches!(
            seen.last(),
            Some(Event::Reconnect {
                reason: ReconnectReason::MissedPongs { missed: 4 },
                ..
            })
        ),
        "{seen:?}"
    );
    assert!(waited <= bound, "gave up after {waited:?}, bound {bound:?}");
    // What was read is still the application's, in order.
    for _ in 0..2 {
        let m = timeout(LIMIT, client.messages.recv())
            .await
            .expect("a message in time")
            .expect("messages open");
        assert_eq!(m.len(), 2000);
    }
    drop(client);
}

#[tokio::test(start_paused = true)]
async fn a_live_server_is_kept_while_a_slow_application_brings_its_queue_below_the_budget() {
    // The server sends a 2000-byte message every 100 ms and answers nothing; the application
    // takes one message every 1.5 s, less often than the server sends but more often than the
    // core's tolerance (3.8 s). Each take lets the client read one more frame, which counts.
    let tolerance = guarantees().client_tolerance;
    let every = Duration::from_millis(1500);
    assert!(every < tolerance);
    let (mut client, mut servers) = client(
        64 * 1024,
        Limits {
            inbound_budget: 1000,
            ..Limits::default()
        },
    );
    let server = next_server(&mut servers).await;
    let (mut rd, mut wr) = tokio::io::split(server);
    let sink = tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while tokio::io::AsyncReadExt::read(&mut rd, &mut buf)
            .await
            .is_ok_and(|n| n > 0)
        {}
    });
    let source = tokio::spawn(async move {
        for i in 0u32.. {
            let mut body = vec![b'x'; 2000];
            body[..4].copy_from_slice(&i.to_be_bytes().map(|b| b'a' + b % 26));
            if wr
                .write_all(&frame(0x80 | TEXT, &body, None))
                .await
                .is_err()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    events_until(&mut client, |e| matches!(e, Event::Connected)).await;
    for _ in 0..40 {
        tokio::time::sleep(every).await;
        let m = timeout(LIMIT, client.messages.recv())
            .await
            .expect("a message in time")
            .expect("messages open");
        assert_eq!(m.len(), 2000);
        assert_ne!(client.status.borrow().status, Status::Reconnecting);
    }
    while let Ok(e) = client.events.try_recv() {
        assert!(!matches!(e, Event::Reconnect { .. }), "{e:?}");
    }
    assert_eq!(client.status.borrow().status, Status::Healthy);
    assert_eq!(client.status.borrow().last_reconnect, None);
    source.abort();
    sink.abort();
    drop(client);
}
