//! A peer that breaks the protocol or a size limit gets a close frame with the code RFC 6455
//! gives for it: 1007 for invalid UTF-8, 1009 for a message or frame over the limit, 1002 for
//! any other protocol error. Each case is a raw TCP client on 127.0.0.1 that writes hand-made
//! frames after a real handshake (real time: a TCP pair cannot run on tokio's paused clock).

mod common;

use std::time::Duration;

use common::{close_code, frame, handshake, header, CONTINUATION, MASK, TEXT};
use heartbeat_tokio::{accept, ServerOptions};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(10);

/// Serves one connection with `options` and returns the raw client's socket after the handshake.
async fn connected(options: ServerOptions) -> TcpStream {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let conn = accept(tcp, &options).await.unwrap();
        // Keep the application's side open until the connection ends.
        let mut events = conn.events;
        while events.recv().await.is_some() {}
        drop(conn.messages);
    });
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let head = handshake(&mut tcp, "/", &[]).await.unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    tcp
}

/// Writes `bytes` and returns the code of the close frame that comes back.
async fn code_after(bytes: &[u8]) -> Option<u16> {
    let mut tcp = connected(ServerOptions::default()).await;
    tcp.write_all(bytes).await.unwrap();
    timeout(LIMIT, close_code(&mut tcp))
        .await
        .expect("a close frame in time")
        .expect("a close frame before the end")
}

#[tokio::test]
async fn invalid_utf8_in_a_text_frame_is_closed_with_1007() {
    assert_eq!(
        code_after(&frame(0x80 | TEXT, &[0xff, 0xfe, 0xfd], Some(MASK))).await,
        Some(1007)
    );
}

#[tokio::test]
async fn a_frame_over_the_default_1_mib_limit_is_closed_with_1009_from_its_header() {
    // Only the header is sent: the length alone is refused, nothing is buffered for it.
    assert_eq!(
        code_after(&header(0x80 | TEXT, (1 << 20) + 1, Some(MASK))).await,
        Some(1009)
    );
}

#[tokio::test]
async fn a_message_over_1_mib_in_small_fragments_is_closed_with_1009() {
    let part = vec![b'x'; 600 * 1024];
    let mut bytes = frame(TEXT, &part, Some(MASK)); // FIN clear: more follows
    bytes.extend(frame(0x80 | CONTINUATION, &part, Some(MASK)));
    assert_eq!(code_after(&bytes).await, Some(1009));
}

#[tokio::test]
async fn a_reserved_opcode_is_closed_with_1002() {
    assert_eq!(code_after(&frame(0x83, b"", Some(MASK))).await, Some(1002));
}

#[tokio::test]
async fn an_unmasked_client_frame_is_closed_with_1002() {
    assert_eq!(
        code_after(&frame(0x80 | TEXT, b"hi", None)).await,
        Some(1002)
    );
}

#[tokio::test]
async fn reserved_bits_are_closed_with_1002() {
    assert_eq!(
        code_after(&frame(0x80 | 0x40 | TEXT, b"hi", Some(MASK))).await,
        Some(1002)
    );
}

#[tokio::test(start_paused = true)]
async fn the_closed_event_names_each_violation_by_the_code_sent() {
    use heartbeat_tokio::{serve, CloseCause, ConnectionEvent};
    use tokio_tungstenite::tungstenite::protocol::Role;
    use tokio_tungstenite::WebSocketStream;

    let cases = [
        (frame(0x80 | TEXT, &[0xff, 0xfe, 0xfd], Some(MASK)), 1007),
        (header(0x80 | TEXT, (1 << 20) + 1, Some(MASK)), 1009),
        (frame(0x83, b"", Some(MASK)), 1002),
    ];
    for (bytes, expected) in cases {
        let options = ServerOptions::default();
        let (a, mut peer) = tokio::io::duplex(64 * 1024);
        let ws = WebSocketStream::from_raw_socket(
            a,
            Role::Server,
            Some(options.limits.websocket_config()),
        )
        .await;
        let mut conn = serve(ws, &options).unwrap();
        peer.write_all(&bytes).await.unwrap();
        let sent = timeout(LIMIT, close_code(&mut peer))
            .await
            .expect("a close frame in time")
            .expect("a close frame");
        assert_eq!(sent, Some(expected));
        let cause = loop {
            match timeout(LIMIT, conn.events.recv())
                .await
                .expect("Closed in time")
            {
                Some(ConnectionEvent::Closed(cause)) => break cause,
                Some(_) => {}
                None => panic!("no Closed event"),
            }
        };
        assert!(
            matches!(cause, CloseCause::Violation { code, .. } if code == expected),
            "{expected}: {cause:?}"
        );
    }
}
