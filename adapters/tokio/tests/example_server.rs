//! The example server's interface, which the browser adapter's tests depend on: static files,
//! WebSocket echo on /ws, and `GET /control/stall?secs=N` answered before the stall.
//!
//! Runs the example binary that `cargo test` builds (target/<profile>/examples/server).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};
use tokio_tungstenite::tungstenite::Message;

const LIMIT: Duration = Duration::from_secs(30);

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn example(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test> -> target/<profile>/examples/<name>
    exe.parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join("examples").join(name))
        .unwrap()
}

async fn get(addr: &str, path: &str) -> (String, Vec<u8>) {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut all = Vec::new();
    timeout(LIMIT, tcp.read_to_end(&mut all))
        .await
        .unwrap()
        .unwrap();
    let split = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&all[..split]).to_string();
    (head, all[split + 4..].to_vec())
}

#[tokio::test]
async fn static_files_websocket_echo_and_stall_control() {
    timeout(LIMIT, async {
        let dir = std::env::temp_dir().join(format!("hb-static-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("pkg")).unwrap();
        std::fs::write(dir.join("index.html"), "<h1>heartbeat</h1>").unwrap();
        std::fs::write(dir.join("pkg/app.wasm"), b"\0asm\x01\0\0\0").unwrap();
        std::fs::write(dir.join("pkg/app.js"), "export {};").unwrap();
        let mut child = Command::new(example("server"))
            .args(["--addr", "127.0.0.1:0", "--static-dir"])
            .arg(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the example server is built by `cargo test`");
        let stdout = child.stdout.take().unwrap();
        let _kill = Kill(child);
        let line = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).unwrap();
            line
        })
        .await
        .unwrap();
        let addr = line
            .strip_prefix("listening on ")
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();

        let (head, body) = get(&addr, "/").await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.contains("Content-Type: text/html"), "{head}");
        assert_eq!(body, b"<h1>heartbeat</h1>");
        let (head, body) = get(&addr, "/pkg/app.wasm").await;
        assert!(head.contains("Content-Type: application/wasm"), "{head}");
        assert_eq!(body, b"\0asm\x01\0\0\0");
        let (head, _) = get(&addr, "/pkg/app.js?v=1").await;
        assert!(head.contains("Content-Type: text/javascript"), "{head}");
        let (head, _) = get(&addr, "/missing.txt").await;
        assert!(head.starts_with("HTTP/1.1 404"), "{head}");

        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
            .await
            .unwrap();
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
        let (head, body) = get(&addr, "/control/stall?secs=1").await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(String::from_utf8_lossy(&body).contains("stalling"));
        assert!(
            asked.elapsed() < Duration::from_millis(900),
            "answered before the stall"
        );
        ws.send(Message::text(r#"{"type":"ping","seq":6}"#))
            .await
            .unwrap();
        loop {
            if let Message::Text(t) = ws.next().await.unwrap().unwrap() {
                if t.as_str() == r#"{"type":"pong","seq":6}"# {
                    break;
                }
            }
        }
        let waited = asked.elapsed();
        assert!(
            waited >= Duration::from_millis(900),
            "pong during the stall after {waited:?}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await
    .expect("bounded");
}
