//! Durations in settings, in one human form everywhere: `"250ms"`, `"5s"`, `"2m"`,
//! `"1h 30m"`.
//!
//! Every duration fusebox reads from a file or an environment variable goes through
//! [`parse`]: TOML and serde settings of breakers, backoffs, retry budgets and whole
//! pipelines, and the environment overrides of pipeline settings. Writing them back
//! ([`format()`], and serde with the `serde` feature) gives the same form, so a round trip is
//! stable. The units are those of the `humantime` crate: `ns`, `us`, `ms`, `s`, `m`, `h`,
//! `d`, combinable (`"1m 30s"`).
//!
//! ```
//! use fusebox_core::duration;
//! use std::time::Duration;
//!
//! assert_eq!(duration::parse("250ms")?, Duration::from_millis(250));
//! assert_eq!(duration::parse("1m 30s")?, Duration::from_secs(90));
//! assert_eq!(duration::format(Duration::from_millis(1500)), "1s 500ms");
//! assert!(duration::parse("10").is_err()); // a unit is required
//! # Ok::<(), duration::DurationError>(())
//! ```

use std::time::Duration;

/// A duration that could not be read, with the text given.
///
/// ```
/// let err = fusebox_core::duration::parse("5 parsecs").unwrap_err();
/// assert!(err.to_string().starts_with("expected a duration such as \"250ms\""), "{err}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected a duration such as \"250ms\", \"5s\" or \"1m 30s\", got {text:?}: {reason}")]
pub struct DurationError {
    text: String,
    reason: String,
}

/// Reads a human duration: a number and a unit, or several (`"1m 30s"`).
///
/// ```
/// use std::time::Duration;
/// assert_eq!(fusebox_core::duration::parse(" 10ms ")?, Duration::from_millis(10));
/// # Ok::<(), fusebox_core::duration::DurationError>(())
/// ```
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    humantime::parse_duration(text.trim()).map_err(|e| DurationError {
        text: text.to_owned(),
        reason: e.to_string(),
    })
}

/// Writes a duration in the form [`parse`] reads back.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(fusebox_core::duration::format(Duration::from_secs(120)), "2m");
/// assert_eq!(fusebox_core::duration::format(Duration::ZERO), "0s");
/// ```
pub fn format(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

#[cfg(feature = "serde")]
/// What a settings field holding a duration accepts: a human string, or, for files written
/// before durations were strings everywhere, serde's `{ secs, nanos }` table.
struct DurationVisitor;

#[cfg(feature = "serde")]
impl DurationVisitor {
    fn from_parts<E: serde::de::Error>(secs: u64, nanos: u32) -> Result<Duration, E> {
        if nanos >= 1_000_000_000 {
            return Err(E::custom(format_args!(
                "`nanos` must be below 1000000000, got {nanos}"
            )));
        }
        Ok(Duration::new(secs, nanos))
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::de::Visitor<'de> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a duration such as \"250ms\", \"5s\" or \"1m 30s\"")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Duration, E> {
        parse(text).map_err(E::custom)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Duration, A::Error> {
        use serde::de::Error as _;
        let (mut secs, mut nanos) = (None, None);
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "secs" => secs = Some(map.next_value::<u64>()?),
                "nanos" => nanos = Some(map.next_value::<u32>()?),
                other => return Err(A::Error::unknown_field(other, &["secs", "nanos"])),
            }
        }
        let secs = secs.ok_or_else(|| A::Error::missing_field("secs"))?;
        Self::from_parts(secs, nanos.unwrap_or(0))
    }
}

/// `#[serde(with = "fusebox_core::duration::serde_human")]` for a [`Duration`] field.
///
/// ```
/// use std::time::Duration;
///
/// #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
/// struct Probe {
///     #[serde(with = "fusebox_core::duration::serde_human")]
///     every: Duration,
/// }
/// let probe: Probe = toml::from_str(r#"every = "1m 30s""#).unwrap();
/// assert_eq!(probe.every, Duration::from_secs(90));
/// assert_eq!(toml::to_string(&probe).unwrap().trim(), r#"every = "1m 30s""#);
/// // The table serde writes for a `Duration` by default is read too.
/// let legacy: Probe = toml::from_str("every = { secs = 2, nanos = 0 }").unwrap();
/// assert_eq!(legacy.every, Duration::from_secs(2));
/// ```
#[cfg(feature = "serde")]
pub mod serde_human {
    use super::{DurationVisitor, format};
    use std::time::Duration;

    /// Writes `duration` as a human string.
    pub fn serialize<S: serde::Serializer>(duration: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*duration))
    }

    /// Reads a human string or a `{ secs, nanos }` table.
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        d.deserialize_any(DurationVisitor)
    }
}

/// `#[serde(with = "fusebox_core::duration::serde_human_option")]` for an
/// `Option<Duration>` field (pair it with `#[serde(default)]`).
///
/// ```
/// use std::time::Duration;
///
/// #[derive(serde::Deserialize, Default, Debug)]
/// #[serde(default)]
/// struct Limits {
///     #[serde(with = "fusebox_core::duration::serde_human_option")]
///     deadline: Option<Duration>,
/// }
/// let limits: Limits = toml::from_str(r#"deadline = "800ms""#).unwrap();
/// assert_eq!(limits.deadline, Some(Duration::from_millis(800)));
/// assert_eq!(toml::from_str::<Limits>("").unwrap().deadline, None);
/// let err = toml::from_str::<Limits>(r#"deadline = "soon""#).unwrap_err();
/// assert!(err.to_string().contains("expected a duration"), "{err}");
/// ```
#[cfg(feature = "serde")]
pub mod serde_human_option {
    use super::{DurationVisitor, format};
    use std::fmt;
    use std::time::Duration;

    /// Writes a present duration as a human string, an absent one as none.
    pub fn serialize<S: serde::Serializer>(
        duration: &Option<Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match duration {
            Some(d) => s.serialize_some(&format(*d)),
            None => s.serialize_none(),
        }
    }

    /// Reads an optional human string or `{ secs, nanos }` table.
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        struct OptionVisitor;
        impl<'de> serde::de::Visitor<'de> for OptionVisitor {
            type Value = Option<Duration>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"250ms\", \"5s\" or \"1m 30s\"")
            }
            fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_some<D: serde::Deserializer<'de>>(
                self,
                d: D,
            ) -> Result<Self::Value, D::Error> {
                d.deserialize_any(DurationVisitor).map(Some)
            }
        }
        d.deserialize_option(OptionVisitor)
    }
}
