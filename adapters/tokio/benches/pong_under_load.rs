//! Pong round trip under load: heartbeat-tokio's server against a naive tokio-tungstenite server
//! that processes each message inline, side by side in one run.
//!
//! One connection sends an app-level ping (`{"type":"ping","seq":n}`) every 100 ms; four other
//! connections send data messages that each cost the server's handler 20 ms of CPU:
//! (a) 10 msg/s per connection with random (Poisson) arrivals, about 80% of one core;
//! (b) as fast as they can. Phase (0), the same connections sending nothing, is the baseline
//! this machine gives.
//!
//! ```text
//! cargo bench -p heartbeat-tokio --bench pong_under_load -- [--secs 20]
//! ```
//!
//! A ping counts as lost when no pong came back by the end of its phase plus 2 s. Every run is
//! bounded: 9 x (secs + 2 s) plus set-up. The load average is printed before and after: on a
//! shared machine the tail is the OS scheduler's, not the server's.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant as StdInstant};

use futures_util::{SinkExt, StreamExt};
use heartbeat_core::{Message as Hb, ServerConfig};
use heartbeat_tokio::{accept, IoThread, ServerOptions};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

const WORK: Duration = Duration::from_millis(20);
const DATA_CONNECTIONS: usize = 4;
const PING_EVERY: Duration = Duration::from_millis(100);
const GRACE: Duration = Duration::from_secs(2);

fn burn(d: Duration) {
    let start = StdInstant::now();
    let mut x = 0u64;
    while start.elapsed() < d {
        for i in 0..1000u64 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i);
        }
        std::hint::black_box(x);
    }
}

/// Bumped at the end of each phase; handlers of older phases stop at once, so a backlog left by
/// a flood never spills into the next measurement.
static PHASE: AtomicU64 = AtomicU64::new(0);

/// heartbeat-tokio: sockets and heartbeats on an I/O thread, handlers on a 2-thread app runtime.
fn ours(app: tokio::runtime::Handle) -> (IoThread, SocketAddr) {
    let io = IoThread::spawn("bench-io").unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let options = ServerOptions {
        config: ServerConfig {
            // The pinger pings every 100 ms by design; strike policing would close it.
            min_client_ping_interval: Duration::ZERO,
            ..ServerConfig::default()
        },
        ..ServerOptions::default()
    };
    io.handle().spawn(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        tx.send(listener.local_addr().unwrap()).unwrap();
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let options = options.clone();
            let app = app.clone();
            tokio::spawn(async move {
                let Ok(mut conn) = accept(tcp, &options).await else {
                    return;
                };
                let phase = PHASE.load(Ordering::SeqCst);
                app.spawn(async move {
                    while conn.messages.recv().await.is_some() {
                        if PHASE.load(Ordering::SeqCst) != phase {
                            return;
                        }
                        burn(WORK);
                    }
                });
            });
        }
    });
    (io, rx.recv().unwrap())
}

/// The naive server: one task per connection answering pings and processing data inline.
fn naive(rt: &tokio::runtime::Runtime) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    rt.spawn(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        tx.send(listener.local_addr().unwrap()).unwrap();
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let _ = tcp.set_nodelay(true);
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                let phase = PHASE.load(Ordering::SeqCst);
                while let Some(Ok(m)) = ws.next().await {
                    if PHASE.load(Ordering::SeqCst) != phase {
                        return;
                    }
                    if let Message::Text(t) = &m {
                        if let Ok(Hb::Ping { seq }) = Hb::from_json(t.as_str()) {
                            let pong = format!(r#"{{"type":"pong","seq":{seq}}}"#);
                            if ws.send(Message::text(pong)).await.is_err() {
                                return;
                            }
                            continue;
                        }
                        burn(WORK);
                    }
                }
            });
        }
    });
    rx.recv().unwrap()
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Load {
    /// Data connections open, nothing sent: what this machine gives at best.
    Idle,
    Poisson80,
    Flood,
}

struct Outcome {
    rtts: Vec<Duration>,
    lost: usize,
    sent: usize,
    data_sent: u64,
}

/// The pinger runs on a thread and runtime of its own (prioritized when allowed), so the
/// data senders never delay a measurement; both servers are measured by the same instrument.
fn pinger(
    url: String,
    end: Instant,
) -> (
    std::thread::JoinHandle<(Vec<Duration>, usize)>,
    std::sync::mpsc::Receiver<()>,
) {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        prioritize_this_thread();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let (ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true)
                .await
                .unwrap();
            let _ = ready_tx.send(());
            let (mut sink, mut stream) = ws.split();
            let sent_at = Arc::new(std::sync::Mutex::new(Vec::<Instant>::new()));
            let s2 = Arc::clone(&sent_at);
            let reader = tokio::spawn(async move {
                let mut rtts = Vec::new();
                while let Ok(Some(Ok(m))) =
                    tokio::time::timeout_at(end + GRACE, stream.next()).await
                {
                    if let Message::Text(t) = m {
                        if let Ok(Hb::Pong { seq }) = Hb::from_json(t.as_str()) {
                            let now = Instant::now();
                            let sent = s2.lock().unwrap()[seq as usize];
                            rtts.push(now - sent);
                        }
                    }
                }
                rtts
            });
            let mut tick = tokio::time::interval(PING_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut seq = 0u64;
            loop {
                tick.tick().await;
                if Instant::now() >= end {
                    break;
                }
                sent_at.lock().unwrap().push(Instant::now());
                let ping = format!(r#"{{"type":"ping","seq":{seq}}}"#);
                match tokio::time::timeout_at(end, sink.send(Message::text(ping))).await {
                    Ok(Ok(())) => seq += 1,
                    // A ping that could not even be written counts as sent and lost.
                    _ => break,
                }
            }
            let rtts = reader.await.unwrap_or_default();
            let sent = sent_at.lock().unwrap().len();
            (rtts, sent)
        })
    });
    (handle, ready_rx)
}

async fn phase(addr: SocketAddr, load: Load, secs: u64, seed: u64) -> Outcome {
    let url = format!("ws://{addr}/ws");
    let end = Instant::now() + Duration::from_secs(secs);
    let data_sent = Arc::new(AtomicU64::new(0));
    let (pinger, ready) = pinger(url.clone(), end);
    ready.recv().unwrap();
    // Every data connection is open before any data flows: a flooded naive server accepts
    // nothing for seconds.
    let mut data = Vec::new();
    for _ in 0..DATA_CONNECTIONS {
        let (ws, _) = tokio_tungstenite::connect_async_with_config(url.clone(), None, true)
            .await
            .unwrap();
        data.push(ws);
    }
    let mut senders = Vec::new();
    for (c, ws) in data.into_iter().enumerate() {
        let (mut sink, mut stream) = ws.split();
        let count = Arc::clone(&data_sent);
        let mut rng = seed ^ (c as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        senders.push(tokio::spawn(async move {
            let drain = tokio::spawn(async move { while stream.next().await.is_some() {} });
            let payload = "x".repeat(200);
            let mut n = 0u64;
            let mut next = Instant::now();
            if load == Load::Idle {
                tokio::time::sleep_until(end).await;
            }
            while Instant::now() < end {
                if load == Load::Poisson80 {
                    // Exponential gaps, mean 100 ms: 10 msg/s with random arrivals.
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let u = ((rng >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
                    next += Duration::from_secs_f64(-u.ln() * 0.1);
                    tokio::time::sleep_until(next.min(end)).await;
                    if Instant::now() >= end {
                        break;
                    }
                }
                let m = format!(r#"{{"type":"data","n":{n},"payload":"{payload}"}}"#);
                match tokio::time::timeout_at(end, sink.send(Message::text(m))).await {
                    Ok(Ok(())) => {
                        n += 1;
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => break,
                }
            }
            drain.abort();
            drop(sink);
        }));
    }
    tokio::time::sleep_until(end + GRACE).await;
    let (rtts, sent) = tokio::task::spawn_blocking(move || pinger.join().unwrap())
        .await
        .unwrap();
    PHASE.fetch_add(1, Ordering::SeqCst);
    for s in senders {
        // Bounded: each sender stops at `end`.
        let _ = tokio::time::timeout(GRACE, s).await;
    }
    Outcome {
        lost: sent - rtts.len(),
        rtts,
        sent,
        data_sent: data_sent.load(Ordering::Relaxed),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

fn row(server: &str, load: &str, secs: u64, o: &mut Outcome) -> String {
    o.rtts.sort();
    let pick = |q: f64| {
        if o.rtts.is_empty() {
            "-".to_owned()
        } else {
            let i = ((o.rtts.len() as f64 * q).ceil() as usize).clamp(1, o.rtts.len()) - 1;
            ms(o.rtts[i])
        }
    };
    let max = o.rtts.last().map_or("-".to_owned(), |d| ms(*d));
    format!(
        "| {server} | {load} | {} | {} | {} | {} | {} / {} | {} |",
        pick(0.50),
        pick(0.99),
        max,
        o.rtts.len(),
        o.lost,
        o.sent,
        o.data_sent as f64 / secs as f64 * 1.0,
    )
}

/// Sets the calling thread's nice value with `renice` (negative values need root). Returns
/// whether it worked.
fn renice_this_thread(nice: i32) -> bool {
    let Ok(link) = std::fs::read_link("/proc/thread-self") else {
        return false;
    };
    let Some(tid) = link.file_name().and_then(|t| t.to_str()) else {
        return false;
    };
    std::process::Command::new("renice")
        .args(["-n", &nice.to_string(), "-p", tid])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Puts the calling thread in the real-time class (SCHED_FIFO, priority 10) with `chrt`, which
/// needs root or CAP_SYS_NICE; falls back to nice -10. Returns what it got.
fn prioritize_this_thread() -> &'static str {
    let Ok(link) = std::fs::read_link("/proc/thread-self") else {
        return "default";
    };
    let Some(tid) = link.file_name().and_then(|t| t.to_str()).map(str::to_owned) else {
        return "default";
    };
    let fifo = std::process::Command::new("chrt")
        .args(["-f", "-p", "10", &tid])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if fifo {
        "SCHED_FIFO 10"
    } else if renice_this_thread(-10) {
        "nice -10"
    } else {
        "default"
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let secs = args
        .iter()
        .position(|a| a == "--secs")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(20u64);
    let app = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("ours-app")
        .enable_all()
        .build()
        .unwrap();
    let naive_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("naive")
        .enable_all()
        .build()
        .unwrap();
    let (_io, ours_addr) = ours(app.handle().clone());
    // The same server with its I/O thread prioritized (SCHED_FIFO, or nice -10): the deployment
    // we recommend when the machine runs other work (the handlers stay at the default priority).
    let app2 = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("ours-app-2")
        .enable_all()
        .build()
        .unwrap();
    let (io_prio, ours_prio_addr) = ours(app2.handle().clone());
    let (tx, rx) = std::sync::mpsc::channel();
    io_prio.handle().spawn(async move {
        let _ = tx.send(prioritize_this_thread());
    });
    let io_priority = rx.recv().unwrap_or("default");
    let loadavg = || std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average before: {}", loadavg().trim());
    println!(
        "prioritized I/O thread: {io_priority}; the pinger (the instrument) runs on a thread of its own with the same priority, for every server"
    );
    let naive_addr = naive(&naive_rt);
    let load_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "pong under load: {DATA_CONNECTIONS} data connections x {} ms CPU per message, 1 pinger every {} ms, {secs} s per phase",
        WORK.as_millis(),
        PING_EVERY.as_millis()
    );
    println!(
        "| server | load | p50 ms | p99 ms | max ms | pongs | lost / pings | data msg/s sent |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (load, name) in [
        (Load::Idle, "(0) no data (baseline)"),
        (Load::Poisson80, "(a) 10 msg/s/conn, ~80% of a core"),
        (Load::Flood, "(b) flood"),
    ] {
        for (server, addr) in [
            ("heartbeat-tokio", ours_addr),
            ("heartbeat-tokio, I/O thread prioritized", ours_prio_addr),
            ("naive tokio-tungstenite", naive_addr),
        ] {
            eprintln!("{server} {name}");
            let mut o = load_rt.block_on(phase(addr, load, secs, 0x5eed));
            println!("{}", row(server, name, secs, &mut o));
        }
    }
    println!("load average after: {}", loadavg().trim());
}
