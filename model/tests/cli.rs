//! The `heartbeat` binary as a user runs it: exit codes and what it prints.

use std::process::Command;

fn heartbeat(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_heartbeat"))
        .args(args)
        .env_remove("HEARTBEAT_CLIENT__PING_INTERVAL")
        .output()
        .expect("the binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn configs() -> String {
    format!("{}/tests/configs", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn check_proves_the_default_and_exits_zero() {
    let (code, out, _) = heartbeat(&["check"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Model check: proven"), "{out}");
    assert!(
        out.contains("a dead server or a cut network is detected within 1m20s"),
        "{out}"
    );
}

#[test]
fn a_search_cut_short_exits_three_and_help_lists_the_exit_codes() {
    let (code, out, _) = heartbeat(&["check", "--max-states", "50000"]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("Model check: INCONCLUSIVE"), "{out}");
    assert!(!out.contains("proven"), "{out}");
    let (code, out, _) = heartbeat(&["check", "--max-states", "50000", "--format", "json"]);
    assert_eq!(code, 3);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["model_check"]["verdict"], "inconclusive");
    assert_eq!(v["exit_code"], 3);
    assert_eq!(v["ok"], false);
    let (code, help, _) = heartbeat(&["check", "--help"]);
    assert_eq!(code, 0);
    for line in [
        "0  proven",
        "1  a rule or a property fails",
        "2  unusable input",
        "3  inconclusive",
    ] {
        assert!(help.contains(line), "{line}: {help}");
    }
}

/// A huge or endless file is refused after 1 MiB (exit 2 with the size), never read whole; an
/// empty one says that the defaults were checked; the story's layout with seconds that are no
/// duration is unusable input (exit 2) with the field and the reason.
#[test]
fn hostile_and_careless_config_files() {
    let (code, _, err) = heartbeat(&["check", "/dev/zero"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("larger than 1048576 bytes"), "{err}");
    let dir = std::env::temp_dir().join(format!("heartbeat-cli-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let big = dir.join("big.yaml");
    std::fs::write(&big, "#".repeat((1 << 20) + 1)).unwrap();
    let (code, _, err) = heartbeat(&["check", big.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    let empty = dir.join("empty.yaml");
    std::fs::write(&empty, "# nothing yet\n\n").unwrap();
    let (code, out, _) = heartbeat(&["check", empty.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("(no settings in it: the defaults were checked)"),
        "{out}"
    );
    for value in ["-30", ".nan", "1e300"] {
        let story = dir.join("story.yaml");
        std::fs::write(
            &story,
            format!("websocket:\n  frontend:\n    ping_interval_seconds: {value}\n"),
        )
        .unwrap();
        let (code, _, err) = heartbeat(&["check", story.to_str().unwrap()]);
        assert_eq!(code, 2, "{value}: {err}");
        assert!(
            err.contains("websocket.frontend.ping_interval_seconds"),
            "{value}: {err}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// 400 KB of `[[[[...` kept `heartbeat check` busy for about two minutes (the YAML parser's
/// time grows with the square of the nesting); it is refused at once with exit code 2, the line
/// and column of the bracket past the limit, and the limit.
#[test]
fn a_deeply_nested_yaml_file_is_refused_with_its_position_and_the_limit() {
    let dir = std::env::temp_dir().join(format!("heartbeat-cli-deep-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let deep = dir.join("deep.yaml");
    let n = 200_000;
    std::fs::write(
        &deep,
        format!(
            "client:\n  ping_interval: {}{}\n",
            "[".repeat(n),
            "]".repeat(n)
        ),
    )
    .unwrap();
    let (code, _, err) = heartbeat(&["check", deep.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(
            "deep.yaml: YAML error at line 2, column 82: [ and { nested more than 64 deep"
        ),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// In every format and both layouts, and in the environment, a value that is no number,
/// negative, NaN or too large is unusable input (exit 2) naming the setting and the reason; a
/// duration too long to be sensible but representable is a broken rule (exit 1) that prints it
/// as written.
#[test]
fn bad_values_exit_two_naming_the_setting_in_every_format_and_layout() {
    let dir = std::env::temp_dir().join(format!("heartbeat-cli-values-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let files = [
        (
            "a.yaml",
            "client:\n  ping_interval: 1e300\n",
            "client.ping_interval",
            "too large",
        ),
        (
            "b.toml",
            "[client]\nmax_missed_pongs = -5\n",
            "client.max_missed_pongs",
            "-5",
        ),
        (
            "c.json",
            r#"{"network": {"max_latency": "abc"}}"#,
            "network.max_latency",
            "invalid duration",
        ),
        (
            "d.yaml",
            "websocket:\n  backend:\n    pong_timeout_seconds: .nan\n",
            "websocket.backend.pong_timeout_seconds",
            "not a number",
        ),
        (
            "e.toml",
            "[websocket.frontend]\nping_interval_seconds = 99999999999999999999\n",
            "websocket.frontend.ping_interval_seconds",
            "too large",
        ),
        (
            "f.json",
            r#"{"websocket": {"frontend": {"max_missed_pongs": "4"}}}"#,
            "websocket.frontend.max_missed_pongs",
            "invalid type: string",
        ),
        (
            "g.toml",
            "[websocket.frontend]\nmax_missed_pongs = nan\n",
            "websocket.frontend.max_missed_pongs",
            "NaN",
        ),
    ];
    for (name, text, field, reason) in files {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let (code, _, err) = heartbeat(&["check", path.to_str().unwrap()]);
        assert_eq!(code, 2, "{name}: {err}");
        assert!(err.contains(field) && err.contains(reason), "{name}: {err}");
    }
    for (var, value) in [
        ("HEARTBEAT_CLIENT__PONG_TIMEOUT", "-5"),
        ("HEARTBEAT_SERVER__MAX_PING_STRIKES", "NaN"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_heartbeat"))
            .args(["check"])
            .env(var, value)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains(&format!("environment: {var}={value:?}: ")),
            "{err}"
        );
    }
    let long = dir.join("long.yaml");
    std::fs::write(&long, "client:\n  ping_interval: 9999999999999h\n").unwrap();
    let (code, out, _) = heartbeat(&["check", long.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("client.ping_interval (9999999999999h) is longer than the 24h maximum"),
        "{out}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn check_rejects_a_short_tolerance_with_exit_one_and_a_diagram() {
    let (code, out, _) = heartbeat(&["check", &format!("{}/tolerance-too-short.toml", configs())]);
    assert_eq!(code, 1);
    assert!(
        out.contains("Shortest counterexample (no-spurious-reconnect)"),
        "{out}"
    );
    assert!(out.contains("RECONNECT: missed_pongs"), "{out}");
}

#[test]
fn unusable_input_exits_two_with_the_position() {
    let dir = std::env::temp_dir().join(format!("heartbeat-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, "client:\n  ping_interval: 15s\n  pong_timout: 10s\n").unwrap();
    let (code, _, err) = heartbeat(&["check", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        err.contains("line 3") && err.contains("pong_timout"),
        "{err}"
    );
    let (code, _, err) = heartbeat(&["check", dir.join("missing.toml").to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot read"), "{err}");
    let unknown = dir.join("config.ini");
    std::fs::write(&unknown, "x").unwrap();
    let (code, _, err) = heartbeat(&["check", unknown.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn environment_overrides_apply_and_typos_are_errors() {
    let out = Command::new(env!("CARGO_BIN_EXE_heartbeat"))
        .args(["check", "--format", "json"])
        .env("HEARTBEAT_CLIENT__PING_INTERVAL", "20s")
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["config"]["client"]["ping_interval"], "20s");
    let out = Command::new(env!("CARGO_BIN_EXE_heartbeat"))
        .args(["check"])
        .env("HEARTBEAT_CLIENT__PING_INTERVALL", "20s")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn simulate_and_diagram_run_scenarios() {
    let (code, out, _) = heartbeat(&["simulate", "--scenario", "server-dead", "--seed", "3"]);
    assert_eq!(code, 0);
    assert!(out.contains("reconnect"), "{out}");
    let (code, out, _) = heartbeat(&["diagram", "server-busy-40s", "--mermaid"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("sequenceDiagram") || out.contains("sequenceDiagram"),
        "{out}"
    );
    let (code, out, _) = heartbeat(&["diagram", "--list"]);
    assert_eq!(code, 0);
    assert!(out.contains("laptop-asleep-2h"));
    let (code, _, err) = heartbeat(&["diagram", "no-such-scenario"]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown scenario"), "{err}");
}
