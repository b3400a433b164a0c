//! Byte budgets hold what they say, both ways, and the client refuses oversize frames too.
//! In-memory pipes under tokio's paused clock.

mod common;

use std::time::Duration;

use futures_util::SinkExt;
use heartbeat_core::ServerConfig;
use heartbeat_tokio::queue::MESSAGE_OVERHEAD;
use heartbeat_tokio::{serve, ClientOptions, Limits, SendError, ServerOptions};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

const LIMIT: Duration = Duration::from_secs(30);
const BUDGET: usize = 64 * 1024;
const BODY: usize = 8 * 1024;

fn options() -> ServerOptions {
    ServerOptions {
        config: ServerConfig {
            ping_interval: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(3),
            min_client_ping_interval: Duration::from_millis(500),
            max_ping_strikes: 2,
        },
        limits: Limits {
            inbound_budget: BUDGET,
            outbound_budget: BUDGET,
            ..Limits::default()
        },
        ..ServerOptions::default()
    }
}

/// Messages of BODY bytes that fit in BUDGET together.
const FIT: usize = BUDGET / (BODY + MESSAGE_OVERHEAD);

#[tokio::test(start_paused = true)]
async fn the_inbound_budget_bounds_what_waits_for_the_application() {
    let (a, b) = tokio::io::duplex(256 * 1024);
    let srv = WebSocketStream::from_raw_socket(a, Role::Server, None).await;
    let mut peer = WebSocketStream::from_raw_socket(b, Role::Client, None).await;
    let mut conn = serve(srv, &options()).unwrap();
    for i in 0..20 {
        peer.send(Message::text(format!("{i:02}{}", "x".repeat(BODY - 2))))
            .await
            .unwrap();
    }
    // Let the reader run until it waits for the application.
    tokio::time::sleep(Duration::from_millis(1)).await;
    let mut queued = 0;
    while conn.messages.try_recv().is_ok() {
        queued += 1;
    }
    assert_eq!(FIT, 7);
    assert_eq!(
        queued,
        FIT + 1,
        "messages are queued while the bytes queued are below 64 KiB, the last one taking \
         them over; the one the reader holds is excluded"
    );
    // Taking them freed the budget: the reader goes on, in order.
    let next = timeout(LIMIT, conn.messages.recv()).await.unwrap().unwrap();
    assert!(next
        .into_text()
        .unwrap()
        .starts_with(&format!("{:02}", FIT + 1)));
}

#[tokio::test(start_paused = true)]
async fn the_outbound_budget_bounds_what_waits_for_the_peer() {
    // The peer reads nothing; the pipe is tiny: the writer is stuck on the first message.
    let (a, _b) = tokio::io::duplex(1024);
    let srv = WebSocketStream::from_raw_socket(a, Role::Server, None).await;
    let conn = serve(srv, &options()).unwrap();
    let body = "x".repeat(BODY);
    let mut queued = 0;
    let full = loop {
        match conn.sender.try_send(Message::text(body.clone())) {
            Ok(()) => queued += 1,
            Err(e) => break e,
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    assert!(matches!(full, SendError::Full(_)), "{full:?}");
    assert_eq!(queued, FIT, "the message being written still counts");
    // `send` waits rather than queue beyond the budget.
    assert!(timeout(
        Duration::from_millis(500),
        conn.sender.send(Message::text(body))
    )
    .await
    .is_err());
}

#[tokio::test(start_paused = true)]
async fn a_client_refuses_a_frame_over_its_limit_with_1009() {
    let options = ClientOptions {
        limits: Limits {
            max_frame_size: 64 * 1024,
            ..Limits::default()
        },
        ..ClientOptions::default()
    };
    let config = options.limits.websocket_config();
    let header = common::header(0x80 | common::TEXT, 64 * 1024 + 1, None);
    let code = common::client_close_code(header, options, Some(config), LIMIT).await;
    assert_eq!(code, Some(1009));
}

#[tokio::test(start_paused = true)]
async fn a_live_peer_is_not_closed_while_the_application_brings_its_queue_below_the_budget() {
    // 7 x 8 KiB queue below the 64 KiB budget, then one 60 KiB message that does not fit what
    // is left. The peer pings every second and reads everything; the application takes one
    // message every 2 s, so its queue is below the budget again within the 3 s idle timeout.
    let (a, b) = tokio::io::duplex(256 * 1024);
    let options = options();
    let srv =
        WebSocketStream::from_raw_socket(a, Role::Server, Some(options.limits.websocket_config()))
            .await;
    let peer = WebSocketStream::from_raw_socket(b, Role::Client, None).await;
    let mut conn = serve(srv, &options).unwrap();
    let (mut sink, mut stream) = futures_util::StreamExt::split(peer);
    let drain = tokio::spawn(async move {
        while let Some(Ok(_)) = futures_util::StreamExt::next(&mut stream).await {}
    });
    let peer = tokio::spawn(async move {
        for i in 0..7u8 {
            sink.send(Message::binary(vec![i; 8 * 1024])).await.unwrap();
        }
        sink.send(Message::binary(vec![7; 60 * 1024]))
            .await
            .unwrap();
        for seq in 0..30 {
            let ping = Message::text(format!(r#"{{"type":"ping","seq":{seq}}}"#));
            if timeout(Duration::from_secs(1), sink.send(ping))
                .await
                .is_err()
            {
                return seq;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        30
    });
    let start = tokio::time::Instant::now();
    let mut taken = Vec::new();
    while start.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_secs(2)).await;
        if let Ok(m) = conn.messages.try_recv() {
            taken.push(m.len());
        }
        if let Ok(heartbeat_tokio::ConnectionEvent::Closed(cause)) = conn.events.try_recv() {
            panic!(
                "the live peer was closed after {:?}: {cause:?}",
                start.elapsed()
            );
        }
    }
    assert_eq!(
        timeout(LIMIT, peer).await.unwrap().unwrap(),
        30,
        "every ping went out"
    );
    assert_eq!(taken.len(), 8, "{taken:?}");
    assert_eq!(taken[7], 60 * 1024);
    drain.abort();
}

#[tokio::test(start_paused = true)]
async fn the_size_limits_are_those_of_the_websocket_config_the_stream_was_created_with() {
    // 2 MiB, over the default 1 MiB limits. Created without `Limits::websocket_config`, the
    // stream has tungstenite's own limits (64 MiB / 16 MiB) and the message goes through.
    for (config, refused) in [
        (None, false),
        (Some(Limits::default().websocket_config()), true),
    ] {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let srv = WebSocketStream::from_raw_socket(a, Role::Server, config).await;
        let mut peer = WebSocketStream::from_raw_socket(b, Role::Client, None).await;
        let mut conn = serve(srv, &ServerOptions::default()).unwrap();
        let sending = tokio::spawn(async move {
            let _ = peer.send(Message::binary(vec![b'x'; 2 << 20])).await;
            peer
        });
        // The message's length, or how the connection ended.
        let outcome = timeout(LIMIT, async {
            if let Some(m) = conn.messages.recv().await {
                return Ok(m.len());
            }
            loop {
                match conn.events.recv().await {
                    Some(heartbeat_tokio::ConnectionEvent::Closed(c)) => break Err(Some(c)),
                    Some(_) => {}
                    None => break Err(None),
                }
            }
        })
        .await
        .expect("an outcome in time");
        match (refused, outcome) {
            (false, Ok(len)) => assert_eq!(len, 2 << 20),
            (true, Err(Some(heartbeat_tokio::CloseCause::Violation { code: 1009, .. }))) => {}
            (refused, other) => panic!("refused={refused}: {other:?}"),
        }
        drop(sending);
    }
}
