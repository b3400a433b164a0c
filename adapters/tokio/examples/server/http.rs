//! Just enough HTTP/1.1 for the example: read one request head, answer and close.
//!
//! Owns the request head (bounded in size and time) and the replay of its bytes to the
//! WebSocket handshake. Never panics on what a peer sends: anything unparsable is a 400.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// The largest request head read; a longer one is answered 431.
const MAX_HEAD: usize = 16 * 1024;

/// The whole head must arrive within this, however slowly it trickles in.
pub(crate) const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// How long an answer may take to write before the connection is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// A parsed request head and its raw bytes.
#[derive(Debug)]
pub(crate) struct Head {
    pub(crate) method: String,
    /// The request target's path (before any `?`).
    pub(crate) path: String,
    pub(crate) query: String,
    /// Lower-case names, trimmed values, in order.
    headers: Vec<(String, String)>,
    /// Everything read so far (the head and perhaps more), for the WebSocket handshake.
    pub(crate) raw: Vec<u8>,
}

/// Why no head could be read.
#[derive(Debug)]
pub(crate) enum HeadError {
    /// The peer closed, failed or was too slow: nothing to answer.
    Gone,
    /// Longer than [`MAX_HEAD`].
    TooLarge,
    /// Not an HTTP/1.x request head.
    Malformed,
}

impl Head {
    /// Reads until the blank line that ends the head.
    pub(crate) async fn read(stream: &mut TcpStream) -> Result<Head, HeadError> {
        let mut raw = Vec::with_capacity(1024);
        let mut buf = [0u8; 2048];
        let read = async {
            loop {
                if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                    return Ok(i + 4);
                }
                if raw.len() > MAX_HEAD {
                    return Err(HeadError::TooLarge);
                }
                match stream.read(&mut buf).await {
                    Ok(n) if n > 0 => raw.extend_from_slice(&buf[..n]),
                    _ => return Err(HeadError::Gone),
                }
            }
        };
        let end = tokio::time::timeout(HEAD_TIMEOUT, read)
            .await
            .map_err(|_| HeadError::Gone)??;
        let mut head = Head::parse(&raw[..end]).ok_or(HeadError::Malformed)?;
        head.raw = raw;
        Ok(head)
    }

    fn parse(bytes: &[u8]) -> Option<Head> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut lines = text.split("\r\n");
        let mut parts = lines.next()?.split(' ');
        let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || !version.starts_with("HTTP/1.") || !target.starts_with('/') {
            return None;
        }
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let mut headers = Vec::new();
        for line in lines.take_while(|l| !l.is_empty()) {
            let (name, value) = line.split_once(':')?;
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
        Some(Head {
            method: method.to_owned(),
            path: path.to_owned(),
            query: query.to_owned(),
            headers,
            raw: Vec::new(),
        })
    }

    /// Every value of the header `name` (lower case).
    pub(crate) fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The header `name` if it is there once; `Err` if it is repeated.
    pub(crate) fn one<'a>(&'a self, name: &'a str) -> Result<Option<&'a str>, ()> {
        let mut values = self.all(name);
        let first = values.next();
        if values.next().is_some() {
            return Err(());
        }
        Ok(first)
    }

    /// A WebSocket upgrade request (`Upgrade: websocket`)?
    pub(crate) fn is_websocket_upgrade(&self) -> bool {
        self.all("upgrade").any(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("websocket"))
        })
    }
}

/// A plain answer, then the connection is closed.
#[derive(Debug)]
pub(crate) struct Answer<'a> {
    pub(crate) status: &'a str,
    pub(crate) content_type: &'a str,
    /// More header lines, each ending in `\r\n`.
    pub(crate) extra_headers: &'a str,
    pub(crate) body: &'a [u8],
}

impl<'a> Answer<'a> {
    /// A `text/plain` answer.
    pub(crate) fn text(status: &'a str, body: &'a str) -> Answer<'a> {
        Answer {
            status,
            content_type: "text/plain; charset=utf-8",
            extra_headers: "",
            body: body.as_bytes(),
        }
    }

    /// Writes the answer (no body for HEAD) and closes; a slow or gone peer is dropped.
    pub(crate) async fn send<S: AsyncWrite + Unpin>(&self, stream: &mut S, method: &str) {
        let head = format!(
            "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n{}\r\n",
            self.status,
            self.content_type,
            self.body.len(),
            self.extra_headers,
        );
        let write = async {
            stream.write_all(head.as_bytes()).await?;
            if method != "HEAD" {
                stream.write_all(self.body).await?;
            }
            stream.flush().await?;
            stream.shutdown().await
        };
        let _ = tokio::time::timeout(WRITE_TIMEOUT, write).await;
    }
}

/// A stream that replays the bytes already read (the request head) before reading on.
#[derive(Debug)]
pub(crate) struct Prefixed {
    prefix: Vec<u8>,
    pos: usize,
    inner: TcpStream,
}

impl Prefixed {
    pub(crate) fn new(prefix: Vec<u8>, inner: TcpStream) -> Prefixed {
        Prefixed {
            prefix,
            pos: 0,
            inner,
        }
    }
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
