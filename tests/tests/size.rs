//! Size goals of the issue: a million servers must fit in cache-friendly memory.
use heartbeat_core::{Client, Server};

#[test]
fn server_fits_in_64_bytes_and_client_in_128() {
    assert!(
        size_of::<Server>() <= 64,
        "Server is {} bytes",
        size_of::<Server>()
    );
    assert!(
        size_of::<Client>() <= 128,
        "Client is {} bytes",
        size_of::<Client>()
    );
    println!(
        "Server: {} bytes, Client: {} bytes",
        size_of::<Server>(),
        size_of::<Client>()
    );
}
