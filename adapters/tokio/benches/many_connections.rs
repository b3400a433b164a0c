//! 10,000 concurrent heartbeat connections on loopback, 1 s pings both ways, for 60 s: spurious
//! reconnects and closes, memory per connection and CPU used.
//!
//! ```text
//! ulimit -n 20000   # each process holds one socket per connection
//! cargo bench -p heartbeat-tokio --bench many_connections -- [--conns 10000] [--secs 60] \
//!     [--default-config]
//! ```
//!
//! The server runs in a child process (this binary with `--serve`) on one I/O thread, so its
//! memory and CPU are measured alone (from /proc); the clients (heartbeat-tokio `Client`s, 2
//! worker threads) run here. Bounded: ramp-up at most 120 s, then the window, then stop.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use heartbeat_core::{ClientConfig, Event, ServerConfig, Status};
use heartbeat_tokio::{accept, connect, ClientOptions, CloseCause, ConnectionEvent, ServerOptions};
use tokio::net::TcpSocket;

use common::{arg, cpu_secs, rss_kib};

/// `--default-config`: the library's default heartbeat settings (15 s client pings, 25 s server
/// pings) instead of 1 s pings both ways: what idle connections cost in production.
fn default_config() -> bool {
    std::env::args().any(|a| a == "--default-config")
}

fn server_config() -> ServerConfig {
    if default_config() {
        ServerConfig::default()
    } else {
        common::one_second_server()
    }
}

fn client_config() -> ClientConfig {
    if default_config() {
        ClientConfig::default()
    } else {
        common::one_second_client()
    }
}

/// The child: one I/O thread serving every connection; answers `stats` on stdin.
fn serve() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let closes = Arc::new(Mutex::new(std::collections::BTreeMap::<String, u64>::new()));
    let open = Arc::new(AtomicU64::new(0));
    let rtts = Arc::new(AtomicU64::new(0));
    let (c, o, r) = (Arc::clone(&closes), Arc::clone(&open), Arc::clone(&rtts));
    rt.spawn(async move {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(4096).unwrap();
        println!("{}", listener.local_addr().unwrap().port());
        std::io::stdout().flush().unwrap();
        let options = ServerOptions {
            // The default limits: 4 KiB read buffers (heartbeats are tiny), 1 MiB budgets.
            config: server_config(),
            ..ServerOptions::default()
        };
        loop {
            let Ok((tcp, _)) = listener.accept().await else { continue };
            let _ = tcp.set_nodelay(true);
            let (options, c, o, r) = (options.clone(), Arc::clone(&c), Arc::clone(&o), Arc::clone(&r));
            tokio::spawn(async move {
                let Ok(mut conn) = accept(tcp, &options).await else { return };
                o.fetch_add(1, Ordering::Relaxed);
                loop {
                    tokio::select! {
                        m = conn.messages.recv() => if m.is_none() { /* ended */ },
                        e = conn.events.recv() => match e {
                            Some(ConnectionEvent::Rtt(_)) => { r.fetch_add(1, Ordering::Relaxed); }
                            Some(ConnectionEvent::Closed(cause)) => {
                                let key = match cause {
                                    CloseCause::Heartbeat(reason) => format!("heartbeat:{}", reason.as_str()),
                                    CloseCause::Peer { .. } => "peer".to_owned(),
                                    CloseCause::Application => "application".to_owned(),
                                    CloseCause::Error(_) => "error".to_owned(),
                                    _ => "other".to_owned(),
                                };
                                *c.lock().unwrap().entry(key).or_default() += 1;
                                o.fetch_sub(1, Ordering::Relaxed);
                                return;
                            }
                            Some(_) => {}
                            None => return,
                        },
                    }
                }
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
    rt.block_on(async move {
        while let Some(line) = rx.recv().await {
            if line.trim() == "stats" {
                println!(
                    "open={} rtts={} closes={:?}",
                    open.load(Ordering::Relaxed),
                    rtts.load(Ordering::Relaxed),
                    closes.lock().unwrap()
                );
                std::io::stdout().flush().unwrap();
            }
        }
    });
}

#[derive(Default)]
struct Counts {
    reconnects: AtomicU64,
    missed: AtomicU64,
    slow: AtomicU64,
    rtts: AtomicU64,
    healthy: AtomicU64,
}

fn main() {
    if std::env::args().any(|a| a == "--serve") {
        serve();
        return;
    }
    let conns = arg("--conns", 10_000);
    let secs = arg("--secs", 60);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .arg("--serve")
        .args(default_config().then_some("--default-config"))
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
    let mut stats = |label: &str| {
        writeln!(child_in, "stats").unwrap();
        let mut l = String::new();
        child_out.read_line(&mut l).unwrap();
        println!("server {label}: {}", l.trim());
    };
    std::thread::sleep(Duration::from_millis(300));
    let server_rss0 = rss_kib(pid);
    let self_pid = std::process::id();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client_rss0 = rss_kib(self_pid);
    let counts = Arc::new(Counts::default());
    let rtt_max_us = Arc::new(AtomicU64::new(0));
    let window_open = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let url = format!("ws://127.0.0.1:{port}/ws");
    let pings = if default_config() {
        "default pings (client 15 s, server 25 s)"
    } else {
        "1 s pings both ways"
    };
    println!("{conns} connections to {url}, {pings}, {secs} s window");
    let clients = rt.block_on(async {
        let mut clients = Vec::new();
        for i in 0..conns {
            let options = ClientOptions {
                config: client_config(),
                seed: i,
                ..ClientOptions::default()
            };
            let mut client = connect(url.clone(), options).unwrap();
            let counts = Arc::clone(&counts);
            let max = Arc::clone(&rtt_max_us);
            let window = Arc::clone(&window_open);
            let mut events = std::mem::replace(&mut client.events, tokio::sync::mpsc::channel(1).1);
            tokio::spawn(async move {
                while let Some(e) = events.recv().await {
                    match e {
                        Event::Reconnect { .. } => {
                            counts.reconnects.fetch_add(1, Ordering::Relaxed);
                        }
                        Event::PongMissed { .. } => {
                            counts.missed.fetch_add(1, Ordering::Relaxed);
                        }
                        Event::Slow { .. } => {
                            counts.slow.fetch_add(1, Ordering::Relaxed);
                        }
                        Event::Rtt(d) => {
                            counts.rtts.fetch_add(1, Ordering::Relaxed);
                            if window.load(Ordering::Relaxed) {
                                max.fetch_max(d.as_micros() as u64, Ordering::Relaxed);
                            }
                        }
                        Event::Connected => {
                            counts.healthy.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {}
                    }
                }
            });
            clients.push(client);
            if i % 500 == 499 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        // Ramp-up, bounded: wait until every client has connected once.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        while counts.healthy.load(Ordering::Relaxed) < conns
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        clients
    });
    let connected = counts.healthy.load(Ordering::Relaxed);
    println!("connected: {connected}/{conns}; settling 3 s");
    std::thread::sleep(Duration::from_secs(3));
    stats("before window");
    let (r0, m0, s0) = (
        counts.reconnects.load(Ordering::Relaxed),
        counts.missed.load(Ordering::Relaxed),
        counts.slow.load(Ordering::Relaxed),
    );
    let rtt0 = counts.rtts.load(Ordering::Relaxed);
    let (server_cpu0, client_cpu0) = (cpu_secs(pid), cpu_secs(self_pid));
    let server_rss1 = rss_kib(pid);
    let client_rss1 = rss_kib(self_pid);
    window_open.store(true, Ordering::Relaxed);
    std::thread::sleep(Duration::from_secs(secs));
    window_open.store(false, Ordering::Relaxed);
    let (server_cpu1, client_cpu1) = (cpu_secs(pid), cpu_secs(self_pid));
    let unhealthy = clients
        .iter()
        .filter(|c| c.status.borrow().status != Status::Healthy)
        .count();
    stats("after window");
    let d = |a: &AtomicU64, b: u64| a.load(Ordering::Relaxed) - b;
    println!("| figure | value |");
    println!("|---|---|");
    println!("| clients connected | {connected} |");
    println!("| window | {secs} s |");
    println!(
        "| client reconnects in window | {} |",
        d(&counts.reconnects, r0)
    );
    println!(
        "| client missed pongs in window | {} |",
        d(&counts.missed, m0)
    );
    println!(
        "| client Slow warnings in window | {} |",
        d(&counts.slow, s0)
    );
    println!("| clients not Healthy at the end | {unhealthy} |");
    println!(
        "| client RTT samples in window | {} (max {:.1} ms) |",
        d(&counts.rtts, rtt0),
        rtt_max_us.load(Ordering::Relaxed) as f64 / 1e3
    );
    println!(
        "| server RSS | {} MiB idle, {} MiB with {connected} connections: {:.1} KiB per connection |",
        server_rss0 / 1024,
        server_rss1 / 1024,
        (server_rss1.saturating_sub(server_rss0)) as f64 / connected.max(1) as f64
    );
    println!(
        "| server CPU (1 I/O thread) | {:.1}% of one core ({:.2} s in {secs} s) |",
        (server_cpu1 - server_cpu0) / secs as f64 * 100.0,
        server_cpu1 - server_cpu0
    );
    println!(
        "| client process | {:.1} KiB per connection, {:.1}% of one core |",
        (client_rss1.saturating_sub(client_rss0)) as f64 / connected.max(1) as f64,
        (client_cpu1 - client_cpu0) / secs as f64 * 100.0
    );
    rt.block_on(async {
        for c in clients {
            drop(c);
        }
    });
    let _ = child.kill();
    let _ = child.wait();
}
