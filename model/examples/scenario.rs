//! Prints one scenario (or all): `cargo run -p heartbeat-model --example scenario -- NAME [--mermaid]`.

use heartbeat_core::Config;
use heartbeat_model::render::{ascii, mermaid, Summary};
use heartbeat_model::scenarios::{names, scenario};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let want_mermaid = args.iter().any(|a| a == "--mermaid");
    let chosen: Vec<String> = args
        .iter()
        .filter(|a| !a.starts_with("--"))
        .cloned()
        .collect();
    let list: Vec<String> = if chosen.is_empty() {
        names().map(str::to_owned).collect()
    } else {
        chosen
    };
    for name in list {
        match scenario(&name, &Config::default(), 1, None) {
            Ok(trace) => {
                if want_mermaid {
                    println!("{}", mermaid(&trace));
                } else {
                    println!("{}", ascii(&trace));
                }
                println!("{}", Summary::from_trace(&trace));
            }
            Err(e) => eprintln!("{e}"),
        }
    }
}
