//! Interoperability with a peer nobody here wrote: Python's `websockets`, as a client of our
//! server and as a server for our client, with protocol-level pings answered both ways.
//!
//! Needs `python3` with `websockets` (`.ci/steps/20-tokio-interop.sh` installs it). Without it
//! the tests print why and pass, unless `HEARTBEAT_REQUIRE_PYTHON_WEBSOCKETS=1` (as in CI).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use heartbeat_core::{ClientConfig, Event, ServerConfig, Status};
use heartbeat_tokio::{accept, connect, ClientOptions, ConnectionEvent, PingStyle, ServerOptions};
use tokio::net::TcpListener;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

const LIMIT: Duration = Duration::from_secs(30);

fn script(name: &str) -> String {
    format!("{}/tests/interop/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn python_ready() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import websockets"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("HEARTBEAT_REQUIRE_PYTHON_WEBSOCKETS").as_deref() != Ok("1"),
            "python3 with `websockets` is required here (HEARTBEAT_REQUIRE_PYTHON_WEBSOCKETS=1)"
        );
        println!(
            "SKIPPED: python3 lacks the `websockets` module; install it (python3 -m pip install \
             websockets, or apt-get install python3-websockets) or run .ci/steps/20-tokio-interop.sh"
        );
    }
    ok
}

/// Kills the child when the test ends, however it ends.
struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn server_config() -> ServerConfig {
    ServerConfig {
        ping_interval: Duration::from_millis(200),
        idle_timeout: Duration::from_secs(3),
        min_client_ping_interval: Duration::ZERO,
        max_ping_strikes: 2,
    }
}

#[tokio::test]
async fn python_websockets_client_against_our_server() {
    if !python_ready() {
        return;
    }
    timeout(LIMIT, async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let options = ServerOptions {
                config: server_config(),
                pings: PingStyle::Protocol,
                ..ServerOptions::default()
            };
            let mut conn = accept(tcp, &options).await.unwrap();
            let mut rtts = 0;
            let mut echoed = 0;
            let cause = loop {
                tokio::select! {
                    Some(m) = conn.messages.recv() => {
                        echoed += 1;
                        conn.sender.send(m).await.unwrap();
                    }
                    e = conn.events.recv() => match e {
                        Some(ConnectionEvent::Rtt(_)) => rtts += 1,
                        Some(ConnectionEvent::Closed(cause)) => break cause,
                        Some(_) => {}
                        None => panic!("events ended without Closed"),
                    },
                }
            };
            (rtts, echoed, cause)
        });
        let url = format!("ws://{addr}/ws");
        let out = tokio::task::spawn_blocking(move || {
            Command::new("python3")
                .arg(script("client_of_ours.py"))
                .arg(url)
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "python client failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        println!("python client: {stdout}");
        assert!(stdout.contains(r#""json_pong": true"#), "{stdout}");
        assert!(stdout.contains(r#""echo": true"#), "{stdout}");
        assert!(stdout.contains(r#""protocol_pong_ms""#), "{stdout}");
        assert!(stdout.contains(r#""open_after_1500ms": true"#), "{stdout}");
        let (rtts, echoed, cause) = timeout(LIMIT, server).await.unwrap().unwrap();
        assert!(
            rtts >= 3,
            "python answered our protocol pings only {rtts} times in ~2 s of 200 ms pings"
        );
        assert_eq!(echoed, 1, "the JSON ping never reached the application");
        println!("our server: {rtts} protocol round trips answered by python, closed: {cause:?}");
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn our_client_against_a_python_websockets_server() {
    if !python_ready() {
        return;
    }
    timeout(LIMIT, async {
        let mut child = Command::new("python3")
            .arg(script("server_for_ours.py"))
            .arg("20")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let _guard = Kill(child);
        let port = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).unwrap();
            line.trim()
                .parse::<u16>()
                .expect("the python server prints its port")
        })
        .await
        .unwrap();
        let config = ClientConfig {
            ping_interval: Duration::from_millis(200),
            pong_timeout: Duration::from_millis(150),
            stall_threshold: Duration::from_millis(100),
            backoff_initial: Duration::from_millis(100),
            ..ClientConfig::default()
        };
        let mut client = connect(
            format!("ws://127.0.0.1:{port}/"),
            ClientOptions {
                config,
                seed: 1,
                pings: PingStyle::Protocol,
                ..ClientOptions::default()
            },
        )
        .unwrap();
        client
            .sender
            .send(Message::text("hello python"))
            .await
            .unwrap();
        let m = timeout(LIMIT, client.messages.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(m.into_text().unwrap().as_str(), "hello python");
        // 2 s: python pings us 10 times (closing with 1011 if we failed to answer within
        // 0.5 s) and answers our 10 protocol pings.
        let start = tokio::time::Instant::now();
        let mut rtts = 0;
        while start.elapsed() < Duration::from_secs(2) {
            match timeout(Duration::from_millis(100), client.events.recv()).await {
                Ok(Some(Event::Rtt(_))) => rtts += 1,
                Ok(Some(e @ (Event::Reconnect { .. } | Event::PongMissed { .. }))) => {
                    panic!("unexpected {e:?}")
                }
                Ok(Some(_)) | Err(_) => {}
                Ok(None) => panic!("client ended"),
            }
        }
        assert!(
            rtts >= 5,
            "python answered only {rtts} of our protocol pings"
        );
        assert_eq!(client.status.borrow().status, Status::Healthy);
        client.close().await;
    })
    .await
    .expect("bounded");
}
