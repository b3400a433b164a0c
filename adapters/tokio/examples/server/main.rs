//! A heartbeat WebSocket server on 127.0.0.1, for trying the adapter out (see README.md).
//!
//! ```text
//! cargo run -p heartbeat-tokio --example server -- [CONFIG] --addr 127.0.0.1:PORT \
//!     [--static-dir DIR [--max-file-bytes N]] [--ws-path /ws] [--allow-origin ORIGIN]... \
//!     [--cpu-heavy [--work-ms 20]] [--stall-after SECS --stall-for SECS] [--allow-stall] \
//!     [--no-echo] [--pings json|protocol] [--warnings-per-second 10] [--log-queue-lines 10000]
//! ```
//!
//! Sockets and heartbeats run on a one-thread I/O runtime ([`heartbeat_tokio::IoThread`]);
//! the data handler and static file reads run on the main multi-thread runtime, so
//! `--cpu-heavy` or a slow file never delays a pong. Logs go to stderr through a non-blocking
//! writer. A stall (`--stall-after/--stall-for`, or `POST /control/stall?secs=N` with
//! `--allow-stall`) blocks the I/O thread itself: no reads, no pongs, no pings, as if the whole
//! server were frozen.
//!
//! A browser on this machine shows pages from anywhere, and they can reach 127.0.0.1: WebSocket
//! upgrades are served on one path to allowed origins only, the stall control is off unless
//! asked for and then same-origin POST only, static files stay inside their directory.

mod files;
mod http;
mod logging;
mod origin;

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant as StdInstant};

use clap::Parser;
use heartbeat_tokio::{IoThread, PingStyle, ServerConnection, ServerOptions};
use tokio::net::{TcpListener, TcpStream};
use tracing::{info, warn};

use crate::files::Found;
use crate::http::{Answer, Head, HeadError, Prefixed};
use crate::origin::Origins;

/// A static file lookup must finish within this; the connection is answered 503 otherwise.
const FILE_TIMEOUT: Duration = Duration::from_secs(10);

/// After a failed accept (out of file descriptors, say) wait this long, doubling up to
/// [`ACCEPT_BACKOFF_MAX`]: the failure repeats at once while connections wait in the backlog.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(100);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// The longest stall the control accepts, in seconds.
const MAX_STALL_SECS: f64 = 3600.0;

#[derive(Parser, Debug, Clone)]
#[command(about = "heartbeat WebSocket server example")]
struct Args {
    /// Configuration file (.yaml, .yml, .toml or .json); HEARTBEAT_* variables override it.
    config: Option<PathBuf>,
    /// Address to listen on (port 0 picks a free port; the chosen one is printed).
    #[arg(long, default_value = "127.0.0.1:9001")]
    addr: SocketAddr,
    /// Serve plain HTTP GET requests on the same port with regular files from this directory
    /// (symlinks that lead outside it are not followed).
    #[arg(long)]
    static_dir: Option<PathBuf>,
    /// The largest static file served, in bytes.
    #[arg(long, default_value_t = 16 * 1024 * 1024)]
    max_file_bytes: u64,
    /// The path WebSocket upgrades are served on; other paths answer 404.
    #[arg(long, default_value = "/ws", value_parser = parse_ws_path)]
    ws_path: String,
    /// Also accept WebSocket upgrades from pages of this origin (repeatable), e.g.
    /// http://myhost:9001. The server's own origins and clients that send no Origin always are.
    #[arg(long, value_parser = origin::parse_allowed)]
    allow_origin: Vec<String>,
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
    /// Serve `POST /control/stall?secs=N` (from 127.0.0.1, same-origin or non-browser only),
    /// which stalls the whole server. Off by default: it freezes every connection.
    #[arg(long)]
    allow_stall: bool,
    /// Do not echo application messages back.
    #[arg(long)]
    no_echo: bool,
    /// How the server sends its own pings.
    #[arg(long, value_parser = ["json", "protocol"], default_value = "json")]
    pings: String,
    /// At most this many warnings a second from each place in the code; the rest are counted
    /// and summarised once a second. 0: no limit.
    #[arg(long, default_value_t = 10)]
    warnings_per_second: u32,
    /// Log lines waiting for stderr at most (about 100 bytes each); more are dropped and
    /// counted, so a stderr nobody reads never holds the server up.
    #[arg(long, default_value_t = 10_000)]
    log_queue_lines: usize,
}

fn parse_ws_path(value: &str) -> Result<String, String> {
    if value.starts_with('/') && !value.contains(['?', '#', ' ']) {
        Ok(value.to_owned())
    } else {
        Err(format!(
            "{value:?} is not a path: expected one starting with '/', without '?' or '#', like /ws"
        ))
    }
}

/// What every connection needs to know, shared.
#[derive(Debug)]
struct Settings {
    options: ServerOptions,
    ws_path: String,
    origins: Origins,
    /// Canonical.
    static_dir: Option<PathBuf>,
    max_file_bytes: u64,
    allow_stall: bool,
    work_ms: Option<u64>,
    echo: bool,
    /// The application runtime: handlers and file reads run here, never on the I/O thread.
    app: tokio::runtime::Handle,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let _log_guard = logging::init(args.warnings_per_second, args.log_queue_lines);
    let config = match heartbeat_tokio::load_config(args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return std::process::ExitCode::from(2);
        }
    };
    let static_dir = match &args.static_dir {
        None => None,
        Some(dir) => match dir.canonicalize() {
            Ok(d) if d.is_dir() => Some(d),
            Ok(_) => {
                eprintln!("--static-dir {}: not a directory", dir.display());
                return std::process::ExitCode::from(2);
            }
            Err(e) => {
                eprintln!("--static-dir {}: {e}", dir.display());
                return std::process::ExitCode::from(2);
            }
        },
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
    let app = match tokio::runtime::Builder::new_multi_thread()
        .thread_name("app")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the application runtime: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    let io = match IoThread::spawn("heartbeat-io") {
        Ok(io) => io,
        Err(e) => {
            eprintln!("cannot start the I/O thread: {e}");
            return std::process::ExitCode::from(1);
        }
    };
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
        let addr = match listener.local_addr() {
            Ok(addr) => addr,
            Err(e) => {
                let _ = bound_tx.send(Err(e));
                return;
            }
        };
        let settings = Arc::new(Settings {
            options,
            ws_path: a.ws_path.clone(),
            origins: Origins::new(addr, &a.allow_origin),
            static_dir,
            max_file_bytes: a.max_file_bytes,
            allow_stall: a.allow_stall,
            work_ms: a.cpu_heavy.then_some(a.work_ms),
            echo: !a.no_echo,
            app: app_handle,
        });
        let _ = bound_tx.send(Ok(addr));
        if let (Some(after), Some(secs)) = (a.stall_after, a.stall_for) {
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs_f64(after)).await;
                stall(Duration::from_secs_f64(secs));
            });
        }
        accept_loop(listener, settings).await;
    });
    match bound_rx.recv() {
        Ok(Ok(addr)) => {
            println!(
                "listening on {addr} (WebSocket at ws://{addr}{})",
                args.ws_path
            );
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

/// Accepts forever. A failed accept is logged (rate-limited) and retried after a growing pause,
/// so running out of file descriptors costs a log line a second, not a spinning core.
async fn accept_loop(listener: TcpListener, settings: Arc<Settings>) {
    let mut backoff = ACCEPT_BACKOFF_MIN;
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                backoff = ACCEPT_BACKOFF_MIN;
                let _ = stream.set_nodelay(true);
                tokio::spawn(connection(stream, peer, settings.clone()));
            }
            // One connection's trouble, not the listener's: take the next one at once.
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionAborted
                        | ErrorKind::ConnectionReset
                        | ErrorKind::Interrupted
                ) => {}
            Err(e) => {
                warn!(
                    name: "example.accept_failed",
                    retry_in_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX),
                    "accept failed: {e}"
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
            }
        }
    }
}

/// Blocks the I/O thread: nothing is read, answered or sent until it returns.
fn stall(secs: Duration) {
    warn!(secs = secs.as_secs_f64(), "stalling the whole server");
    std::thread::sleep(secs);
    warn!("stall over");
}

/// Reads the request head, then routes: WebSocket upgrade, stall control, or a static file.
async fn connection(mut stream: TcpStream, peer: SocketAddr, settings: Arc<Settings>) {
    let head = match Head::read(&mut stream).await {
        Ok(head) => head,
        Err(HeadError::Gone) => return,
        Err(HeadError::TooLarge) => {
            Answer::text(
                "431 Request Header Fields Too Large",
                "request head over 16 KiB\n",
            )
            .send(&mut stream, "GET")
            .await;
            return;
        }
        Err(HeadError::Malformed) => {
            Answer::text("400 Bad Request", "not an HTTP/1.1 request head\n")
                .send(&mut stream, "GET")
                .await;
            return;
        }
    };
    if head.is_websocket_upgrade() {
        upgrade(stream, peer, head, &settings).await;
    } else if head.path == "/control/stall" {
        if settings.allow_stall {
            stall_control(stream, peer, &head, &settings).await;
        } else {
            Answer::text(
                "404 Not Found",
                "not found (the stall control needs --allow-stall)\n",
            )
            .send(&mut stream, &head.method)
            .await;
        }
    } else {
        static_file(stream, &head, &settings).await;
    }
}

/// Vets an upgrade (path, Origin) before any handshake, then serves it.
async fn upgrade(mut stream: TcpStream, peer: SocketAddr, head: Head, settings: &Settings) {
    if head.path != settings.ws_path {
        let body = format!(
            "WebSocket upgrades are served on {} only\n",
            settings.ws_path
        );
        warn!(name: "example.upgrade_refused", %peer, path = ?head.path, "upgrade refused: wrong path");
        Answer::text("404 Not Found", &body)
            .send(&mut stream, &head.method)
            .await;
        return;
    }
    let vetted = match head.one("origin") {
        Ok(origin) => settings.origins.check_websocket(origin),
        Err(()) => Err("more than one Origin header\n".to_owned()),
    };
    if let Err(why) = vetted {
        warn!(name: "example.upgrade_refused", %peer, "upgrade refused: {}", why.trim_end());
        Answer::text("403 Forbidden", &why)
            .send(&mut stream, &head.method)
            .await;
        return;
    }
    let stream = Prefixed::new(head.raw, stream);
    // The library gives the whole handshake `ServerOptions::handshake_timeout` (10 s).
    match heartbeat_tokio::accept(stream, &settings.options).await {
        Ok(conn) => {
            info!(connection = conn.id, %peer, "websocket connected");
            settings
                .app
                .spawn(handler(conn, settings.work_ms, settings.echo));
        }
        Err(e) => warn!(name: "example.handshake_failed", %peer, "upgrade failed: {e}"),
    }
}

/// `POST /control/stall?secs=N`: answers, then stalls the whole server for N seconds.
async fn stall_control(mut stream: TcpStream, peer: SocketAddr, head: &Head, settings: &Settings) {
    let vetted = if head.method != "POST" {
        Err((
            "405 Method Not Allowed",
            "use POST /control/stall?secs=N\n".to_owned(),
        ))
    } else if !peer.ip().is_loopback() {
        Err(("403 Forbidden", "loopback only\n".to_owned()))
    } else {
        match (head.one("origin"), head.one("sec-fetch-site")) {
            (Ok(origin), Ok(site)) => settings.origins.check_same_origin(origin, site),
            _ => Err("repeated Origin or Sec-Fetch-Site header\n".to_owned()),
        }
        .map_err(|why| ("403 Forbidden", why))
    };
    if let Err((status, why)) = vetted {
        warn!(name: "example.stall_refused", %peer, "stall control refused: {}", why.trim_end());
        let mut answer = Answer::text(status, &why);
        if status.starts_with("405") {
            answer.extra_headers = "Allow: POST\r\n";
        }
        answer.send(&mut stream, &head.method).await;
        return;
    }
    let secs = head
        .query
        .split('&')
        .find_map(|kv| kv.strip_prefix("secs="))
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| s.is_finite() && (0.0..=MAX_STALL_SECS).contains(s));
    let Some(secs) = secs else {
        let body = format!("use POST /control/stall?secs=N with 0 <= N <= {MAX_STALL_SECS}\n");
        Answer::text("400 Bad Request", &body)
            .send(&mut stream, &head.method)
            .await;
        return;
    };
    let body = format!("stalling for {secs} s\n");
    Answer::text("200 OK", &body)
        .send(&mut stream, &head.method)
        .await;
    drop(stream);
    stall(Duration::from_secs_f64(secs));
}

/// A static file, read on the application runtime's blocking pool.
async fn static_file(mut stream: TcpStream, head: &Head, settings: &Settings) {
    let Some(root) = settings.static_dir.clone() else {
        Answer::text("404 Not Found", "not found\n")
            .send(&mut stream, &head.method)
            .await;
        return;
    };
    if head.method != "GET" && head.method != "HEAD" {
        let mut answer = Answer::text("405 Method Not Allowed", "GET or HEAD only\n");
        answer.extra_headers = "Allow: GET, HEAD\r\n";
        answer.send(&mut stream, &head.method).await;
        return;
    }
    let (path, max) = (head.path.clone(), settings.max_file_bytes);
    let lookup = settings
        .app
        .spawn_blocking(move || files::lookup(&root, &path, max));
    let found = match tokio::time::timeout(FILE_TIMEOUT, lookup).await {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => {
            warn!(name: "example.static_file_failed", path = ?head.path, "static file lookup failed: {e}");
            Answer::text("500 Internal Server Error", "file lookup failed\n")
                .send(&mut stream, &head.method)
                .await;
            return;
        }
        Err(_) => {
            warn!(name: "example.static_file_failed", path = ?head.path, "static file lookup took over {FILE_TIMEOUT:?}");
            Answer::text("503 Service Unavailable", "file lookup too slow\n")
                .send(&mut stream, &head.method)
                .await;
            return;
        }
    };
    match found {
        Found::File(bytes, content_type) => {
            Answer {
                status: "200 OK",
                content_type,
                extra_headers: "",
                body: &bytes,
            }
            .send(&mut stream, &head.method)
            .await;
        }
        Found::Nothing => {
            Answer::text("404 Not Found", "not found\n")
                .send(&mut stream, &head.method)
                .await;
        }
        Found::TooLarge { size, max } => {
            let body =
                format!("file of {size} bytes is larger than --max-file-bytes ({max} bytes)\n");
            Answer::text("403 Forbidden", &body)
                .send(&mut stream, &head.method)
                .await;
        }
    }
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
