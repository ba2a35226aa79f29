//! How values are stored: times as Unix milliseconds, durations as milliseconds, labels as
//! their stable strings, paths as UTF-8 text. Decoding refuses what does not fit with
//! [`StoreError::CorruptValue`], naming the table and column.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use renewd_core::Urgency;

use crate::error::StoreError;

pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn ms_opt(t: Option<DateTime<Utc>>) -> Option<i64> {
    t.map(ms)
}

pub(crate) fn dur_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

pub(crate) fn dur_ms_opt(d: Option<Duration>) -> Option<i64> {
    d.map(dur_ms)
}

pub(crate) fn count(n: u32) -> i64 {
    i64::from(n)
}

pub(crate) fn path_text(p: &Path) -> Result<&str, StoreError> {
    p.to_str()
        .ok_or_else(|| StoreError::NonUtf8Path(p.to_path_buf()))
}

/// Where a value came from, for error messages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Col {
    pub table: &'static str,
    pub column: &'static str,
}

impl Col {
    pub(crate) const fn new(table: &'static str, column: &'static str) -> Self {
        Self { table, column }
    }

    pub(crate) fn corrupt(self, value: impl ToString, reason: impl ToString) -> StoreError {
        StoreError::CorruptValue {
            table: self.table,
            column: self.column,
            value: value.to_string(),
            reason: reason.to_string(),
        }
    }

    pub(crate) fn time(self, v: i64) -> Result<DateTime<Utc>, StoreError> {
        DateTime::from_timestamp_millis(v).ok_or_else(|| self.corrupt(v, "time out of range"))
    }

    pub(crate) fn time_opt(self, v: Option<i64>) -> Result<Option<DateTime<Utc>>, StoreError> {
        v.map(|v| self.time(v)).transpose()
    }

    pub(crate) fn duration(self, v: i64) -> Result<Duration, StoreError> {
        u64::try_from(v)
            .map(Duration::from_millis)
            .map_err(|_| self.corrupt(v, "negative duration"))
    }

    pub(crate) fn duration_opt(self, v: Option<i64>) -> Result<Option<Duration>, StoreError> {
        v.map(|v| self.duration(v)).transpose()
    }

    pub(crate) fn count(self, v: i64) -> Result<u32, StoreError> {
        u32::try_from(v).map_err(|_| self.corrupt(v, "count out of range"))
    }

    pub(crate) fn u16_opt(self, v: Option<i64>) -> Result<Option<u16>, StoreError> {
        v.map(|v| u16::try_from(v).map_err(|_| self.corrupt(v, "out of range")))
            .transpose()
    }

    /// A value of a type with a validating `FromStr` (names, labels).
    pub(crate) fn parse<T>(self, v: &str) -> Result<T, StoreError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        v.parse().map_err(|e: T::Err| self.corrupt(v, e))
    }

    pub(crate) fn parse_opt<T>(self, v: Option<&str>) -> Result<Option<T>, StoreError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        v.map(|v| self.parse(v)).transpose()
    }

    pub(crate) fn urgency_opt(self, v: Option<&str>) -> Result<Option<Urgency>, StoreError> {
        v.map(|v| {
            [Urgency::Normal, Urgency::Urgent, Urgency::Critical]
                .into_iter()
                .find(|u| u.as_str() == v)
                .ok_or_else(|| self.corrupt(v, "expected normal, urgent or critical"))
        })
        .transpose()
    }
}

pub(crate) fn path_buf(v: String) -> PathBuf {
    PathBuf::from(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_bad_values_with_their_place() {
        let c = Col::new("ledger", "class");
        let err = c.parse::<renewd_core::OutcomeClass>("meh").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("ledger.class") && msg.contains("meh"), "{msg}");
        assert!(c.duration(-1).is_err());
        assert!(c.count(i64::from(u32::MAX) + 1).is_err());
        assert!(c.time(i64::MAX).is_err());
        assert_eq!(
            c.urgency_opt(Some("critical")).unwrap(),
            Some(Urgency::Critical)
        );
        assert!(c.urgency_opt(Some("x")).is_err());
    }
}
