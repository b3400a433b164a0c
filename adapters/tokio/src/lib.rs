//! heartbeat-core on tokio WebSockets.
