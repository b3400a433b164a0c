//! The example server's interface, which the browser adapter's tests depend on (static files,
//! WebSocket echo on /ws, `POST /control/stall?secs=N` with `--allow-stall`, answered before the
//! stall), and what keeps it safe to run on a machine with a browser: no stall control unless
//! asked for and never cross-site, upgrades on one path from allowed origins only, static files
//! that stay inside their directory and never block the I/O thread, logs on stderr that never
//! block it either, rate-limited warnings, and an accept loop that backs off when out of fds.
//!
//! Runs the example binary (target/<profile>/examples/server), built first with cargo.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{timeout, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};

const LIMIT: Duration = Duration::from_secs(60);

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The example binary, built first: `cargo test --test example_server` alone builds no
/// examples, and a stale binary would test old code.
fn example(name: &str) -> std::path::PathBuf {
    static BUILT: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test> -> target/<profile>/examples/<name>
    let profile = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let built = BUILT.get_or_init(|| {
        let mut cargo = Command::new(env!("CARGO"));
        cargo.args([
            "build",
            "--quiet",
            "-p",
            "heartbeat-tokio",
            "--example",
            name,
        ]);
        if profile.file_name().is_some_and(|p| p == "release") {
            cargo.arg("--release");
        }
        match cargo.status() {
            Ok(s) if s.success() => Ok(()),
            Ok(s) => Err(format!("cargo build --example {name}: {s}")),
            Err(e) => Err(format!("cargo build --example {name}: {e}")),
        }
    });
    if let Err(e) = built {
        panic!("{e}");
    }
    profile.join("examples").join(name)
}

/// Runs a test body within [`LIMIT`], counted from when the example binary is built: the build
/// may compile dependencies afresh (`cargo build -p heartbeat-tokio` unifies features differently
/// from `cargo test --workspace`), which on a fresh machine takes longer than any test.
async fn bounded(body: impl std::future::Future<Output = ()>) {
    let _ = tokio::task::spawn_blocking(|| example("server")).await;
    timeout(LIMIT, body).await.expect("bounded");
}

/// What the test does with the server's stdout and stderr after the first stdout line.
#[derive(PartialEq)]
enum Output {
    /// Both read line by line into [`Server::lines`], tagged `out: ` or `err: `.
    Read,
    /// Never read again but kept open: the pipes fill up, like a log reader that stopped.
    Unread,
}

struct Server {
    addr: String,
    pid: u32,
    lines: mpsc::UnboundedReceiver<String>,
    _unread: Vec<Box<dyn std::any::Any + Send>>,
    _kill: Kill,
}

impl Server {
    fn port(&self) -> &str {
        self.addr.rsplit(':').next().unwrap()
    }

    /// The next output line (tagged), or `None` once `until` has passed.
    async fn next_line(&mut self, until: Instant) -> Option<String> {
        tokio::time::timeout_at(until, self.lines.recv())
            .await
            .ok()
            .flatten()
    }
}

fn tmp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("hb-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Starts the example server with `args` (plus `--addr 127.0.0.1:0`).
async fn start(args: &[&str], output: Output) -> Server {
    let mut cmd = Command::new(example("server"));
    cmd.args(["--addr", "127.0.0.1:0"]).args(args);
    start_command(cmd, output).await
}

async fn start_command(mut cmd: Command, output: Output) -> Server {
    let mut child = cmd
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the example server is built by `cargo test`");
    let pid = child.id();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let kill = Kill(child);
    let (tx, lines) = mpsc::unbounded_channel();
    let mut unread: Vec<Box<dyn std::any::Any + Send>> = Vec::new();
    let (first_tx, first_rx) = tokio::sync::oneshot::channel::<String>();
    if output == Output::Read {
        let out_tx = tx.clone();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next().and_then(Result::ok).unwrap_or_default();
            let _ = first_tx.send(first);
            for line in lines.map_while(Result::ok) {
                let _ = out_tx.send(format!("out: {line}"));
            }
        });
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(format!("err: {line}"));
            }
        });
    } else {
        let mut reader = BufReader::new(stdout);
        let first = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            (line, reader.into_inner())
        })
        .await
        .unwrap();
        let _ = first_tx.send(first.0);
        unread.push(Box::new(first.1));
        unread.push(Box::new(stderr));
    }
    let line = timeout(Duration::from_secs(20), first_rx)
        .await
        .expect("the server prints its address within 20 s")
        .unwrap_or_default();
    let addr = line
        .strip_prefix("listening on ")
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected first stdout line {line:?}"))
        .to_owned();
    Server {
        addr,
        pid,
        lines,
        _unread: unread,
        _kill: kill,
    }
}

/// Sends `request` as is and reads the whole answer: (status line and headers, body).
async fn http(addr: &str, request: &str) -> (String, Vec<u8>) {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut all = Vec::new();
    timeout(Duration::from_secs(10), tcp.read_to_end(&mut all))
        .await
        .unwrap_or_else(|_| panic!("no answer within 10 s to {request:?}"))
        .unwrap();
    let split = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP head in {:?}", String::from_utf8_lossy(&all)));
    let head = String::from_utf8_lossy(&all[..split]).to_string();
    (head, all[split + 4..].to_vec())
}

async fn get(addr: &str, path: &str) -> (String, Vec<u8>) {
    http(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n"),
    )
    .await
}

async fn post(addr: &str, path: &str, headers: &str) -> (String, Vec<u8>) {
    http(
        addr,
        &format!("POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\n{headers}\r\n"),
    )
    .await
}

async fn ws_connect(
    addr: &str,
    path: &str,
    origin: Option<&str>,
) -> Result<Ws, tungstenite::Error> {
    let mut request = format!("ws://{addr}{path}").into_client_request().unwrap();
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("Origin", origin.parse().unwrap());
    }
    timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(request),
    )
    .await
    .unwrap_or_else(|_| panic!("no handshake answer within 10 s on {path}"))
    .map(|(ws, _)| ws)
}

/// The HTTP status an upgrade attempt was refused with (0 when it was accepted).
async fn upgrade_status(addr: &str, path: &str, origin: Option<&str>) -> u16 {
    match ws_connect(addr, path, origin).await {
        Ok(_) => 0,
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("upgrade on {path} with origin {origin:?}: {e}"),
    }
}

/// Sends a heartbeat ping with `seq` and waits for its pong; the time it took.
async fn round_trip(ws: &mut Ws, seq: u64) -> Duration {
    let sent = Instant::now();
    ws.send(Message::text(format!(r#"{{"type":"ping","seq":{seq}}}"#)))
        .await
        .unwrap();
    let pong = format!(r#"{{"type":"pong","seq":{seq}}}"#);
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.as_str() == pong => return sent.elapsed(),
            Some(Ok(_)) => {}
            other => panic!("connection ended waiting for pong {seq}: {other:?}"),
        }
    }
}

/// A fresh connection and one ping: how long until its pong (handshake included). A fresh
/// connection each time, so probes never count as pinging too often.
async fn probe(addr: &str) -> Duration {
    let started = Instant::now();
    let mut ws = ws_connect(addr, "/ws", None).await.expect("probe connects");
    round_trip(&mut ws, 1).await;
    started.elapsed()
}

#[tokio::test]
async fn static_files_websocket_echo_and_stall_control() {
    bounded(async {
        let dir = tmp_dir("static");
        std::fs::create_dir_all(dir.join("pkg")).unwrap();
        std::fs::write(dir.join("index.html"), "<h1>heartbeat</h1>").unwrap();
        std::fs::write(dir.join("pkg/app.wasm"), b"\0asm\x01\0\0\0").unwrap();
        std::fs::write(dir.join("pkg/app.js"), "export {};").unwrap();
        let server = start(
            &["--allow-stall", "--static-dir", dir.to_str().unwrap()],
            Output::Read,
        )
        .await;
        let addr = server.addr.as_str();

        let (head, body) = get(addr, "/").await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.contains("Content-Type: text/html"), "{head}");
        assert_eq!(body, b"<h1>heartbeat</h1>");
        let (head, body) = get(addr, "/pkg/app.wasm").await;
        assert!(head.contains("Content-Type: application/wasm"), "{head}");
        assert_eq!(body, b"\0asm\x01\0\0\0");
        let (head, _) = get(addr, "/pkg/app.js?v=1").await;
        assert!(head.contains("Content-Type: text/javascript"), "{head}");
        let (head, _) = get(addr, "/missing.txt").await;
        assert!(head.starts_with("HTTP/1.1 404"), "{head}");
        let (head, _) = get(addr, "/../index.html").await;
        assert!(head.starts_with("HTTP/1.1 404"), "{head}");

        let mut ws = ws_connect(addr, "/ws", None).await.unwrap();
        ws.send(Message::text("hello")).await.unwrap();
        ws.send(Message::text(r#"{"type":"ping","seq":5}"#))
            .await
            .unwrap();
        let mut got = Vec::new();
        while got.len() < 2 {
            if let Message::Text(t) = ws.next().await.unwrap().unwrap() {
                got.push(t.as_str().to_owned());
            }
        }
        assert_eq!(got, ["hello", r#"{"type":"pong","seq":5}"#]);

        // The stall is announced first, then nothing is answered for about a second.
        let asked = Instant::now();
        let (head, body) = post(addr, "/control/stall?secs=1", "").await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(String::from_utf8_lossy(&body).contains("stalling"));
        assert!(
            asked.elapsed() < Duration::from_millis(900),
            "answered before the stall"
        );
        round_trip(&mut ws, 6).await;
        let waited = asked.elapsed();
        assert!(
            waited >= Duration::from_millis(900),
            "pong during the stall after {waited:?}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await;
}

/// Any web page the machine's browser shows could send a GET (an `<img>`) or a form POST here.
#[tokio::test]
async fn stall_control_is_off_without_allow_stall() {
    bounded(async {
        let dir = tmp_dir("no-stall");
        let server = start(&["--static-dir", dir.to_str().unwrap()], Output::Read).await;
        let addr = server.addr.as_str();
        let (head, _) = get(addr, "/control/stall?secs=1").await;
        assert!(head.starts_with("HTTP/1.1 404"), "{head}");
        let (head, _) = post(addr, "/control/stall?secs=1", "").await;
        assert!(head.starts_with("HTTP/1.1 404"), "{head}");
        let took = probe(addr).await;
        assert!(took < Duration::from_millis(500), "stalled: {took:?}");
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await;
}

#[tokio::test]
async fn stall_control_refuses_get_and_cross_site_requests() {
    bounded(async {
        let server = start(&["--allow-stall"], Output::Read).await;
        let addr = server.addr.as_str();
        let own = format!("http://127.0.0.1:{}", server.port());
        let (head, _) = get(addr, "/control/stall?secs=1").await;
        assert!(head.starts_with("HTTP/1.1 405"), "{head}");
        assert!(head.contains("Allow: POST"), "{head}");
        for headers in [
            "Origin: http://evil.example\r\n".to_owned(),
            "Origin: null\r\n".to_owned(),
            format!("Origin: http://127.0.0.1:1{}\r\n", server.port()),
            format!("Origin: {own}\r\nSec-Fetch-Site: cross-site\r\n"),
            "Sec-Fetch-Site: same-site\r\n".to_owned(),
        ] {
            let (head, body) = post(addr, "/control/stall?secs=1", &headers).await;
            assert!(head.starts_with("HTTP/1.1 403"), "{headers:?}: {head}");
            assert!(!body.is_empty(), "a 403 says why");
        }
        let took = probe(addr).await;
        assert!(
            took < Duration::from_millis(500),
            "a refused request stalled: {took:?}"
        );
        // Same-origin (the page served from here) and non-browser clients may stall it.
        let (head, _) = post(
            addr,
            "/control/stall?secs=0",
            &format!("Origin: {own}\r\nSec-Fetch-Site: same-origin\r\n"),
        )
        .await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let (head, _) = post(addr, "/control/stall?secs=0", "").await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let (head, _) = post(addr, "/control/stall?secs=-1", "").await;
        assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    })
    .await;
}

#[tokio::test]
async fn websocket_upgrades_only_on_the_ws_path() {
    bounded(async {
        let server = start(&[], Output::Read).await;
        let addr = server.addr.as_str();
        assert_eq!(upgrade_status(addr, "/", None).await, 404);
        assert_eq!(
            upgrade_status(addr, "/control/stall?secs=1", None).await,
            404
        );
        assert_eq!(upgrade_status(addr, "/ws/x", None).await, 404);
        assert_eq!(upgrade_status(addr, "/ws", None).await, 0);
        assert_eq!(upgrade_status(addr, "/ws?v=1", None).await, 0);

        let server = start(&["--ws-path", "/live"], Output::Read).await;
        assert_eq!(upgrade_status(&server.addr, "/ws", None).await, 404);
        assert_eq!(upgrade_status(&server.addr, "/live", None).await, 0);
    })
    .await;
}

/// Without an Origin check any page the browser shows could open sockets here (cross-site
/// WebSocket hijacking).
#[tokio::test]
async fn websocket_upgrades_check_the_origin() {
    bounded(async {
        let server = start(&[], Output::Read).await;
        let addr = server.addr.as_str();
        let port = server.port();
        assert_eq!(
            upgrade_status(addr, "/ws", Some("http://evil.example")).await,
            403
        );
        assert_eq!(upgrade_status(addr, "/ws", Some("null")).await, 403);
        let other_port = format!("http://127.0.0.1:1{port}");
        assert_eq!(upgrade_status(addr, "/ws", Some(&other_port)).await, 403);
        for own in [
            format!("http://127.0.0.1:{port}"),
            format!("http://localhost:{port}"),
            format!("HTTP://LOCALHOST:{port}"),
        ] {
            assert_eq!(upgrade_status(addr, "/ws", Some(&own)).await, 0, "{own}");
        }
        // Non-browser clients send no Origin.
        assert_eq!(upgrade_status(addr, "/ws", None).await, 0);

        let server = start(&["--allow-origin", "http://app.example:8080"], Output::Read).await;
        let addr = server.addr.as_str();
        assert_eq!(
            upgrade_status(addr, "/ws", Some("http://app.example:8080")).await,
            0
        );
        assert_eq!(
            upgrade_status(addr, "/ws", Some("http://evil.example")).await,
            403
        );
        let own = format!("http://127.0.0.1:{}", server.port());
        assert_eq!(upgrade_status(addr, "/ws", Some(&own)).await, 0);
    })
    .await;
}

#[tokio::test]
async fn static_files_never_leave_the_directory() {
    bounded(async {
        let outside = tmp_dir("outside");
        std::fs::write(outside.join("secret.txt"), "secret").unwrap();
        let dir = tmp_dir("inside");
        std::fs::write(dir.join("index.html"), "<h1>in</h1>").unwrap();
        std::os::unix::fs::symlink(outside.join("secret.txt"), dir.join("secret.txt")).unwrap();
        std::os::unix::fs::symlink(&outside, dir.join("out")).unwrap();
        std::os::unix::fs::symlink("index.html", dir.join("alias.html")).unwrap();
        let server = start(&["--static-dir", dir.to_str().unwrap()], Output::Read).await;
        let addr = server.addr.as_str();
        for path in [
            "/secret.txt",
            "/out/secret.txt",
            "/out/",
            "/%2e%2e/secret.txt",
        ] {
            let (head, body) = get(addr, path).await;
            assert!(head.starts_with("HTTP/1.1 404"), "{path}: {head}");
            assert!(!String::from_utf8_lossy(&body).contains("secret"), "{path}");
        }
        // A link that stays inside is fine.
        let (head, body) = get(addr, "/alias.html").await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert_eq!(body, b"<h1>in</h1>");
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(&outside);
    })
    .await;
}

/// Opening a FIFO blocks until someone writes to it: on the I/O thread that froze every pong.
#[tokio::test]
async fn a_fifo_in_the_static_dir_is_not_served_and_pongs_keep_flowing() {
    bounded(async {
        let dir = tmp_dir("fifo");
        let made = Command::new("mkfifo")
            .arg(dir.join("pipe"))
            .status()
            .expect("mkfifo (coreutils) runs");
        assert!(made.success());
        let server = start(&["--static-dir", dir.to_str().unwrap()], Output::Read).await;
        let addr = server.addr.as_str();
        let mut ws = ws_connect(addr, "/ws", None).await.unwrap();
        let (head, _) = timeout(Duration::from_secs(5), get(addr, "/pipe"))
            .await
            .expect("a FIFO is answered at once, not opened");
        assert!(head.starts_with("HTTP/1.1 404"), "{head}");
        let rtt = timeout(Duration::from_secs(5), round_trip(&mut ws, 1))
            .await
            .expect("pongs flow while a FIFO is asked for");
        assert!(rtt < Duration::from_millis(500), "pong after {rtt:?}");
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await;
}

#[tokio::test]
async fn static_files_larger_than_max_file_bytes_are_refused() {
    bounded(async {
        let dir = tmp_dir("big");
        std::fs::write(dir.join("fits.bin"), vec![7u8; 1000]).unwrap();
        std::fs::write(dir.join("big.bin"), vec![7u8; 1001]).unwrap();
        let server = start(
            &[
                "--static-dir",
                dir.to_str().unwrap(),
                "--max-file-bytes",
                "1000",
            ],
            Output::Read,
        )
        .await;
        let (head, body) = get(&server.addr, "/fits.bin").await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert_eq!(body.len(), 1000);
        let (head, body) = get(&server.addr, "/big.bin").await;
        assert!(head.starts_with("HTTP/1.1 403"), "{head}");
        assert!(
            String::from_utf8_lossy(&body).contains("--max-file-bytes"),
            "{}",
            String::from_utf8_lossy(&body)
        );
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await;
}

#[tokio::test]
async fn logs_go_to_stderr_without_colours() {
    bounded(async {
        let mut server = start(&[], Output::Read).await;
        probe(&server.addr).await;
        let until = Instant::now() + Duration::from_secs(5);
        let mut seen = Vec::new();
        while let Some(line) = server.next_line(until).await {
            let done = line.contains("websocket connected");
            seen.push(line);
            if done {
                break;
            }
        }
        let connected = seen
            .iter()
            .find(|l| l.contains("websocket connected"))
            .unwrap_or_else(|| panic!("no 'websocket connected' line in {seen:#?}"));
        assert!(connected.starts_with("err: "), "{seen:#?}");
        assert!(
            seen.iter().all(|l| l.starts_with("err: ") && !l.contains('\x1b')),
            "stdout has the address line only, stderr has no colours when not a terminal: {seen:#?}"
        );
    })
    .await;
}

/// A log reader that stops reading (a full pipe) must cost log lines, never pongs or handshakes.
#[tokio::test]
async fn an_unread_log_pipe_never_delays_pongs() {
    bounded(async {
        // A short queue, so lines are dropped (the lossy path) as well as queued.
        let server = start(&["--log-queue-lines", "100"], Output::Unread).await;
        let addr = server.addr.as_str();
        // Each session logs two lines (about 200 bytes): 600 of them overfill a 64 KiB pipe
        // and the queue.
        let mut slowest = Duration::ZERO;
        for i in 0..600 {
            let took = timeout(Duration::from_secs(5), probe(addr))
                .await
                .unwrap_or_else(|_| panic!("session {i}: no pong within 5 s"));
            slowest = slowest.max(took);
        }
        println!("600 sessions with an unread log pipe: slowest connect + pong {slowest:?}");
        assert!(
            slowest < Duration::from_secs(1),
            "slowest session {slowest:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn repeated_warnings_are_rate_limited() {
    bounded(async {
        let mut server = start(&[], Output::Read).await;
        let addr = server.addr.clone();
        // Upgrade requests without a key: each one is a failed handshake.
        for _ in 0..200 {
            let mut tcp = TcpStream::connect(&addr).await.unwrap();
            let request = format!(
                "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
            );
            tcp.write_all(request.as_bytes()).await.unwrap();
            let mut answer = Vec::new();
            let _ = timeout(Duration::from_secs(10), tcp.read_to_end(&mut answer))
                .await
                .expect("a failed handshake ends the connection");
        }
        let until = Instant::now() + Duration::from_secs(5);
        let (mut warnings, mut summary) = (0, None);
        while let Some(line) = server.next_line(until).await {
            if line.contains("suppressed") {
                summary = Some(line);
                break;
            }
            if line.contains("WARN") {
                warnings += 1;
            }
        }
        assert!(warnings <= 10, "{warnings} warnings for 200 failed handshakes");
        let summary = summary.expect("a summary of the suppressed warnings within 5 s");
        assert!(summary.contains("handshake_failed"), "{summary}");
    })
    .await;
}

/// CPU time (user + system, in clock ticks of 1/100 s) the process has used so far.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// Out of file descriptors (EMFILE), `accept` fails at once for as long as connections wait in
/// the backlog: a loop that retries at once spins a core.
#[tokio::test]
async fn accept_errors_back_off_instead_of_spinning() {
    bounded(async {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(r#"ulimit -n 32 && exec "$0" "$@""#)
            .arg(example("server"))
            .args(["--addr", "127.0.0.1:0"]);
        let mut server = start_command(cmd, Output::Read).await;
        let addr = server.addr.clone();
        // More connections than the server has descriptors for. A connect that is not answered
        // within 2 s means the backlog is full (the kernel drops the SYN and retries for two
        // minutes): the server is as saturated as it gets, so stop there.
        let mut held = Vec::new();
        for _ in 0..60 {
            match timeout(Duration::from_secs(2), TcpStream::connect(&addr)).await {
                Ok(tcp) => held.push(tcp.unwrap()),
                Err(_) => break,
            }
        }
        assert!(
            held.len() > 32,
            "only {} connections got in: not more than the server's 32 descriptors",
            held.len()
        );
        let until = Instant::now() + Duration::from_secs(5);
        let mut seen = Vec::new();
        while let Some(line) = server.next_line(until).await {
            let done = line.contains("accept failed");
            seen.push(line);
            if done {
                break;
            }
        }
        let before = cpu_ticks(server.pid);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let used = cpu_ticks(server.pid) - before;
        println!("CPU while out of file descriptors: {used} ticks (1/100 s) in 2 s");
        assert!(
            used <= 30,
            "{used} ticks of CPU in 2 s (200 is two cores) while out of file descriptors"
        );
        assert!(
            seen.iter().any(|l| l.contains("accept failed")),
            "the accept error is logged: {seen:#?}"
        );
        // Once descriptors are free again it serves as before.
        drop(held);
        let took = timeout(Duration::from_secs(10), probe(&addr))
            .await
            .expect("serves again after EMFILE");
        assert!(took < Duration::from_secs(3), "{took:?}");
    })
    .await;
}
