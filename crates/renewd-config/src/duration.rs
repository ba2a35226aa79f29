//! Durations as operators write them: `"30s"`, `"5m"`, `"1h30m"`, `"2d"`, `"500ms"`, or a
//! plain integer meaning seconds.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserialize, Deserializer, Visitor};

/// A duration exactly as written in the file, checked later (so a bad one is reported with
/// every other problem rather than stopping the parse).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawDuration {
    /// A string such as `"1h30m"`.
    Text(String),
    /// A bare integer: seconds.
    Seconds(i64),
}

impl<'de> Deserialize<'de> for RawDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RawDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    r#"a duration such as "30s", "5m", "1h30m", "2d" or a number of seconds"#,
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawDuration, E> {
                Ok(RawDuration::Text(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawDuration, E> {
                Ok(RawDuration::Seconds(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawDuration, E> {
                i64::try_from(v)
                    .map(RawDuration::Seconds)
                    .map_err(|_| E::custom("this duration is far too long"))
            }
        }
        d.deserialize_any(V)
    }
}

impl RawDuration {
    /// Parses the value; the error says what is wrong in words an operator can act on.
    pub fn parse(&self) -> Result<Duration, String> {
        match self {
            RawDuration::Seconds(s) => u64::try_from(*s)
                .map(Duration::from_secs)
                .map_err(|_| format!("a duration cannot be negative (got {s})")),
            RawDuration::Text(t) => parse_duration(t),
        }
    }
}

const UNITS: &[(&str, u64)] = &[
    ("ms", 1),
    ("s", 1_000),
    ("m", 60_000),
    ("h", 3_600_000),
    ("d", 86_400_000),
    ("w", 604_800_000),
];

const HINT: &str =
    r#"write a number followed by ms, s, m, h, d or w, such as "30s", "5m", "1h30m" or "2d""#;

/// Parses `"1h30m"`-style text: one or more `NUMBER UNIT` parts with units `ms`, `s`, `m`,
/// `h`, `d`, `w`; a lone number means seconds. Whitespace around the whole is ignored.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err(format!("the duration is empty; {HINT}"));
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        return t
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| format!("the duration {text:?} is far too long"));
    }
    let mut rest = t;
    let mut total_ms: u64 = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!("{text:?} is not a duration; {HINT}"));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("the duration {text:?} is far too long"))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        let Some(&(_, factor)) = UNITS.iter().find(|(u, _)| *u == unit) else {
            return Err(if rest.starts_with(char::is_whitespace) {
                format!("{text:?} has a space inside; write it without spaces, as in \"1h30m\"")
            } else if rest.starts_with(['.', ',']) {
                format!(
                    "{text:?} has a fraction; use whole numbers of smaller units, as in \"1h30m\" or \"1500ms\""
                )
            } else if unit.is_empty() {
                format!("{text:?} has a number without a unit; {HINT}")
            } else {
                format!("{text:?} has an unknown unit {unit:?}; {HINT}")
            });
        };
        rest = &rest[unit_len..];
        total_ms = number
            .checked_mul(factor)
            .and_then(|ms| total_ms.checked_add(ms))
            .ok_or_else(|| format!("the duration {text:?} is far too long"))?;
    }
    Ok(Duration::from_millis(total_ms))
}

/// Formats a duration the way the config writes it (`"1h30m"`, `"500ms"`, `"0s"`), for
/// messages and logs. Sub-millisecond parts are dropped.
pub fn format_duration(d: Duration) -> String {
    let mut ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    for &(unit, factor) in UNITS.iter().rev() {
        // Weeks read worse than days ("2w3d" vs "17d"); skip them when formatting.
        if unit == "w" {
            continue;
        }
        if ms >= factor {
            out.push_str(&format!("{}{unit}", ms / factor));
            ms %= factor;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Duration {
        parse_duration(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(ok("30s"), Duration::from_secs(30));
        assert_eq!(ok("5m"), Duration::from_secs(300));
        assert_eq!(ok("1h30m"), Duration::from_secs(5400));
        assert_eq!(ok("2d"), Duration::from_secs(172_800));
        assert_eq!(ok("1w"), Duration::from_secs(604_800));
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("1m500ms"), Duration::from_millis(60_500));
        assert_eq!(ok("0s"), Duration::ZERO);
        assert_eq!(ok("45"), Duration::from_secs(45));
        assert_eq!(ok(" 90d "), Duration::from_secs(90 * 86_400));
    }

    #[test]
    fn refuses_what_is_not_a_duration() {
        for (bad, fragment) in [
            ("", "empty"),
            ("abc", "is not a duration"),
            ("5 m", "space inside"),
            ("1.5h", "has a fraction"),
            ("5x", "unknown unit \"x\""),
            ("5min", "unknown unit \"min\""),
            ("1h30", "without a unit"),
            ("-5s", "is not a duration"),
            ("99999999999999999999s", "far too long"),
            ("999999999999999w", "far too long"),
        ] {
            let err = parse_duration(bad).unwrap_err();
            assert!(err.contains(fragment), "{bad:?}: {err}");
        }
        assert!(
            RawDuration::Seconds(-1)
                .parse()
                .unwrap_err()
                .contains("negative")
        );
        assert_eq!(
            RawDuration::Seconds(7).parse().unwrap(),
            Duration::from_secs(7)
        );
    }

    #[test]
    fn formats_round_trip() {
        for s in [
            "0s",
            "500ms",
            "30s",
            "5m",
            "1h30m",
            "2d",
            "90d",
            "1d1h1m1s1ms",
        ] {
            assert_eq!(format_duration(ok(s)), s);
        }
        assert_eq!(format_duration(Duration::from_secs(604_800)), "7d");
    }

    #[test]
    fn deserializes_strings_and_integers() {
        #[derive(Debug, serde::Deserialize)]
        struct T {
            a: RawDuration,
            b: RawDuration,
        }
        let t: T = toml::from_str("a = \"1h\"\nb = 30\n").unwrap();
        assert_eq!(t.a, RawDuration::Text("1h".into()));
        assert_eq!(t.b, RawDuration::Seconds(30));
        let err = toml::from_str::<T>("a = true\nb = 1\n").unwrap_err();
        assert!(
            err.message().contains("a duration such as"),
            "{}",
            err.message()
        );
    }
}
