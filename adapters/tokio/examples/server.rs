//! A heartbeat WebSocket server on 127.0.0.1, for trying the adapter out (see README.md).
//!
//! ```text
//! cargo run -p heartbeat-tokio --example server -- [CONFIG] --addr 127.0.0.1:PORT \
//!     [--static-dir DIR] [--cpu-heavy [--work-ms 20]] [--stall-after SECS --stall-for SECS] \
//!     [--no-echo] [--pings json|protocol]
//! ```
//!
//! Sockets and heartbeats run on a one-thread I/O runtime ([`heartbeat_tokio::IoThread`]);
//! the data handler runs on the main multi-thread runtime, so `--cpu-heavy` never delays a
//! pong. A stall (`--stall-after/--stall-for`, or `GET /control/stall?secs=N`) blocks the I/O
//! thread itself: no reads, no pongs, no pings, as if the whole server were frozen.

use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant as StdInstant};

use clap::Parser;
use heartbeat_tokio::{serve, IoThread, PingStyle, ServerConnection, ServerOptions};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tracing::{info, warn};

#[derive(Parser, Debug, Clone)]
#[command(about = "heartbeat WebSocket server example")]
struct Args {
    /// Configuration file (.yaml, .yml, .toml or .json); HEARTBEAT_* variables override it.
    config: Option<PathBuf>,
    /// Address to listen on (port 0 picks a free port; the chosen one is printed).
    #[arg(long, default_value = "127.0.0.1:9001")]
    addr: SocketAddr,
    /// Serve plain HTTP GET requests on the same port with files from this directory.
    #[arg(long)]
    static_dir: Option<PathBuf>,
    /// Make every application message cost the handler --work-ms of CPU.
    #[arg(long)]
    cpu_heavy: bool,
    /// CPU milliseconds per message with --cpu-heavy.
    #[arg(long, default_value_t = 20)]
    work_ms: u64,
    /// Stall the whole server this many seconds after start ...
    #[arg(long, requires = "stall_for")]
    stall_after: Option<f64>,
    /// ... for this many seconds.
    #[arg(long, requires = "stall_after")]
    stall_for: Option<f64>,
    /// Do not echo application messages back.
    #[arg(long)]
    no_echo: bool,
    /// How the server sends its own pings.
    #[arg(long, value_parser = ["json", "protocol"], default_value = "json")]
    pings: String,
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let config = match heartbeat_tokio::load_config(args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return std::process::ExitCode::from(2);
        }
    };
    let options = ServerOptions {
        config: config.server,
        pings: if args.pings == "protocol" {
            PingStyle::Protocol
        } else {
            PingStyle::Json
        },
        ..ServerOptions::default()
    };
    // The application's runtime: handlers and their CPU work live here, never on the I/O thread.
    let app = tokio::runtime::Builder::new_multi_thread()
        .thread_name("app")
        .enable_all()
        .build()
        .expect("app runtime");
    let io = IoThread::spawn("heartbeat-io").expect("io thread");
    let (bound_tx, bound_rx) = std::sync::mpsc::channel();
    let app_handle = app.handle().clone();
    let a = args.clone();
    io.handle().spawn(async move {
        let listener = match TcpListener::bind(a.addr).await {
            Ok(l) => l,
            Err(e) => {
                let _ = bound_tx.send(Err(e));
                return;
            }
        };
        let _ = bound_tx.send(listener.local_addr());
        if let (Some(after), Some(secs)) = (a.stall_after, a.stall_for) {
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs_f64(after)).await;
                stall(Duration::from_secs_f64(secs));
            });
        }
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(connection(
                stream,
                peer,
                a.clone(),
                options.clone(),
                app_handle.clone(),
            ));
        }
    });
    match bound_rx.recv() {
        Ok(Ok(addr)) => {
            println!("listening on {addr} (WebSocket at ws://{addr}/ws)");
            info!(
                server = ?config.server,
                "heartbeat server ready; Ctrl-C to stop"
            );
        }
        Ok(Err(e)) => {
            eprintln!("cannot listen on {}: {e}", args.addr);
            return std::process::ExitCode::from(1);
        }
        Err(_) => return std::process::ExitCode::from(1),
    }
    app.block_on(async {
        let _ = tokio::signal::ctrl_c().await;
    });
    drop(io);
    std::process::ExitCode::SUCCESS
}

/// Blocks the I/O thread: nothing is read, answered or sent until it returns.
fn stall(secs: Duration) {
    warn!(secs = secs.as_secs_f64(), "stalling the whole server");
    std::thread::sleep(secs);
    warn!("stall over");
}

/// Reads the request head, then routes: WebSocket upgrade, control, or a static file.
async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    args: Args,
    options: ServerOptions,
    app: tokio::runtime::Handle,
) {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 2048];
    let end = loop {
        if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if head.len() > 16 * 1024 {
            return;
        }
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => head.extend_from_slice(&buf[..n]),
            _ => return,
        }
    };
    let text = String::from_utf8_lossy(&head[..end]).to_string();
    let mut lines = text.split("\r\n");
    let request = lines.next().unwrap_or_default();
    let mut parts = request.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
    let upgrade = lines.any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("upgrade:") && l.contains("websocket")
    });
    if upgrade {
        let stream = Prefixed {
            prefix: head,
            pos: 0,
            inner: stream,
        };
        match tokio_tungstenite::accept_async(stream).await {
            Ok(ws) => match serve(ws, &options) {
                Ok(conn) => {
                    info!(connection = conn.id, %peer, "websocket connected");
                    app.spawn(handler(
                        conn,
                        args.cpu_heavy.then_some(args.work_ms),
                        !args.no_echo,
                    ));
                }
                Err(e) => warn!("{e}"),
            },
            Err(e) => warn!(%peer, "handshake failed: {e}"),
        }
        return;
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path == "/control/stall" {
        if !peer.ip().is_loopback() {
            respond(
                &mut stream,
                "403 Forbidden",
                "text/plain",
                b"loopback only\n",
                method,
            )
            .await;
            return;
        }
        let secs = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("secs="))
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0 && *s <= 3600.0);
        let Some(secs) = secs else {
            respond(
                &mut stream,
                "400 Bad Request",
                "text/plain",
                b"use /control/stall?secs=N\n",
                method,
            )
            .await;
            return;
        };
        let body = format!("stalling for {secs} s\n");
        respond(&mut stream, "200 OK", "text/plain", body.as_bytes(), method).await;
        drop(stream);
        stall(Duration::from_secs_f64(secs));
        return;
    }
    let Some(dir) = &args.static_dir else {
        respond(
            &mut stream,
            "404 Not Found",
            "text/plain",
            b"not found\n",
            method,
        )
        .await;
        return;
    };
    if method != "GET" && method != "HEAD" {
        respond(
            &mut stream,
            "405 Method Not Allowed",
            "text/plain",
            b"GET only\n",
            method,
        )
        .await;
        return;
    }
    match static_file(dir, path) {
        Some((bytes, kind)) => respond(&mut stream, "200 OK", kind, &bytes, method).await,
        None => {
            respond(
                &mut stream,
                "404 Not Found",
                "text/plain",
                b"not found\n",
                method,
            )
            .await
        }
    }
}

fn static_file(dir: &Path, path: &str) -> Option<(Vec<u8>, &'static str)> {
    let rel = Path::new(path.trim_start_matches('/'));
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return None;
    }
    let mut file = dir.join(rel);
    if file.is_dir() {
        file = file.join("index.html");
    }
    let bytes = std::fs::read(&file).ok()?;
    let kind = match file.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript",
        "wasm" => "application/wasm",
        "css" => "text/css",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    };
    Some((bytes, kind))
}

async fn respond(stream: &mut TcpStream, status: &str, kind: &str, body: &[u8], method: &str) {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    if method != "HEAD" {
        let _ = stream.write_all(body).await;
    }
    let _ = stream.flush().await;
    let _ = stream.shutdown().await;
}

/// The application: runs on the app runtime, never on the I/O thread.
async fn handler(mut conn: ServerConnection, work_ms: Option<u64>, echo: bool) {
    while let Some(message) = conn.messages.recv().await {
        if let Some(ms) = work_ms {
            burn(Duration::from_millis(ms));
        }
        if echo && conn.sender.send(message).await.is_err() {
            break;
        }
    }
}

/// Spends `d` of CPU, like parsing and aggregating a batch of market data.
fn burn(d: Duration) {
    let start = StdInstant::now();
    let mut x = 0u64;
    while start.elapsed() < d {
        for i in 0..1000u64 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
        }
        std::hint::black_box(x);
    }
}

/// A stream that replays the bytes already read (the request head) before reading on.
struct Prefixed {
    prefix: Vec<u8>,
    pos: usize,
    inner: TcpStream,
}

impl AsyncRead for Prefixed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.pos < self.prefix.len() {
            let n = (self.prefix.len() - self.pos).min(buf.remaining());
            let start = self.pos;
            buf.put_slice(&self.prefix[start..start + n]);
            self.pos += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
