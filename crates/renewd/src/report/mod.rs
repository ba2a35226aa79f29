//! What `status`, `ledger` and `ca` print: typed rows in, a table or the JSON of
//! `CONTRACT.md` out.
//!
//! The rows are plain data, filled by `inspect` from the state store's records; these
//! modules only decide how they read. Times are UTC: RFC 3339 in JSON, and
//! `YYYY-MM-DD HH:MM` with a distance from now in tables.

mod ca;
mod ledger;
mod status;
mod table;
mod time;

pub use ca::write_cas;
pub use ledger::write_ledger;
pub use status::{CertStatus, StatusRow, write_status};

/// How a report is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// An aligned table for people.
    Table,
    /// A JSON array, as `CONTRACT.md` specifies.
    Json,
}

impl Format {
    /// `--json` or not.
    pub fn from_json_flag(json: bool) -> Self {
        if json { Format::Json } else { Format::Table }
    }
}
