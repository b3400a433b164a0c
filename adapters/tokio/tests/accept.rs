//! The library's accept path: a whole-handshake timeout, an optional connection limit, and a
//! hook that vets the upgrade request. In-memory pipes under tokio's paused clock.

mod common;

use std::time::Duration;

use heartbeat_tokio::{accept, ServerOptions};
use tokio::io::AsyncWriteExt;
use tokio::time::timeout;

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
    assert!(result.is_err());
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
    assert!(result.is_err());
    assert_eq!(start.elapsed(), Duration::from_secs(10));
    drip.abort();
}
