//! What an idle served connection costs in the server's memory: N raw TCP clients complete the
//! handshake and then send nothing; the resident set of this process is read from /proc before
//! and after, once with the library's default limits (4 KiB read buffer) and once with
//! tungstenite's own defaults (128 KiB read buffer, 64 MiB messages), in that order.
//!
//! ```text
//! cargo bench -p heartbeat-tokio --bench idle_memory -- [--conns 2000]
//! ```
//!
//! The raw clients (a TcpStream and nothing else) live in this process too; their cost is
//! measured alone first and subtracted. Kernel socket buffers are not in the resident set.
//! Bounded: every connect and handshake has a 10 s timeout.

use std::time::Duration;

use heartbeat_tokio::{accept, serve, ServerConnection, ServerOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

const STEP: Duration = Duration::from_secs(10);

fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4
}

fn conns() -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--conns")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000)
}

async fn raw_client(addr: std::net::SocketAddr) -> TcpStream {
    let mut tcp = timeout(STEP, TcpStream::connect(addr))
        .await
        .unwrap()
        .unwrap();
    tcp.write_all(
        b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        timeout(STEP, tcp.read_exact(&mut byte))
            .await
            .unwrap()
            .unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"));
    tcp
}

/// How the server side of one connection is made.
#[derive(Clone, Copy)]
enum Setup {
    /// [`accept`] with `ServerOptions::default()`.
    Library,
    /// tungstenite's default `WebSocketConfig`, then [`serve`].
    TungsteniteDefaults,
}

async fn open(n: usize, setup: Setup) -> (Vec<ServerConnection>, Vec<TcpStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let options = ServerOptions::default();
        let mut served = Vec::with_capacity(n);
        for _ in 0..n {
            let (tcp, _) = listener.accept().await.unwrap();
            let conn = match setup {
                Setup::Library => accept(tcp, &options).await.unwrap(),
                Setup::TungsteniteDefaults => {
                    let ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
                    serve(ws, &options).unwrap()
                }
            };
            served.push(conn);
        }
        served
    });
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n {
        clients.push(raw_client(addr).await);
    }
    (server.await.unwrap(), clients)
}

fn main() {
    let n = conns();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // Warm up the allocator and the runtime, then measure the raw clients alone.
        drop(open(64, Setup::Library).await);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let base = rss_kib();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let keep = tokio::spawn(async move {
            let mut held = Vec::with_capacity(n);
            for _ in 0..n {
                held.push(listener.accept().await.unwrap().0);
            }
            held
        });
        let mut raw = Vec::with_capacity(n);
        for _ in 0..n {
            raw.push(
                timeout(STEP, TcpStream::connect(addr))
                    .await
                    .unwrap()
                    .unwrap(),
            );
        }
        let held = keep.await.unwrap();
        let raw_cost = rss_kib().saturating_sub(base);
        drop((raw, held));
        println!("{n} idle connections, server-side resident memory per connection:");
        for (name, setup) in [
            ("library defaults (4 KiB read buffer)", Setup::Library),
            (
                "tungstenite defaults (128 KiB read buffer)",
                Setup::TungsteniteDefaults,
            ),
        ] {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let before = rss_kib();
            let (served, clients) = open(n, setup).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
            let after = rss_kib();
            let per = (after.saturating_sub(before).saturating_sub(raw_cost)) as f64 / n as f64;
            println!("  {name}: {per:.1} KiB");
            drop((served, clients));
        }
    });
}
