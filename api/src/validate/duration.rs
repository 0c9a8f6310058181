//! Go duration strings (`120s`, `1m30s`, `1.5h`, `500ms`) as Kubernetes' `metav1.Duration`
//! writes them: parsed with Go's rules, serialized back exactly as written.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A Go duration string with its parsed value. Serializes back to the text it was parsed
/// from, so `120s` stays `120s` (Calico itself would rewrite it as `2m0s`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Duration {
    text: String,
    nanos: i64,
}

const NANOS_PER: [(&str, u128); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("\u{b5}s", 1_000),
    ("\u{3bc}s", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

impl Duration {
    /// Parses a Go duration: an optional sign, then one or more `<number><unit>` with units
    /// `ns`, `us` (`µs`), `ms`, `s`, `m`, `h`; or exactly `0`.
    pub fn parse(text: &str) -> Result<Duration, String> {
        let bad = |why: &str| {
            format!("{text:?} is not a duration ({why}); write it like 90s, 1m30s or 500ms")
        };
        let (neg, mut rest) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        if rest == "0" {
            return Ok(Duration {
                text: text.to_string(),
                nanos: 0,
            });
        }
        if rest.is_empty() {
            return Err(bad("empty"));
        }
        let mut total: u128 = 0;
        while !rest.is_empty() {
            let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
            let int_part = &rest[..int_len];
            rest = &rest[int_len..];
            let mut frac_part = "";
            if let Some(after_dot) = rest.strip_prefix('.') {
                let frac_len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
                frac_part = &after_dot[..frac_len];
                rest = &after_dot[frac_len..];
                if int_len == 0 && frac_len == 0 {
                    return Err(bad("a '.' without digits"));
                }
            } else if int_len == 0 {
                return Err(bad("expected a number"));
            }
            let unit_len = rest
                .char_indices()
                .find(|(_, c)| *c == '.' || c.is_ascii_digit())
                .map_or(rest.len(), |(i, _)| i);
            let unit = &rest[..unit_len];
            rest = &rest[unit_len..];
            if unit.is_empty() {
                return Err(bad("missing unit"));
            }
            let per = NANOS_PER
                .iter()
                .find(|(u, _)| *u == unit)
                .map(|(_, n)| *n)
                .ok_or_else(|| bad(&format!("unknown unit {unit:?}")))?;
            let int: u128 = if int_part.is_empty() {
                0
            } else {
                int_part.parse().map_err(|_| bad("too large"))?
            };
            let mut amount = int.checked_mul(per).ok_or_else(|| bad("too large"))?;
            if !frac_part.is_empty() {
                // Keep at most 25 fraction digits: more cannot change whole nanoseconds, and
                // 10^25 times the largest unit (1h in ns) still fits in a u128.
                let digits = &frac_part[..frac_part.len().min(25)];
                let frac: u128 = digits.parse().map_err(|_| bad("too large"))?;
                let scale = 10u128.pow(u32::try_from(digits.len()).unwrap_or(25));
                let frac_nanos = frac.checked_mul(per).ok_or_else(|| bad("too large"))? / scale;
                amount = amount
                    .checked_add(frac_nanos)
                    .ok_or_else(|| bad("too large"))?;
            }
            total = total.checked_add(amount).ok_or_else(|| bad("too large"))?;
            if total > (1u128 << 63) {
                return Err(bad("too large"));
            }
        }
        let nanos = if neg {
            i64::try_from(-(i128::try_from(total).map_err(|_| bad("too large"))?))
                .map_err(|_| bad("too large"))?
        } else {
            i64::try_from(total).map_err(|_| bad("too large"))?
        };
        Ok(Duration {
            text: text.to_string(),
            nanos,
        })
    }

    /// A duration of whole seconds, written `<n>s`.
    pub fn from_secs(secs: u32) -> Duration {
        Duration {
            text: format!("{secs}s"),
            nanos: i64::from(secs) * 1_000_000_000,
        }
    }

    /// The text as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The value in nanoseconds (negative durations are allowed by Go).
    pub fn as_nanos(&self) -> i64 {
        self.nanos
    }

    /// The value as a `std::time::Duration`, or `None` when negative.
    pub fn to_std(&self) -> Option<std::time::Duration> {
        u64::try_from(self.nanos)
            .ok()
            .map(std::time::Duration::from_nanos)
    }

    /// Whole seconds, rounded down (negative durations give negative seconds).
    pub fn whole_seconds(&self) -> i64 {
        self.nanos / 1_000_000_000
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string such as \"90s\" or \"1m30s\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                Duration::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: &str) -> f64 {
        Duration::parse(s).unwrap().as_nanos() as f64 / 1e9
    }

    #[test]
    fn go_durations_parse() {
        assert_eq!(secs("120s"), 120.0);
        assert_eq!(secs("2m"), 120.0);
        assert_eq!(secs("1m30s"), 90.0);
        assert_eq!(secs("1.5h"), 5400.0);
        assert_eq!(secs("500ms"), 0.5);
        assert_eq!(secs("0"), 0.0);
        assert_eq!(secs("-1s"), -1.0);
        assert_eq!(secs(".5s"), 0.5);
        assert_eq!(Duration::parse("10us").unwrap().as_nanos(), 10_000);
        assert_eq!(Duration::parse("10\u{b5}s").unwrap().as_nanos(), 10_000);
    }

    #[test]
    fn malformed_durations_are_rejected() {
        for s in [
            "",
            "120",
            "s",
            "1x",
            "1.s.",
            "..1s",
            "1e3s",
            "99999999999999999999h",
            " 1s",
        ] {
            assert!(Duration::parse(s).is_err(), "{s:?}");
        }
    }

    #[test]
    fn a_long_fraction_of_hours_parses_without_overflow() {
        let nanos = Duration::parse("0.999999999999999999999999999999h")
            .unwrap()
            .as_nanos();
        assert_eq!(nanos, 3_599_999_999_999);
        assert_eq!(
            Duration::parse("1.5000000000000000000000000000000h")
                .unwrap()
                .as_nanos(),
            5_400_000_000_000
        );
    }

    #[test]
    fn durations_serialize_back_as_written() {
        let d: Duration = serde_json::from_str("\"120s\"").unwrap();
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"120s\"");
        assert!(serde_json::from_str::<Duration>("120").is_err());
    }
}
