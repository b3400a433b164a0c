//! Hand-made WebSocket frames and a hand-made handshake, for tests that must send what no
//! well-behaved library would (bad UTF-8, reserved opcodes, unmasked client frames, lying
//! lengths), and the client settings and scripted server the client tests share. Each test
//! file uses some of these helpers, none uses all of them.
#![allow(dead_code)]

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Text frame opcode.
pub(crate) const TEXT: u8 = 0x1;
/// Continuation frame opcode.
pub(crate) const CONTINUATION: u8 = 0x0;
/// Close frame opcode.
pub(crate) const CLOSE: u8 = 0x8;
/// The mask every client frame here uses (a fixed one is as valid as a random one).
pub(crate) const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A frame header declaring `len` payload bytes: `first` is the FIN/RSV/opcode byte.
#[must_use]
pub(crate) fn header(first: u8, len: u64, mask: Option<[u8; 4]>) -> Vec<u8> {
    let masked = if mask.is_some() { 0x80 } else { 0 };
    let mut out = vec![first];
    match len {
        0..=125 => out.push(masked | len as u8),
        126..=0xffff => {
            out.push(masked | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(masked | 127);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
    if let Some(m) = mask {
        out.extend_from_slice(&m);
    }
    out
}

/// A whole frame: `first` is the FIN/RSV/opcode byte; masked with `mask` if given.
#[must_use]
pub(crate) fn frame(first: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = header(first, payload.len() as u64, mask);
    match mask {
        Some(m) => out.extend(payload.iter().enumerate().map(|(i, b)| b ^ m[i % 4])),
        None => out.extend_from_slice(payload),
    }
    out
}

/// Reads one frame: (opcode, unmasked payload).
///
/// # Errors
/// The stream ended or failed.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<(u8, Vec<u8>)> {
    let mut h = [0u8; 2];
    r.read_exact(&mut h).await?;
    let opcode = h[0] & 0x0f;
    let len = match h[1] & 0x7f {
        126 => {
            let mut l = [0u8; 2];
            r.read_exact(&mut l).await?;
            u64::from(u16::from_be_bytes(l))
        }
        127 => {
            let mut l = [0u8; 8];
            r.read_exact(&mut l).await?;
            u64::from_be_bytes(l)
        }
        n => u64::from(n),
    };
    let mask = if h[1] & 0x80 != 0 {
        let mut m = [0u8; 4];
        r.read_exact(&mut m).await?;
        Some(m)
    } else {
        None
    };
    let mut payload = vec![0u8; usize::try_from(len).expect("a test-sized frame")];
    r.read_exact(&mut payload).await?;
    if let Some(m) = mask {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= m[i % 4];
        }
    }
    Ok((opcode, payload))
}

/// Reads frames until a close frame; its code, or `None` for a close frame without one.
///
/// # Errors
/// The stream ended before a close frame.
pub(crate) async fn close_code<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Option<u16>> {
    loop {
        let (opcode, payload) = read_frame(r).await?;
        if opcode == CLOSE {
            return Ok(payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]])));
        }
    }
}

/// Writes an upgrade request for `path` with `extra` header lines and reads the response head.
///
/// # Errors
/// The stream ended or failed.
pub(crate) async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    path: &str,
    extra: &[&str],
) -> std::io::Result<String> {
    let mut request = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    );
    for line in extra {
        request.push_str(line);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    s.write_all(request.as_bytes()).await?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).await?;
        head.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

/// The client settings of the client tests: 1 s pings, Slow at 2 misses, reconnect at 4.
pub(crate) fn client_config() -> heartbeat_core::ClientConfig {
    heartbeat_core::ClientConfig {
        ping_interval: std::time::Duration::from_secs(1),
        pong_timeout: std::time::Duration::from_millis(800),
        slow_threshold: 2,
        max_missed_pongs: 4,
        stall_threshold: std::time::Duration::from_millis(500),
        connect_timeout: std::time::Duration::from_secs(2),
        backoff_initial: std::time::Duration::from_millis(200),
        backoff_max: std::time::Duration::from_secs(2),
    }
}

/// A client (`options`) whose one server writes the raw bytes `script` once the client is
/// connected; returns the code of the close frame the client sends back. The client's stream is
/// created with `websocket` (`None`: tungstenite's defaults).
///
/// # Panics
/// No close frame within `limit`, or the stream ended before one.
pub(crate) async fn client_close_code(
    script: Vec<u8>,
    options: heartbeat_tokio::ClientOptions,
    websocket: Option<tokio_tungstenite::tungstenite::protocol::WebSocketConfig>,
    limit: std::time::Duration,
) -> Option<u16> {
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let mut done_tx = Some(done_tx);
    let client = heartbeat_tokio::connect_with(
        move || {
            let (a, b) = tokio::io::duplex(64 * 1024);
            if let Some(done) = done_tx.take() {
                let script = script.clone();
                tokio::spawn(async move {
                    let mut raw = a;
                    raw.write_all(&script).await.unwrap();
                    let _ = done.send(close_code(&mut raw).await);
                });
            }
            async move {
                Ok::<_, tokio_tungstenite::tungstenite::Error>(
                    tokio_tungstenite::WebSocketStream::from_raw_socket(
                        b,
                        tokio_tungstenite::tungstenite::protocol::Role::Client,
                        websocket,
                    )
                    .await,
                )
            }
        },
        options,
    )
    .unwrap();
    let code = tokio::time::timeout(limit, done_rx)
        .await
        .expect("a close frame in time")
        .unwrap()
        .expect("a close frame before the end");
    client.close().await;
    code
}
