//! The `heartbeat` command. See `heartbeat --help` and `heartbeat_model::cli`.

use std::process::ExitCode;

use clap::Parser;
use heartbeat_model::cli::{load_config, run_check, Cli, Command};
use heartbeat_model::{render, scenarios};

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("heartbeat: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode, Box<dyn std::error::Error>> {
    match cli.command {
        Command::Check {
            config,
            format,
            settings,
        } => {
            let (config, source) = load_config(config.as_deref(), std::env::vars())?;
            let outcome = run_check(&config, &source, format, settings, true);
            print!("{}", outcome.output);
            Ok(ExitCode::from(u8::try_from(outcome.exit_code).unwrap_or(1)))
        }
        Command::Simulate {
            config,
            scenario,
            duration,
            seed,
        } => {
            let (config, _) = load_config(config.as_deref(), std::env::vars())?;
            let trace = scenarios::scenario(&scenario, &config, seed, duration).map_err(usage)?;
            print!("{}", render::Summary::from_trace(&trace));
            Ok(ExitCode::SUCCESS)
        }
        Command::Diagram {
            scenario,
            mermaid,
            list,
            config,
        } => {
            if list {
                for s in scenarios::SCENARIOS {
                    println!("{:<22} {}", s.name, s.about);
                }
                return Ok(ExitCode::SUCCESS);
            }
            let Some(name) = scenario else {
                return Err(usage("name a scenario, or pass --list"));
            };
            let (config, _) = load_config(config.as_deref(), std::env::vars())?;
            let trace = scenarios::scenario(&name, &config, 1, None).map_err(usage)?;
            let trace = render::fold_routine(&trace, 4);
            print!(
                "{}",
                if mermaid {
                    render::mermaid(&trace)
                } else {
                    render::ascii(&trace)
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Explore { config, port } => {
            let (config, _) = load_config(config.as_deref(), std::env::vars())?;
            let addr = format!("127.0.0.1:{port}");
            eprintln!("heartbeat explore: serving stateright's Explorer on http://{addr}/ (Ctrl-C to stop)");
            heartbeat_model::check::serve(config, &addr);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn usage(e: impl std::fmt::Display) -> Box<dyn std::error::Error> {
    Box::<dyn std::error::Error>::from(e.to_string())
}
