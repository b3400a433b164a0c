//! A heartbeat WebSocket client that prints every status change with the latest RTT.
//!
//! ```text
//! cargo run -p heartbeat-tokio --example client -- [CONFIG] [--url ws://127.0.0.1:9001/ws] \
//!     [--send-every SECS] [--pings json|protocol] [--seed N]
//! ```
//!
//! Against `--example server`: a short stall shows `slow` then `healthy`; a stall longer than
//! the client's tolerance shows `reconnecting` with its reason, then `healthy` again.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use heartbeat_core::{Event, HumanDuration};
use heartbeat_tokio::{client::reason_str, connect, ClientOptions, PingStyle};
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser, Debug)]
#[command(about = "heartbeat WebSocket client example")]
struct Args {
    /// Configuration file (.yaml, .yml, .toml or .json); HEARTBEAT_* variables override it.
    config: Option<PathBuf>,
    /// The server's WebSocket URL.
    #[arg(long, default_value = "ws://127.0.0.1:9001/ws")]
    url: String,
    /// Send an application message this often (seconds); 0 sends none.
    #[arg(long, default_value_t = 0.0)]
    send_every: f64,
    /// How pings are sent.
    #[arg(long, value_parser = ["json", "protocol"], default_value = "json")]
    pings: String,
    /// Reconnect jitter seed (default: from the clock).
    #[arg(long)]
    seed: Option<u64>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let args = Args::parse();
    let config = match heartbeat_tokio::load_config(args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return std::process::ExitCode::from(2);
        }
    };
    let g = config.guarantees();
    println!(
        "client: ping every {}, pong timeout {}, slow at {} missed, reconnect at {} missed; dead server detected within {}",
        HumanDuration(config.client.ping_interval),
        HumanDuration(config.client.pong_timeout),
        config.client.slow_threshold,
        config.client.max_missed_pongs,
        HumanDuration(g.detection_bound),
    );
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    let options = ClientOptions {
        config: config.client,
        seed,
        pings: if args.pings == "protocol" {
            PingStyle::Protocol
        } else {
            PingStyle::Json
        },
        ..ClientOptions::default()
    };
    let mut client = match connect(args.url.clone(), options) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return std::process::ExitCode::from(2);
        }
    };
    let start = tokio::time::Instant::now();
    let stamp = move || format!("{:>8.3}s", start.elapsed().as_secs_f64());
    let mut ticker = (args.send_every > 0.0)
        .then(|| tokio::time::interval(Duration::from_secs_f64(args.send_every)));
    let mut n = 0u64;
    println!("{} status {:?}", stamp(), client.status.borrow().status);
    loop {
        tokio::select! {
            changed = client.status.changed() => {
                if changed.is_err() { break; }
                let s = *client.status.borrow_and_update();
                let rtt = s.rtt.map_or("-".to_owned(), |r| format!("{:.1}ms", r.as_secs_f64() * 1e3));
                let why = s.last_reconnect.filter(|_| s.status == heartbeat_core::Status::Reconnecting)
                    .map(|r| format!(" (reason: {})", reason_str(r))).unwrap_or_default();
                println!("{} status {:<12} rtt {rtt} missed {}{why}", stamp(), format!("{:?}", s.status).to_lowercase(), s.missed_pongs);
            }
            Some(event) = client.events.recv() => match event {
                Event::Rtt(_) | Event::Connect { .. } | Event::Connected => {}
                Event::Reconnect { reason, backoff } => println!(
                    "{} reconnect: {} (next attempt in {})", stamp(), reason_str(reason), HumanDuration(Duration::from_millis(backoff.as_millis() as u64))),
                other => println!("{} event {other:?}", stamp()),
            },
            Some(m) = client.messages.recv() => println!("{} received {}", stamp(), m.to_text().unwrap_or("<binary>")),
            _ = async { ticker.as_mut().expect("guarded").tick().await }, if ticker.is_some() => {
                n += 1;
                let _ = client.sender.try_send(Message::text(format!("{{\"type\":\"data\",\"n\":{n}}}")));
            }
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    client.close().await;
    std::process::ExitCode::SUCCESS
}
