//! A queued application message costs its own bytes, not the read buffer it was cut from.
//!
//! tungstenite 0.30 cuts frames out of its read buffer without copying, so a 1-byte message
//! queued for the application kept the whole 4 KiB (or larger) buffer it arrived in alive: a
//! peer alternating 1-byte messages with 4 KiB of Pong frames made one connection hold +88 MiB
//! under the default 1 MiB inbound budget. The only test in this file, so that no other test
//! shares the process whose resident memory it reads.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{frame, MASK};
use heartbeat_tokio::{serve, ServerOptions};
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

/// Resident memory of this process, in bytes (Linux `/proc/self/statm`, 4 KiB pages).
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("resident pages");
    pages * 4096
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_byte_messages_between_pongs_do_not_pin_their_read_buffers() {
    let options = ServerOptions::default();
    let before = resident_bytes();
    let (srv, mut peer) = tokio::io::duplex(64 * 1024);
    let ws = WebSocketStream::from_raw_socket(
        srv,
        Role::Server,
        Some(options.limits.websocket_config()),
    )
    .await;
    // The application never takes a message: the inbound budget (1 MiB) fills with 1-byte
    // messages, each charged 65 bytes, about 16,000 of them.
    let conn = serve(ws, &options).unwrap();
    let mut group = frame(0x82, &[7], Some(MASK));
    for _ in 0..32 {
        group.extend(frame(0x8a, &[0x55; 125], Some(MASK)));
    }
    // Whole groups only, so that the frames stay well formed wherever the writing stops.
    let written = Arc::new(AtomicU64::new(0));
    let count = Arc::clone(&written);
    let attack = tokio::spawn(async move {
        while peer.write_all(&group).await.is_ok() {
            count.fetch_add(1, Ordering::Relaxed);
        }
    });
    // Until the server stops reading: no group taken for 300 ms once the budget can be full
    // (1 MiB / 65 bytes = 16,132 messages), or for 10 s before that (a slow machine).
    let (mut last, mut since) = (0, std::time::Instant::now());
    let groups = loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = written.load(Ordering::Relaxed);
        assert!(now < 200_000, "the server never stopped reading");
        if now != last {
            (last, since) = (now, std::time::Instant::now());
            continue;
        }
        let quiet = since.elapsed();
        if (now > 16_000 && quiet >= Duration::from_millis(300)) || quiet >= Duration::from_secs(10)
        {
            break now;
        }
    };
    let grown = resident_bytes().saturating_sub(before);
    eprintln!(
        "{groups} groups of a 1-byte message and 32 Pong frames; resident memory grew {} KiB",
        grown / 1024
    );
    assert!(
        groups > 16_000,
        "the budget holds ~16,000 messages: {groups}"
    );
    assert!(
        grown < 16 << 20,
        "resident memory grew {} MiB for a 1 MiB inbound budget",
        grown >> 20
    );
    attack.abort();
    drop(conn);
}
