//! The benchmark's configurations (model/benches/check-configs, docs/performance.md) get the
//! verdicts the table reports: each says in its `# why:` line whether it is valid, and the check
//! agrees: proven when valid, failed when not. The ones valid only by a margin finer than any
//! coarser grid are the documented exception: within a small budget they are inconclusive, never
//! proven and never failed.

use std::path::Path;

use heartbeat_model::check::{check, CheckOptions, Verdict};
use heartbeat_model::cli::load_config;
use heartbeat_model::explore::Limits;

#[test]
fn every_benchmark_config_gets_the_verdict_its_table_reports() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/check-configs");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 24, "{files:?}");
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let why = text
            .lines()
            .find_map(|l| l.strip_prefix("# why: "))
            .expect("a `# why:` line");
        let edge = why.starts_with("EDGE ");
        let valid = why.trim_start_matches("EDGE ").starts_with("valid");
        let (config, _) = load_config(Some(&path), std::iter::empty::<(String, String)>()).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(config.validate().is_ok(), valid, "{name}: {why}");
        let r = check(
            &config,
            CheckOptions {
                limits: Limits {
                    max_states: 1_000_000,
                    ..Limits::default()
                },
                ..CheckOptions::default()
            },
        )
        .unwrap();
        let want = match (valid, edge) {
            (false, _) => Verdict::Failed,
            (true, false) => Verdict::Proven,
            (true, true) => {
                assert!(
                    matches!(r.verdict, Verdict::Inconclusive(_)),
                    "{name}: {:?}",
                    r.verdict
                );
                continue;
            }
        };
        assert_eq!(r.verdict, want, "{name}: {why}");
    }
}
