//! The configuration object a frontend passes: the `client:` section of the YAML files, with the
//! same field names and duration strings (`{ ping_interval: "15s", slow_threshold: 2 }`).
//!
//! Parsing is the core's own serde implementation of [`ClientConfig`] (missing fields take their
//! defaults, unknown fields are errors), and validation is the core's; nothing is re-implemented
//! here. Generic over the deserializer so the host-side tests can feed it JSON.

use alloc::format;
use alloc::string::String;

use heartbeat_core::ClientConfig;
use serde::{Deserialize, Deserializer};

/// Reads and validates a client configuration.
///
/// # Errors
/// A message naming the bad field, or every broken rule (one per line).
pub(crate) fn client_config<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<ClientConfig, String> {
    let config = Option::<ClientConfig>::deserialize(deserializer)
        .map_err(|e| format!("invalid heartbeat config: {e}"))?
        .unwrap_or_default();
    config
        .validate()
        .into_result()
        .map_err(|e| format!("invalid heartbeat config:\n{e}"))?;
    Ok(config)
}

/// The same, from JSON text (for tests and tools).
#[cfg(test)]
fn from_json(text: &str) -> Result<ClientConfig, String> {
    let mut de = serde_json::Deserializer::from_str(text);
    client_config(&mut de)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use core::time::Duration;

    #[test]
    fn yaml_field_names_and_duration_strings() {
        let c = from_json(
            r#"{"ping_interval":"15s","pong_timeout":"10s","slow_threshold":2,"max_missed_pongs":4}"#,
        )
        .unwrap();
        assert_eq!(c.ping_interval, Duration::from_secs(15));
        assert_eq!(c.pong_timeout, Duration::from_secs(10));
        assert_eq!((c.slow_threshold, c.max_missed_pongs), (2, 4));
    }

    #[test]
    fn missing_fields_take_defaults() {
        let c = from_json(r#"{"ping_interval":"20s","backoff_max":"1m"}"#).unwrap();
        assert_eq!(
            c,
            ClientConfig {
                ping_interval: Duration::from_secs(20),
                backoff_max: Duration::from_secs(60),
                ..ClientConfig::default()
            }
        );
        assert_eq!(from_json("{}").unwrap(), ClientConfig::default());
        // `new HeartbeatSocket(url)` and `new HeartbeatSocket(url, null)`.
        assert_eq!(from_json("null").unwrap(), ClientConfig::default());
    }

    #[test]
    fn numbers_are_seconds_and_fractions_work() {
        let c = from_json(r#"{"ping_interval":1.5,"pong_timeout":"1s 200ms"}"#).unwrap();
        assert_eq!(c.ping_interval, Duration::from_millis(1500));
        assert_eq!(c.pong_timeout, Duration::from_millis(1200));
    }

    #[test]
    fn unknown_fields_and_bad_durations_are_named() {
        let e = from_json(r#"{"ping_intervall":"15s"}"#).unwrap_err();
        assert!(e.contains("ping_intervall"), "{e}");
        let e = from_json(r#"{"pong_timeout":"10x"}"#).unwrap_err();
        assert!(e.contains("10x"), "{e}");
    }

    #[test]
    fn broken_rules_are_all_reported() {
        let e = from_json(r#"{"ping_interval":"5s","pong_timeout":"10s","slow_threshold":4}"#)
            .unwrap_err();
        assert!(e.contains("client.pong_timeout (10s)"), "{e}");
        assert!(e.contains("client.slow_threshold (4)"), "{e}");
    }

    #[test]
    fn the_browser_test_config_is_valid_as_a_whole() {
        // The browser tests give the server this file and the page its client section: check
        // every rule that relates the two, not only the client's own.
        let text = include_str!("../tests/fast.json");
        let config = heartbeat_core::load::parse(text, heartbeat_core::load::Format::Json)
            .expect("fast.json parses");
        let validation = config.validate();
        assert!(validation.is_ok(), "{validation:?}");
        let client: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(from_json(&client["client"].to_string()), Ok(config.client));
    }
}
