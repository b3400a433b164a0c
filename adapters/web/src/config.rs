//! The configuration object a frontend passes: the `client:` section of the YAML files, with the
//! same field names and duration strings (`{ ping_interval: "15s", slow_threshold: 2 }`).
//!
//! Parsing is the core's own serde implementation of [`ClientConfig`] (missing fields take their
//! defaults, unknown fields are errors), and validation is the core's; nothing is re-implemented
//! here. Generic over the deserializer so the host-side tests can feed it JSON.

use alloc::format;
use alloc::string::{String, ToString};
use core::fmt;

use heartbeat_core::ClientConfig;
use serde::de::value::MapAccessDeserializer;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// Reads and validates a client configuration: an object, or null/undefined for the defaults.
///
/// # Errors
/// A message naming the bad field, or every broken rule (one per line).
pub(crate) fn client_config<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<ClientConfig, String> {
    let config = deserializer
        .deserialize_any(Strict)
        .map_err(|e| {
            let e = e.to_string();
            // serde-wasm-bindgen's errors are JavaScript errors, displayed with their class.
            let e = e.strip_prefix("Error: ").unwrap_or(&e);
            format!("invalid heartbeat config: {e}")
        })?
        .unwrap_or_default();
    config.validate().into_result().map_err(|e| e.to_string())?;
    Ok(config)
}

/// Hands the core's derived `Deserialize` every key of the object. Deserializing a struct
/// straight from serde-wasm-bindgen reads only the known keys, so a misspelt field would be
/// ignored silently instead of rejected (`deny_unknown_fields`); going through a map does not.
struct Strict;

impl<'de> Visitor<'de> for Strict {
    type Value = Option<ClientConfig>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object with the client's heartbeat settings")
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        ClientConfig::deserialize(MapAccessDeserializer::new(map)).map(Some)
    }
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
        let e = from_json("[1]").unwrap_err();
        assert!(
            e.contains("an object with the client's heartbeat settings"),
            "{e}"
        );
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
