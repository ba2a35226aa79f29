//! How times read in reports.

use chrono::{DateTime, SecondsFormat, Utc};

/// RFC 3339 in UTC with a `Z`, to the second: the JSON spelling.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `Option<DateTime>` as JSON: the RFC 3339 string, or null.
pub fn rfc3339_opt(t: Option<DateTime<Utc>>) -> Option<String> {
    t.map(rfc3339)
}

/// `2025-03-01 12:00 (in 3d)` / `(5h ago)`: for tables.
pub fn human(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    format!("{} ({})", t.format("%Y-%m-%d %H:%M"), distance(t, now))
}

/// `-` for no time at all.
pub fn human_opt(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    t.map_or_else(|| "-".to_string(), |t| human(t, now))
}

/// `in 3d`, `5h ago`, `now`: the largest whole unit.
pub fn distance(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (t - now).num_seconds();
    let abs = secs.unsigned_abs();
    let amount = match abs {
        0..60 => return "now".to_string(),
        60..3_600 => format!("{}m", abs / 60),
        3_600..86_400 => format!("{}h", abs / 3_600),
        _ => format!("{}d", abs / 86_400),
    };
    if secs > 0 {
        format!("in {amount}")
    } else {
        format!("{amount} ago")
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    #[test]
    fn spellings() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        assert_eq!(rfc3339(now), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339_opt(None), None);
        assert_eq!(human(now, now), "2023-11-14 22:13 (now)");
        assert_eq!(distance(now + TimeDelta::seconds(59), now), "now");
        assert_eq!(distance(now + TimeDelta::minutes(5), now), "in 5m");
        assert_eq!(distance(now - TimeDelta::hours(5), now), "5h ago");
        assert_eq!(distance(now + TimeDelta::days(30), now), "in 30d");
        assert_eq!(human_opt(None, now), "-");
    }
}
