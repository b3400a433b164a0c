//! A hostile-peer soak on loopback: honest heartbeat clients (default 10,000, 1 s pings) and a
//! mix of hostile ones against one tokio server with its default limits, for 10 minutes.
//!
//! ```text
//! ulimit -n 20000   # each process holds one socket per connection
//! cargo bench -p heartbeat-tokio --bench hostile_soak -- [--honest 10000] [--secs 600] [--attackers 3]
//! ```
//!
//! The server runs in a child process (this binary with `--serve`): accept loop and connections
//! on one I/O thread, an echoing application on another runtime, its memory and CPU read from
//! /proc. This process runs the honest clients (heartbeat-tokio `Client`s on two workers) and,
//! on a thread of their own, `--attackers` loops of each hostile kind:
//!
//! | kind | what it does | what the server should do |
//! |---|---|---|
//! | deep | a 66 KB text frame nested 33,000 deep | deliver it (echoed back), live on |
//! | slowloris | a request head, one byte every 2 s | drop it at the handshake timeout |
//! | json-flood | `{"type":"ping"}` texts as fast as it can | close 1008 (too many pings) |
//! | ping-flood | protocol Ping frames as fast as it can | close 1008 |
//! | unread | 512 KiB messages (echoed) it never reads, then silence | close at the idle timeout, free the memory |
//! | oversize | one 2 MiB message | close 1009 |
//! | garbage | bytes that are no WebSocket frame | close 1002 |
//! | reset | a few messages, then a TCP RST | clean up |
//!
//! Bounded: ramp-up at most 120 s, every attack at most 40 s, then the window ends and all stops.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use heartbeat_core::Event;
use heartbeat_tokio::{accept, connect, ClientOptions, CloseCause, ConnectionEvent, ServerOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use common::{arg, cpu_secs, one_second_client, one_second_server, rss_kib};

/// What the server reports when asked: connections open, and every close by its cause.
type Closes = Arc<Mutex<BTreeMap<String, u64>>>;

fn cause_key(cause: &CloseCause) -> String {
    match cause {
        CloseCause::Heartbeat(reason) => format!("heartbeat {}", reason.as_str()),
        CloseCause::Peer { code: Some(c) } => format!("peer close {c}"),
        CloseCause::Peer { code: None } => "peer gone".to_owned(),
        CloseCause::Application => "application".to_owned(),
        CloseCause::Violation { code, .. } => format!("violation {code}"),
        CloseCause::WriteStalled => "write stalled".to_owned(),
        CloseCause::Error(e) => {
            let e = e.to_lowercase();
            let kind = if e.contains("reset") {
                "reset"
            } else if e.contains("utf") {
                "utf-8"
            } else if e.contains("size") || e.contains("capacity") {
                "capacity"
            } else if e.contains("protocol") || e.contains("frame") || e.contains("opcode") {
                "protocol"
            } else {
                "other"
            };
            format!("error {kind}")
        }
        _ => "other".to_owned(),
    }
}

/// The child: the server with its default limits, an echoing application on its own runtime.
fn serve() {
    let io = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let app = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let app_handle = app.handle().clone();
    let closes: Closes = Arc::default();
    let open = Arc::new(AtomicU64::new(0));
    let handshakes_failed = Arc::new(AtomicU64::new(0));
    let (c, o, h) = (
        Arc::clone(&closes),
        Arc::clone(&open),
        Arc::clone(&handshakes_failed),
    );
    io.spawn(async move {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(4096).unwrap();
        println!("{}", listener.local_addr().unwrap().port());
        std::io::stdout().flush().unwrap();
        let options = ServerOptions {
            config: one_second_server(),
            ..ServerOptions::default()
        };
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let (options, c, o, h) = (
                options.clone(),
                Arc::clone(&c),
                Arc::clone(&o),
                Arc::clone(&h),
            );
            let app = app_handle.clone();
            tokio::spawn(async move {
                let conn = match accept(tcp, &options).await {
                    Ok(conn) => conn,
                    Err(_) => {
                        h.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                };
                o.fetch_add(1, Ordering::Relaxed);
                let heartbeat_tokio::ServerConnection {
                    mut messages,
                    sender,
                    mut events,
                    ..
                } = conn;
                // The application: echo every message, on its own runtime.
                app.spawn(async move {
                    while let Some(m) = messages.recv().await {
                        if sender.send(m).await.is_err() {
                            break;
                        }
                    }
                });
                while let Some(e) = events.recv().await {
                    if let ConnectionEvent::Closed(cause) = e {
                        *c.lock().unwrap().entry(cause_key(&cause)).or_default() += 1;
                        break;
                    }
                }
                o.fetch_sub(1, Ordering::Relaxed);
            });
        }
    });
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    io.block_on(async move {
        while let Some(line) = rx.recv().await {
            if line.trim() == "stats" {
                println!(
                    "open={} handshakes_failed={} closes={:?}",
                    open.load(Ordering::Relaxed),
                    handshakes_failed.load(Ordering::Relaxed),
                    closes.lock().unwrap()
                );
                std::io::stdout().flush().unwrap();
            }
        }
    });
    drop(app);
}

/// Round trips of the honest clients, in 0.1 ms buckets up to 10 s.
struct Histogram {
    buckets: Vec<AtomicU64>,
}

impl Histogram {
    const BUCKETS: usize = 100_000;

    fn new() -> Histogram {
        Histogram {
            buckets: (0..=Self::BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn record(&self, d: Duration) {
        let i = usize::try_from(d.as_micros() / 100).unwrap_or(usize::MAX);
        self.buckets[i.min(Self::BUCKETS)].fetch_add(1, Ordering::Relaxed);
    }

    fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    /// The upper edge of the bucket holding quantile `q`, in milliseconds.
    fn quantile_ms(&self, q: f64) -> f64 {
        let total = self.count();
        let want = (total as f64 * q).ceil() as u64;
        let mut seen = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            seen += b.load(Ordering::Relaxed);
            if seen >= want.max(1) {
                return (i + 1) as f64 / 10.0;
            }
        }
        f64::INFINITY
    }
}

#[derive(Default)]
struct Honest {
    connected: AtomicU64,
    reconnects: AtomicU64,
    missed: AtomicU64,
    slow: AtomicU64,
}

/// How a hostile connection ended, as the attacker saw it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    /// The server sent a close frame with this code.
    Close(u16),
    /// A close frame without a code.
    CloseNoCode,
    /// The server dropped the TCP connection (EOF or reset) without a close frame.
    Dropped,
    /// The attack got what an honest message gets (the deep frame echoed back).
    Served,
    /// The attacker hung up first (the reset kind).
    HungUp,
    /// Still open when the attack's time ran out: the server did not act.
    StillOpen,
    /// Could not connect or complete the handshake.
    ConnectFailed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Deep,
    Slowloris,
    JsonFlood,
    PingFlood,
    Unread,
    Oversize,
    Garbage,
    Reset,
}

const KINDS: [Kind; 8] = [
    Kind::Deep,
    Kind::Slowloris,
    Kind::JsonFlood,
    Kind::PingFlood,
    Kind::Unread,
    Kind::Oversize,
    Kind::Garbage,
    Kind::Reset,
];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Deep => "deep",
            Kind::Slowloris => "slowloris",
            Kind::JsonFlood => "json-flood",
            Kind::PingFlood => "ping-flood",
            Kind::Unread => "unread",
            Kind::Oversize => "oversize",
            Kind::Garbage => "garbage",
            Kind::Reset => "reset",
        }
    }
}

#[derive(Default)]
struct Tally {
    outcomes: BTreeMap<Outcome, u64>,
    /// Longest time from the start of the hostile act to the server's reaction.
    max_reaction: Duration,
}

type Tallies = Arc<Mutex<BTreeMap<Kind, Tally>>>;

type Ws = WebSocketStream<TcpStream>;

/// No limits on the attacker's side: it must be able to send what the server refuses.
fn unlimited() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(None)
        .max_frame_size(None)
}

async fn open(port: u16) -> Option<Ws> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    let _ = tcp.set_nodelay(true);
    let url = format!("ws://127.0.0.1:{port}/ws");
    let (ws, _) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::client_async_with_config(url, tcp, Some(unlimited())),
    )
    .await
    .ok()?
    .ok()?;
    Some(ws)
}

/// Reads until the server ends the connection, for at most `limit`.
async fn outcome_of(ws: &mut Ws, limit: Duration) -> Outcome {
    let end = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(end, ws.next()).await {
            Err(_) => return Outcome::StillOpen,
            Ok(None) => return Outcome::Dropped,
            Ok(Some(Ok(Message::Close(Some(f))))) => return Outcome::Close(u16::from(f.code)),
            Ok(Some(Ok(Message::Close(None)))) => return Outcome::CloseNoCode,
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_))) => return Outcome::Dropped,
        }
    }
}

const ATTACK_LIMIT: Duration = Duration::from_secs(40);

async fn attack(kind: Kind, port: u16) -> Outcome {
    if kind == Kind::Slowloris {
        let Ok(mut tcp) = TcpStream::connect(("127.0.0.1", port)).await else {
            return Outcome::ConnectFailed;
        };
        let _ = tcp
            .write_all(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            .await;
        let end = tokio::time::Instant::now() + ATTACK_LIMIT;
        let mut buf = [0u8; 256];
        loop {
            tokio::select! {
                r = tcp.read(&mut buf) => match r {
                    Ok(0) | Err(_) => return Outcome::Dropped,
                    Ok(_) => {}
                },
                () = tokio::time::sleep(Duration::from_secs(2)) => {
                    if tcp.write_all(b"X").await.is_err() {
                        return Outcome::Dropped;
                    }
                }
                () = tokio::time::sleep_until(end) => return Outcome::StillOpen,
            }
        }
    }
    let Some(mut ws) = open(port).await else {
        return Outcome::ConnectFailed;
    };
    match kind {
        Kind::Deep => {
            let depth = 33_000;
            let text = format!("{{\"a\":{}{}}}", "[".repeat(depth), "]".repeat(depth));
            if ws.send(Message::text(text.clone())).await.is_err() {
                return Outcome::Dropped;
            }
            let end = tokio::time::Instant::now() + Duration::from_secs(10);
            loop {
                match tokio::time::timeout_at(end, ws.next()).await {
                    Ok(Some(Ok(Message::Text(t)))) if t.len() == text.len() => {
                        let _ = ws.close(None).await;
                        return Outcome::Served;
                    }
                    Ok(Some(Ok(Message::Close(Some(f))))) => {
                        return Outcome::Close(u16::from(f.code))
                    }
                    Ok(Some(Ok(_))) => {}
                    Ok(None | Some(Err(_))) => return Outcome::Dropped,
                    Err(_) => return Outcome::StillOpen,
                }
            }
        }
        Kind::JsonFlood | Kind::PingFlood => {
            let (mut sink, mut stream) = ws.split();
            let stop = Arc::new(AtomicBool::new(false));
            let s = Arc::clone(&stop);
            let flood = tokio::spawn(async move {
                let mut seq = 0u64;
                while !s.load(Ordering::Relaxed) && seq < 2_000_000 {
                    let m = if kind == Kind::JsonFlood {
                        Message::text(format!("{{\"type\":\"ping\",\"seq\":{seq}}}"))
                    } else {
                        Message::Ping(seq.to_be_bytes().to_vec().into())
                    };
                    if sink.feed(m).await.is_err() {
                        break;
                    }
                    if seq % 64 == 63 && sink.flush().await.is_err() {
                        break;
                    }
                    seq += 1;
                }
            });
            let end = tokio::time::Instant::now() + ATTACK_LIMIT;
            let outcome = loop {
                match tokio::time::timeout_at(end, stream.next()).await {
                    Err(_) => break Outcome::StillOpen,
                    Ok(None | Some(Err(_))) => break Outcome::Dropped,
                    Ok(Some(Ok(Message::Close(Some(f))))) => {
                        break Outcome::Close(u16::from(f.code))
                    }
                    Ok(Some(Ok(Message::Close(None)))) => break Outcome::CloseNoCode,
                    Ok(Some(Ok(_))) => {}
                }
            };
            stop.store(true, Ordering::Relaxed);
            flood.abort();
            outcome
        }
        Kind::Unread => {
            // Echoes pile up unread; then nothing at all. Sends that block (the server stopped
            // reading) end the sending early.
            let chunk = vec![0x55u8; 512 * 1024];
            for _ in 0..64 {
                let send = ws.send(Message::binary(chunk.clone()));
                match tokio::time::timeout(Duration::from_secs(2), send).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return Outcome::Dropped,
                    Err(_) => break,
                }
            }
            // Silence for longer than the idle timeout (5 s) and its grace, then look.
            tokio::time::sleep(Duration::from_secs(12)).await;
            // Whatever is buffered comes first; a closed server ends the stream right after.
            match outcome_of(&mut ws, Duration::from_secs(3)).await {
                Outcome::StillOpen => Outcome::StillOpen,
                other => other,
            }
        }
        Kind::Oversize => {
            let big = "x".repeat(2 * 1024 * 1024);
            let _ = ws.send(Message::text(big)).await;
            outcome_of(&mut ws, ATTACK_LIMIT).await
        }
        Kind::Garbage => {
            // An unmasked frame with a reserved opcode, then noise.
            let _ = ws
                .get_mut()
                .write_all(&[0x83, 0x05, 1, 2, 3, 4, 5, 0xff, 0xff])
                .await;
            outcome_of(&mut ws, ATTACK_LIMIT).await
        }
        Kind::Reset => {
            for i in 0..3 {
                let _ = ws.send(Message::text(format!("hello {i}"))).await;
            }
            let _ = ws.get_ref().set_zero_linger();
            drop(ws);
            Outcome::HungUp
        }
        Kind::Slowloris => unreachable!("handled above"),
    }
}

fn main() {
    if std::env::args().any(|a| a == "--serve") {
        serve();
        return;
    }
    let honest = arg("--honest", 10_000);
    let secs = arg("--secs", 600);
    let attackers = arg("--attackers", 3);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .arg("--serve")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut child_in = child.stdin.take().unwrap();
    let mut child_out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    child_out.read_line(&mut line).unwrap();
    let port: u16 = line.trim().parse().unwrap();
    let mut stats = move || -> String {
        if writeln!(child_in, "stats").is_err() {
            return "server gone".to_owned();
        }
        let mut l = String::new();
        let _ = child_out.read_line(&mut l);
        l.trim().to_owned()
    };
    std::thread::sleep(Duration::from_millis(300));
    let rss0 = rss_kib(pid);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let counts = Arc::new(Honest::default());
    let rtts = Arc::new(Histogram::new());
    let window = Arc::new(AtomicBool::new(false));
    let url = format!("ws://127.0.0.1:{port}/ws");
    println!(
        "{honest} honest clients to {url}, 1 s pings; {attackers} attacker(s) per kind; {secs} s"
    );
    let clients = rt.block_on(async {
        let mut clients = Vec::new();
        for i in 0..honest {
            let options = ClientOptions {
                config: one_second_client(),
                seed: i,
                ..ClientOptions::default()
            };
            let mut client = connect(url.clone(), options).unwrap();
            let (counts, rtts, window) =
                (Arc::clone(&counts), Arc::clone(&rtts), Arc::clone(&window));
            let mut events = std::mem::replace(&mut client.events, tokio::sync::mpsc::channel(1).1);
            tokio::spawn(async move {
                while let Some(e) = events.recv().await {
                    let on = window.load(Ordering::Relaxed);
                    match e {
                        Event::Connected => {
                            counts.connected.fetch_add(1, Ordering::Relaxed);
                        }
                        Event::Reconnect { .. } if on => {
                            counts.reconnects.fetch_add(1, Ordering::Relaxed);
                        }
                        Event::PongMissed { .. } if on => {
                            counts.missed.fetch_add(1, Ordering::Relaxed);
                        }
                        Event::Slow { .. } if on => {
                            counts.slow.fetch_add(1, Ordering::Relaxed);
                        }
                        Event::Rtt(d) if on => rtts.record(d),
                        _ => {}
                    }
                }
            });
            clients.push(client);
            if i % 500 == 499 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        while counts.connected.load(Ordering::Relaxed) < honest
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        clients
    });
    let connected = counts.connected.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_secs(3));
    println!(
        "honest connected: {connected}/{honest}; server: {}",
        stats()
    );
    let rss_honest = rss_kib(pid);
    let cpu0 = cpu_secs(pid);

    // The attackers, on a thread and runtime of their own.
    let tallies: Tallies = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let attackers_thread = {
        let (tallies, stop) = (Arc::clone(&tallies), Arc::clone(&stop));
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let mut loops = Vec::new();
                for kind in KINDS {
                    for _ in 0..attackers {
                        let (tallies, stop) = (Arc::clone(&tallies), Arc::clone(&stop));
                        loops.push(tokio::spawn(async move {
                            while !stop.load(Ordering::Relaxed) {
                                let started = Instant::now();
                                let outcome = attack(kind, port).await;
                                let took = started.elapsed();
                                {
                                    let mut t = tallies.lock().unwrap();
                                    let tally = t.entry(kind).or_default();
                                    *tally.outcomes.entry(outcome).or_default() += 1;
                                    tally.max_reaction = tally.max_reaction.max(took);
                                }
                                tokio::time::sleep(Duration::from_millis(250)).await;
                            }
                        }));
                    }
                }
                for l in loops {
                    let _ = l.await;
                }
            });
        })
    };

    window.store(true, Ordering::Relaxed);
    let started = Instant::now();
    let mut timeline = vec![(0u64, rss_kib(pid))];
    println!("| t (s) | server RSS (MiB) | server |");
    println!("|---|---|---|");
    while started.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(
            Duration::from_secs(10)
                .min(Duration::from_secs(secs).saturating_sub(started.elapsed())),
        );
        let t = started.elapsed().as_secs();
        let rss = rss_kib(pid);
        timeline.push((t, rss));
        if t % 60 < 10 || started.elapsed() >= Duration::from_secs(secs) {
            println!("| {t} | {:.1} | {} |", rss as f64 / 1024.0, stats());
        }
        if child.try_wait().ok().flatten().is_some() {
            println!("SERVER DIED");
            break;
        }
    }
    window.store(false, Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    let cpu1 = cpu_secs(pid);
    let _ = attackers_thread.join();
    let alive = child.try_wait().ok().flatten().is_none();
    let server_end = stats();

    let rss_max = timeline.iter().map(|(_, r)| *r).max().unwrap_or(0);
    let rss_min = timeline.iter().map(|(_, r)| *r).min().unwrap_or(0);
    let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
    println!();
    println!("| figure | value |");
    println!("|---|---|");
    println!("| window | {secs} s |");
    println!("| server alive at the end | {alive} |");
    println!("| honest clients connected | {connected} |");
    println!(
        "| honest reconnects in window | {} |",
        n(&counts.reconnects)
    );
    println!("| honest missed pongs in window | {} |", n(&counts.missed));
    println!("| honest Slow warnings in window | {} |", n(&counts.slow));
    println!(
        "| honest RTT (client side) p50 / p99 / p99.9 | {:.1} / {:.1} / {:.1} ms ({} samples) |",
        rtts.quantile_ms(0.5),
        rtts.quantile_ms(0.99),
        rtts.quantile_ms(0.999),
        rtts.count()
    );
    println!(
        "| server RSS | {:.1} MiB empty, {:.1} MiB with the honest clients ({:.1} KiB each); during the attacks {:.1}–{:.1} MiB |",
        rss0 as f64 / 1024.0,
        rss_honest as f64 / 1024.0,
        rss_honest.saturating_sub(rss0) as f64 / connected.max(1) as f64,
        rss_min as f64 / 1024.0,
        rss_max as f64 / 1024.0
    );
    println!(
        "| server CPU | {:.1}% of one core |",
        (cpu1 - cpu0) / secs as f64 * 100.0
    );
    println!("| server closes | {server_end} |");
    println!();
    println!("| hostile kind | outcomes (attacker's view) | longest attack |");
    println!("|---|---|---|");
    for (kind, tally) in tallies.lock().unwrap().iter() {
        let outcomes: Vec<String> = tally
            .outcomes
            .iter()
            .map(|(o, c)| format!("{o:?} × {c}"))
            .collect();
        println!(
            "| {} | {} | {:.1} s |",
            kind.name(),
            outcomes.join(", "),
            tally.max_reaction.as_secs_f64()
        );
    }
    drop(clients);
    let _ = child.kill();
    let _ = child.wait();
}
