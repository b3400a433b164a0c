//! Time as an input: a monotonic instant the caller supplies, and the duration helpers the
//! state machines need. Nothing here reads a clock.

use core::fmt;
use core::time::Duration;

/// A point on the caller's monotonic clock, in whole microseconds since an arbitrary origin.
///
/// The core never reads a clock: adapters convert their own (`tokio::time::Instant`,
/// `performance.now()`, a simulator's counter) into this type. All arithmetic saturates, so no
/// sequence of inputs, however extreme, can overflow or panic.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct Instant(u64);

impl Instant {
    /// The origin of the caller's clock.
    pub const ZERO: Instant = Instant(0);
    /// The latest representable instant; used as "never".
    pub const MAX: Instant = Instant(u64::MAX);

    /// An instant `micros` microseconds after the origin.
    #[must_use]
    pub const fn from_micros(micros: u64) -> Self {
        Instant(micros)
    }

    /// An instant `millis` milliseconds after the origin (saturating).
    #[must_use]
    pub const fn from_millis(millis: u64) -> Self {
        Instant(millis.saturating_mul(1_000))
    }

    /// An instant `secs` seconds after the origin (saturating).
    #[must_use]
    pub const fn from_secs(secs: u64) -> Self {
        Instant(secs.saturating_mul(1_000_000))
    }

    /// Microseconds since the origin.
    #[must_use]
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// The time since the origin.
    #[must_use]
    pub const fn since_origin(self) -> Duration {
        Duration::from_micros(self.0)
    }

    /// `self + d`, saturating at [`Instant::MAX`].
    #[must_use]
    pub fn saturating_add(self, d: Duration) -> Self {
        Instant(self.0.saturating_add(micros(d)))
    }

    /// `self - d`, saturating at [`Instant::ZERO`].
    #[must_use]
    pub fn saturating_sub(self, d: Duration) -> Self {
        Instant(self.0.saturating_sub(micros(d)))
    }

    /// The time from `earlier` to `self`, or zero if `earlier` is later.
    #[must_use]
    pub const fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }

    /// `self + ms` milliseconds, saturating; the state machines keep their timings in milliseconds.
    #[must_use]
    pub(crate) const fn plus_ms(self, ms: u32) -> Self {
        Instant(self.0.saturating_add(ms as u64 * 1_000))
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t={}", HumanDuration(self.since_origin()))
    }
}

/// Whole microseconds in `d`, saturating at `u64::MAX`.
#[must_use]
pub(crate) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Formats a duration the way people write it in configuration files: `30s`, `1500ms`, `2m30s`.
///
/// The largest units that divide the value exactly are used, so the text parses back to the same
/// value with [`parse_duration`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // In u128: a duration read from a file may exceed u64 microseconds, and its number
        // must still print as written.
        let total = self.0.as_micros();
        if total == 0 {
            return f.write_str("0s");
        }
        // Sub-second parts are written as a single ms or us figure; whole seconds as h/m/s.
        let (secs, sub) = (total / 1_000_000, total % 1_000_000);
        if sub != 0 {
            return if total % 1_000 == 0 {
                write!(f, "{}ms", total / 1_000)
            } else {
                write!(f, "{total}us")
            };
        }
        let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
        if h > 0 {
            write!(f, "{h}h")?;
        }
        if m > 0 {
            write!(f, "{m}m")?;
        }
        if s > 0 {
            write!(f, "{s}s")?;
        }
        Ok(())
    }
}

/// Why a duration string was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DurationParseError {
    /// The text was empty.
    #[error("empty duration (write e.g. \"30s\", \"1500ms\", \"2m\")")]
    Empty,
    /// A number was expected at this byte offset.
    #[error("expected a number at position {position} (write e.g. \"30s\", \"1500ms\", \"2m\")")]
    ExpectedNumber {
        /// Byte offset in the text.
        position: usize,
    },
    /// A number had no unit, or an unknown one.
    #[error("unknown or missing unit at position {position}: use h, m, s, ms or us")]
    BadUnit {
        /// Byte offset in the text.
        position: usize,
    },
    /// The value does not fit.
    #[error("duration too large")]
    Overflow,
}

/// Parses a human duration: one or more `<number><unit>` parts, units `h`, `m`, `s`, `ms`, `us`,
/// with an optional fraction (`1.5s`) and optional spaces between parts (`1m 30s`).
///
/// # Errors
/// Returns a [`DurationParseError`] naming the position of the first problem.
pub fn parse_duration(text: &str) -> Result<Duration, DurationParseError> {
    let bytes = text.trim().as_bytes();
    if bytes.is_empty() {
        return Err(DurationParseError::Empty);
    }
    let mut total: u128 = 0; // in nanoseconds, so fractions of microseconds are still exact
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && bytes[i] == b' ' {
            i += 1;
        }
        let start = i;
        let mut whole: u128 = 0;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            whole = whole
                .checked_mul(10)
                .and_then(|w| w.checked_add(u128::from(bytes[i] - b'0')))
                .ok_or(DurationParseError::Overflow)?;
            i += 1;
        }
        let mut frac: u128 = 0;
        let mut frac_scale: u128 = 1;
        if i < bytes.len() && bytes[i] == b'.' {
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                if frac_scale < 1_000_000_000 {
                    frac = frac * 10 + u128::from(bytes[i] - b'0');
                    frac_scale *= 10;
                }
                i += 1;
            }
        }
        if i == start || (i == start + 1 && bytes[start] == b'.') {
            return Err(DurationParseError::ExpectedNumber { position: start });
        }
        let unit_start = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let nanos_per: u128 = match &bytes[unit_start..i] {
            b"h" => 3_600_000_000_000,
            b"m" | b"min" => 60_000_000_000,
            b"s" => 1_000_000_000,
            b"ms" => 1_000_000,
            b"us" => 1_000,
            _ => {
                return Err(DurationParseError::BadUnit {
                    position: unit_start,
                })
            }
        };
        let part = whole
            .checked_mul(nanos_per)
            .and_then(|w| w.checked_add(frac * nanos_per / frac_scale))
            .ok_or(DurationParseError::Overflow)?;
        total = total
            .checked_add(part)
            .ok_or(DurationParseError::Overflow)?;
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| DurationParseError::Overflow)?;
    // Remainder is < 1e9, so it fits in u32.
    Ok(Duration::new(secs, (total % 1_000_000_000) as u32))
}

/// Serde helpers for durations written as human strings ("30s") or as a number of seconds.
pub mod serde_duration {
    use super::{parse_duration, HumanDuration};
    use core::fmt;
    use core::time::Duration;
    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    /// Serializes as a human string such as `"30s"`.
    ///
    /// # Errors
    /// Propagates the serializer's error.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&HumanDuration(*d))
    }

    /// Accepts `"30s"`-style strings, or a plain number meaning seconds.
    ///
    /// # Errors
    /// Returns the deserializer's custom error with the parse problem.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"30s\" or \"1500ms\", or a number of seconds")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                parse_duration(v)
                    .map_err(|e| E::custom(format_args!("invalid duration {v:?}: {e}")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
                Ok(Duration::from_secs(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
                u64::try_from(v)
                    .map(Duration::from_secs)
                    .map_err(|_| E::custom("a duration cannot be negative"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
                // Say which part of "a finite, non-negative number of seconds" is broken.
                Duration::try_from_secs_f64(v).map_err(|_| {
                    E::custom(if v.is_nan() {
                        "a duration must be a number of seconds, not NaN"
                    } else if v < 0.0 {
                        "a duration cannot be negative"
                    } else {
                        "a duration of that many seconds is too large"
                    })
                })
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<Duration, E> {
                u64::try_from(v)
                    .map(Duration::from_secs)
                    .map_err(|_| E::custom("a duration of that many seconds is too large"))
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<Duration, E> {
                if v < 0 {
                    return Err(E::custom("a duration cannot be negative"));
                }
                self.visit_u128(v.unsigned_abs())
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats_round_trip() {
        for (text, d) in [
            ("30s", Duration::from_secs(30)),
            ("1500ms", Duration::from_millis(1500)),
            ("2m30s", Duration::from_secs(150)),
            ("1h", Duration::from_secs(3600)),
            ("250us", Duration::from_micros(250)),
        ] {
            assert_eq!(parse_duration(text), Ok(d), "{text}");
            assert_eq!(alloc::format!("{}", HumanDuration(d)), text);
        }
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration(" 1m 30s "), Ok(Duration::from_secs(90)));
    }

    #[test]
    fn rejects_bad_text_with_position() {
        assert_eq!(parse_duration(""), Err(DurationParseError::Empty));
        assert_eq!(
            parse_duration("30"),
            Err(DurationParseError::BadUnit { position: 2 })
        );
        assert_eq!(
            parse_duration("30x"),
            Err(DurationParseError::BadUnit { position: 2 })
        );
        assert_eq!(
            parse_duration("s"),
            Err(DurationParseError::ExpectedNumber { position: 0 })
        );
        assert_eq!(
            parse_duration("99999999999999999999999999999999999999h"),
            Err(DurationParseError::Overflow)
        );
    }

    #[test]
    fn instant_arithmetic_saturates() {
        let t = Instant::MAX.saturating_add(Duration::from_secs(1));
        assert_eq!(t, Instant::MAX);
        assert_eq!(
            Instant::ZERO.saturating_sub(Duration::from_secs(1)),
            Instant::ZERO
        );
        assert_eq!(
            Instant::ZERO.saturating_duration_since(Instant::from_secs(5)),
            Duration::ZERO
        );
        assert_eq!(Instant::MAX.plus_ms(u32::MAX), Instant::MAX);
    }
}
