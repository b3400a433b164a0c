//! heartbeat-tokio end to end over real loopback TCP (127.0.0.1, port 0), through a
//! fault-injection proxy that can delay, stall and cut. Real time with short configs (300 ms
//! pings), so each test takes a few seconds; every wait is bounded.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use heartbeat_core::{
    ClientConfig, Config, Event, NetworkAssumptions, ReconnectReason, ServerConfig, Status,
};
use heartbeat_tokio::{accept, connect, ClientHandle, ClientOptions, IoThread, ServerOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::{timeout, Instant};
use tokio_tungstenite::tungstenite::Message;

const LIMIT: Duration = Duration::from_secs(30);

/// Short timings; `heartbeat check` accepts them (see `the_test_config_is_valid`).
fn config() -> Config {
    Config {
        client: ClientConfig {
            ping_interval: Duration::from_millis(300),
            pong_timeout: Duration::from_millis(250),
            slow_threshold: 2,
            max_missed_pongs: 6,
            stall_threshold: Duration::from_millis(200),
            connect_timeout: Duration::from_secs(1),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_millis(500),
        },
        server: ServerConfig {
            ping_interval: Duration::from_millis(300),
            idle_timeout: Duration::from_secs(3),
            // Flood policing on: a stalled proxy releases the client's pings in one burst, which
            // the core's burst allowance (idle_timeout - this) must absorb.
            min_client_ping_interval: Duration::from_millis(200),
            max_ping_strikes: 2,
        },
        network: NetworkAssumptions {
            max_latency: Duration::from_millis(30),
            max_server_delay: Duration::from_millis(80),
            max_timer_lateness: Duration::from_millis(50),
            max_server_timer_lateness: Duration::from_millis(50),
        },
    }
}

/// An echo server on its own I/O thread; dropping it kills every connection at once.
struct EchoServer {
    addr: SocketAddr,
    io: IoThread,
}

fn echo_server() -> EchoServer {
    echo_server_with(config().server)
}

fn echo_server_with(server: ServerConfig) -> EchoServer {
    let io = IoThread::spawn("test-io").unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let options = ServerOptions {
        config: server,
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
            tokio::spawn(async move {
                let Ok(mut conn) = accept(tcp, &options).await else {
                    return;
                };
                while let Some(m) = conn.messages.recv().await {
                    if conn.sender.send(m).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    let addr = rx.recv_timeout(LIMIT).unwrap();
    EchoServer { addr, io }
}

/// A TCP proxy in front of a server: adds delay, stalls (holds every byte, both ways, on every
/// connection, new ones included), cuts (closes every current connection).
struct Proxy {
    addr: SocketAddr,
    stalled: watch::Sender<bool>,
    cut: watch::Sender<u64>,
    delay_ms: Arc<AtomicU64>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stalled, _) = watch::channel(false);
        let (cut, _) = watch::channel(0u64);
        let delay_ms = Arc::new(AtomicU64::new(0));
        let (s, c, d) = (stalled.clone(), cut.clone(), Arc::clone(&delay_ms));
        tokio::spawn(async move {
            loop {
                let Ok((down, _)) = listener.accept().await else {
                    continue;
                };
                let Ok(up) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let _ = down.set_nodelay(true);
                let _ = up.set_nodelay(true);
                let generation = *c.borrow();
                let (dr, dw) = down.into_split();
                let (ur, uw) = up.into_split();
                tokio::spawn(pump(
                    dr,
                    uw,
                    s.subscribe(),
                    c.subscribe(),
                    generation,
                    Arc::clone(&d),
                ));
                tokio::spawn(pump(
                    ur,
                    dw,
                    s.subscribe(),
                    c.subscribe(),
                    generation,
                    Arc::clone(&d),
                ));
            }
        });
        Proxy {
            addr,
            stalled,
            cut,
            delay_ms,
        }
    }

    fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }
    fn stall(&self) {
        self.stalled.send_replace(true);
    }
    fn release(&self) {
        self.stalled.send_replace(false);
    }
    fn cut(&self) {
        self.cut.send_modify(|g| *g += 1);
    }
    fn delay(&self, d: Duration) {
        self.delay_ms.store(d.as_millis() as u64, Ordering::SeqCst);
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut stalled: watch::Receiver<bool>,
    mut cut: watch::Receiver<u64>,
    generation: u64,
    delay_ms: Arc<AtomicU64>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = tokio::select! {
            r = from.read(&mut buf) => match r { Ok(0) | Err(_) => return, Ok(n) => n },
            _ = cut.wait_for(|g| *g != generation) => return,
        };
        tokio::select! {
            r = stalled.wait_for(|s| !*s) => if r.is_err() { return },
            _ = cut.wait_for(|g| *g != generation) => return,
        }
        let delay = delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

fn client(url: String) -> ClientHandle {
    connect(
        url,
        ClientOptions {
            config: config().client,
            seed: 42,
            ..ClientOptions::default()
        },
    )
    .unwrap()
}

async fn next_event(client: &mut ClientHandle) -> Event {
    timeout(LIMIT, client.events.recv())
        .await
        .expect("an event in time")
        .expect("events open")
}

async fn events_until(client: &mut ClientHandle, stop: impl Fn(&Event) -> bool) -> Vec<Event> {
    let mut seen = Vec::new();
    loop {
        let e = next_event(client).await;
        let done = stop(&e);
        seen.push(e);
        if done {
            return seen;
        }
    }
}

/// Every event until the `n`-th RTT sample (that many pongs came back).
async fn events_until_rtts(client: &mut ClientHandle, n: usize) -> Vec<Event> {
    let rtts = std::cell::Cell::new(0);
    events_until(client, |e| {
        if matches!(e, Event::Rtt(_)) {
            rtts.set(rtts.get() + 1);
        }
        rtts.get() >= n
    })
    .await
}

async fn healthy(client: &mut ClientHandle) {
    events_until(client, |e| matches!(e, Event::Rtt(_))).await;
    assert_eq!(client.status.borrow().status, Status::Healthy);
}

fn reconnects(seen: &[Event]) -> Vec<ReconnectReason> {
    seen.iter()
        .filter_map(|e| match e {
            Event::Reconnect { reason, .. } => Some(*reason),
            _ => None,
        })
        .collect()
}

#[test]
fn the_test_config_is_valid() {
    let v = config().validate();
    assert!(v.is_ok(), "{:?}", v.errors);
}

#[tokio::test]
async fn healthy_end_to_end_with_messages_both_ways() {
    timeout(LIMIT, async {
        let server = echo_server();
        let mut c = client(format!("ws://{}/ws", server.addr));
        healthy(&mut c).await;
        for i in 0..20 {
            c.sender
                .send(Message::text(format!("hello {i}")))
                .await
                .unwrap();
        }
        for i in 0..20 {
            let m = timeout(LIMIT, c.messages.recv()).await.unwrap().unwrap();
            assert_eq!(m.into_text().unwrap().as_str(), format!("hello {i}"));
        }
        // Several ping rounds later: still healthy, never reconnected.
        let seen = events_until_rtts(&mut c, 5).await;
        assert!(reconnects(&seen).is_empty(), "{seen:?}");
        assert_eq!(c.status.borrow().status, Status::Healthy);
        c.close().await;
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn no_application_message_is_lost_through_a_slow_period() {
    timeout(LIMIT, async {
        let server = echo_server();
        let proxy = Proxy::start(server.addr).await;
        let mut c = client(proxy.url());
        healthy(&mut c).await;
        proxy.stall();
        let sender = c.sender.clone();
        let feeder = tokio::spawn(async move {
            for i in 0..40u32 {
                sender.send(Message::text(format!("m{i}"))).await.unwrap();
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        });
        // Held until the client warns, then released: Slow, then Recovered, no reconnect.
        let seen = events_until(&mut c, |e| matches!(e, Event::Slow { .. })).await;
        assert!(reconnects(&seen).is_empty(), "{seen:?}");
        proxy.release();
        let seen = events_until(&mut c, |e| matches!(e, Event::Recovered { .. })).await;
        assert!(reconnects(&seen).is_empty(), "{seen:?}");
        feeder.await.unwrap();
        for i in 0..40 {
            let m = timeout(LIMIT, c.messages.recv()).await.unwrap().unwrap();
            assert_eq!(m.into_text().unwrap().as_str(), format!("m{i}"));
        }
        assert_eq!(c.status.borrow().last_reconnect, None);
        c.close().await;
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn a_stall_shorter_than_the_tolerance_gives_slow_then_recovered_and_no_reconnect() {
    timeout(LIMIT, async {
        let cfg = config();
        let tolerance = cfg.guarantees().client_tolerance;
        // Long enough for two misses wherever it starts in the ping cycle, well short of the
        // tolerance (1200 ms of 1750 ms).
        let stall = Duration::from_millis(1200);
        assert!(stall < tolerance);
        let server = echo_server();
        let proxy = Proxy::start(server.addr).await;
        let mut c = client(proxy.url());
        healthy(&mut c).await;
        proxy.stall();
        let released = tokio::spawn(async move {
            tokio::time::sleep(stall).await;
            proxy.release();
            proxy
        });
        let seen = events_until(&mut c, |e| matches!(e, Event::Recovered { .. })).await;
        let slow = seen.iter().position(|e| matches!(e, Event::Slow { .. }));
        assert!(slow.is_some(), "no Slow before Recovered: {seen:?}");
        assert!(reconnects(&seen).is_empty(), "{seen:?}");
        assert_eq!(c.status.borrow().status, Status::Healthy);
        drop(released.await.unwrap());
        c.close().await;
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn a_stall_longer_than_the_tolerance_gives_a_reconnect_with_its_reason() {
    timeout(LIMIT, async {
        let server = echo_server();
        let proxy = Proxy::start(server.addr).await;
        let mut c = client(proxy.url());
        healthy(&mut c).await;
        let stalled_at = Instant::now();
        proxy.stall();
        let seen = events_until(&mut c, |e| matches!(e, Event::Reconnect { .. })).await;
        let waited = stalled_at.elapsed();
        assert!(
            waited >= config().guarantees().client_tolerance,
            "{waited:?}"
        );
        assert!(
            seen.iter().any(|e| matches!(e, Event::Slow { .. })),
            "warned first"
        );
        assert_eq!(
            reconnects(&seen),
            [ReconnectReason::MissedPongs { missed: 6 }]
        );
        assert_eq!(
            c.status.borrow().last_reconnect,
            Some(ReconnectReason::MissedPongs { missed: 6 })
        );
        proxy.release();
        healthy(&mut c).await;
        c.close().await;
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn a_silent_server_is_detected_within_the_detection_bound() {
    timeout(LIMIT, async {
        let bound = config().guarantees().detection_bound;
        let server = echo_server();
        let proxy = Proxy::start(server.addr).await;
        let mut c = client(proxy.url());
        healthy(&mut c).await;
        let dead_at = Instant::now();
        proxy.stall(); // a power cut: no FIN, no RST, nothing
        events_until(&mut c, |e| matches!(e, Event::Reconnect { .. })).await;
        let detected = dead_at.elapsed();
        assert!(
            detected <= bound,
            "detected after {detected:?}, bound {bound:?}"
        );
        c.close().await;
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn a_killed_server_is_detected_within_the_detection_bound() {
    timeout(LIMIT, async {
        let bound = config().guarantees().detection_bound;
        let server = echo_server();
        let mut c = client(format!("ws://{}/ws", server.addr));
        healthy(&mut c).await;
        let killed_at = Instant::now();
        drop(server); // its runtime and every socket go away
        let seen = events_until(&mut c, |e| matches!(e, Event::Reconnect { .. })).await;
        let detected = killed_at.elapsed();
        assert!(
            detected <= bound,
            "detected after {detected:?}, bound {bound:?}"
        );
        assert_eq!(reconnects(&seen), [ReconnectReason::ConnectionClosed]);
        // Nobody listens any more: attempts fail and back off, status stays Reconnecting.
        let seen = events_until(&mut c, |e| matches!(e, Event::Reconnect { .. })).await;
        assert_eq!(reconnects(&seen), [ReconnectReason::ConnectFailed]);
        assert_eq!(c.status.borrow().status, Status::Reconnecting);
        c.close().await;
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn a_cut_connection_reconnects_with_reason_connection_closed() {
    timeout(LIMIT, async {
        let server = echo_server();
        let proxy = Proxy::start(server.addr).await;
        let mut c = client(proxy.url());
        healthy(&mut c).await;
        proxy.cut();
        let seen = events_until(&mut c, |e| matches!(e, Event::Reconnect { .. })).await;
        assert_eq!(reconnects(&seen), [ReconnectReason::ConnectionClosed]);
        healthy(&mut c).await;
        c.close().await;
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn a_delay_within_the_assumptions_shows_in_rtt_and_stays_healthy() {
    timeout(LIMIT, async {
        let server = echo_server();
        let proxy = Proxy::start(server.addr).await;
        proxy.delay(Duration::from_millis(20));
        let mut c = client(proxy.url());
        let seen = events_until(&mut c, |e| matches!(e, Event::Rtt(_))).await;
        let Some(Event::Rtt(rtt)) = seen.last() else {
            unreachable!()
        };
        assert!(
            *rtt >= Duration::from_millis(40),
            "rtt {rtt:?} includes 2 x 20 ms"
        );
        assert_eq!(c.status.borrow().status, Status::Healthy);
        c.close().await;
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn a_frozen_server_does_not_close_a_live_client_as_idle() {
    timeout(LIMIT, async {
        // The whole server (its one I/O thread) freezes for 1.5 s, longer than its 1 s idle
        // timeout, while the client keeps sending: when it wakes, the client's pings are
        // waiting in its socket. They must be read before any idle verdict.
        let mut cfg = config();
        cfg.server.idle_timeout = Duration::from_secs(1);
        assert!(cfg.validate().is_ok(), "{:?}", cfg.validate().errors);
        let server = echo_server_with(cfg.server);
        let mut c = client(format!("ws://{}/ws", server.addr));
        healthy(&mut c).await;
        let (frozen_tx, frozen_rx) = tokio::sync::oneshot::channel();
        server.io.handle().spawn(async move {
            let _ = frozen_tx.send(());
            std::thread::sleep(Duration::from_millis(1500));
        });
        frozen_rx.await.unwrap();
        let seen = events_until_rtts(&mut c, 4).await;
        assert!(reconnects(&seen).is_empty(), "{seen:?}");
        assert_eq!(c.status.borrow().status, Status::Healthy);
        c.close().await;
    })
    .await
    .expect("bounded");
}
