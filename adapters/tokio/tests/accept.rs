//! The library's accept path: a whole-handshake timeout, an optional connection limit, and a
//! hook that vets the upgrade request. In-memory pipes under tokio's paused clock.

mod common;

use std::time::Duration;

use common::handshake;
use heartbeat_tokio::{
    accept, accept_with, AcceptError, ConnectionEvent, ConnectionLimit, ServerConnection,
    ServerOptions,
};
use tokio::io::{AsyncWriteExt, DuplexStream};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::handshake::server::Request;
use tokio_tungstenite::tungstenite::http::StatusCode;

const LIMIT: Duration = Duration::from_secs(60);

#[tokio::test(start_paused = true)]
async fn a_handshake_that_never_completes_is_given_up_after_10_s() {
    let (srv, mut peer) = tokio::io::duplex(4096);
    peer.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    let start = tokio::time::Instant::now();
    let result = timeout(LIMIT, accept(srv, &ServerOptions::default()))
        .await
        .expect("accept gives up by itself");
    assert!(matches!(
        result,
        Err(AcceptError::HandshakeTimeout(t)) if t == Duration::from_secs(10)
    ));
    assert_eq!(start.elapsed(), Duration::from_secs(10));
}

#[tokio::test(start_paused = true)]
async fn a_slow_drip_of_bytes_does_not_extend_the_handshake_timeout() {
    // One byte every 5 s: every read makes progress, the whole handshake still has 10 s.
    let (srv, mut peer) = tokio::io::duplex(4096);
    let drip = tokio::spawn(async move {
        for b in b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Padding: aaaaaaaaaaaaaaaa" {
            if peer.write_all(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    });
    let start = tokio::time::Instant::now();
    let result = timeout(LIMIT * 10, accept(srv, &ServerOptions::default()))
        .await
        .expect("accept gives up by itself");
    assert!(matches!(result, Err(AcceptError::HandshakeTimeout(_))));
    assert_eq!(start.elapsed(), Duration::from_secs(10));
    drip.abort();
}

/// Runs `accept` on one end of a pipe and a hand-made handshake on the other; the response's
/// status line, the accept result, and the client's end.
async fn upgrade<F, Fut>(
    path: &str,
    extra: &[&str],
    accept: F,
) -> (String, Result<ServerConnection, AcceptError>, DuplexStream)
where
    F: FnOnce(DuplexStream) -> Fut,
    Fut: std::future::Future<Output = Result<ServerConnection, AcceptError>> + Send + 'static,
{
    let (srv, mut peer) = tokio::io::duplex(4096);
    let server = tokio::spawn(accept(srv));
    let head = timeout(LIMIT, handshake(&mut peer, path, extra))
        .await
        .expect("a response in time")
        .expect("a response");
    let result = timeout(LIMIT, server).await.unwrap().unwrap();
    let status = head.lines().next().unwrap_or_default().to_owned();
    (status, result, peer)
}

#[tokio::test(start_paused = true)]
async fn over_the_connection_limit_the_upgrade_is_refused_with_503_until_a_slot_frees() {
    let limit = ConnectionLimit::new(1);
    let options = ServerOptions {
        max_connections: Some(limit.clone()),
        ..ServerOptions::default()
    };
    let o = options.clone();
    let (status, first, first_peer) =
        upgrade("/", &[], move |s| async move { accept(s, &o).await }).await;
    assert_eq!(status, "HTTP/1.1 101 Switching Protocols");
    let mut first = first.unwrap();
    assert_eq!(limit.available(), 0);

    let o = options.clone();
    let (status, second, _) = upgrade("/", &[], move |s| async move { accept(s, &o).await }).await;
    assert_eq!(status, "HTTP/1.1 503 Service Unavailable");
    assert!(matches!(
        second,
        Err(AcceptError::TooManyConnections { max: 1 })
    ));

    // The first peer goes away; once its connection is closed, its slot is free again.
    drop(first_peer);
    loop {
        match timeout(LIMIT, first.events.recv()).await.unwrap() {
            Some(ConnectionEvent::Closed(_)) => break,
            Some(_) => {}
            None => panic!("no Closed event"),
        }
    }
    assert_eq!(limit.available(), 1);
    let o = options.clone();
    let (status, third, _) = upgrade("/", &[], move |s| async move { accept(s, &o).await }).await;
    assert_eq!(status, "HTTP/1.1 101 Switching Protocols");
    assert!(third.is_ok());
}

/// Lets in upgrades on `/ws` from `https://app.example` only.
#[allow(clippy::result_large_err)]
fn allow_list(request: &Request) -> Result<(), StatusCode> {
    if request.uri().path() != "/ws" {
        return Err(StatusCode::NOT_FOUND);
    }
    match request.headers().get("origin").map(|o| o.as_bytes()) {
        Some(b"https://app.example") => Ok(()),
        _ => Err(StatusCode::FORBIDDEN),
    }
}

#[tokio::test(start_paused = true)]
async fn the_vetting_hook_lets_in_the_allowed_path_and_origin_only() {
    let cases: [(&str, &[&str], &str, Option<u16>); 4] = [
        (
            "/ws",
            &["Origin: https://app.example"],
            "HTTP/1.1 101 Switching Protocols",
            None,
        ),
        (
            "/admin",
            &["Origin: https://app.example"],
            "HTTP/1.1 404 Not Found",
            Some(404),
        ),
        (
            "/ws",
            &["Origin: https://evil.example"],
            "HTTP/1.1 403 Forbidden",
            Some(403),
        ),
        ("/ws", &[], "HTTP/1.1 403 Forbidden", Some(403)),
    ];
    for (path, extra, expected, refused) in cases {
        let (status, result, _peer) = upgrade(path, extra, |s| async move {
            accept_with(s, &ServerOptions::default(), allow_list).await
        })
        .await;
        assert_eq!(status, expected, "{path} {extra:?}");
        match (result, refused) {
            (Ok(_), None) => {}
            (Err(AcceptError::Rejected { status }), Some(code)) => assert_eq!(status, code),
            (other, _) => panic!("{path} {extra:?}: {other:?}"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_handshake_in_progress_holds_a_connection_slot() {
    let limit = ConnectionLimit::new(1);
    let options = ServerOptions {
        max_connections: Some(limit.clone()),
        ..ServerOptions::default()
    };
    let (srv, mut peer) = tokio::io::duplex(4096);
    peer.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    let pending = tokio::spawn(async move { accept(srv, &options).await });
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(
        limit.available(),
        0,
        "the unfinished handshake holds the slot"
    );
    let result = timeout(LIMIT, pending).await.unwrap().unwrap();
    assert!(matches!(result, Err(AcceptError::HandshakeTimeout(_))));
    assert_eq!(
        limit.available(),
        1,
        "given back when the handshake is given up"
    );
}
