//! Reading a table's records: one by its key, or all in order. Each table reads a row as
//! stored (`read`, no checks that could fail on bad data beyond SQLite's own types), then
//! checks and converts it (`decode`, [`StoreError::CorruptValue`] naming the column).

use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::error::StoreError;

/// Reads a row's columns, in `SELECT` order, into a tuple of the same arity.
pub(super) fn tuple<R>(row: &Row<'_>) -> rusqlite::Result<R>
where
    R: for<'a> TryFrom<&'a Row<'a>, Error = rusqlite::Error>,
{
    R::try_from(row)
}

/// The record `sql` selects with `key` as its one parameter (`?1`), or `None`; `op` names
/// the operation in a database error.
pub(super) fn one<R, T>(
    conn: &Connection,
    sql: &str,
    key: &str,
    read: fn(&Row<'_>) -> rusqlite::Result<R>,
    decode: fn(R) -> Result<T, StoreError>,
    op: &'static str,
) -> Result<Option<T>, StoreError> {
    conn.prepare_cached(sql)
        .and_then(|mut st| st.query_row(params![key], read).optional())
        .map_err(StoreError::db(op))?
        .map(decode)
        .transpose()
}

/// Every record `sql` selects (it takes no parameters), in its order; the first row that
/// does not decode fails the whole read.
pub(super) fn all<R, T>(
    conn: &Connection,
    sql: &str,
    read: fn(&Row<'_>) -> rusqlite::Result<R>,
    decode: fn(R) -> Result<T, StoreError>,
    op: &'static str,
) -> Result<Vec<T>, StoreError> {
    conn.prepare_cached(sql)
        .and_then(|mut st| st.query_map([], read)?.collect::<Result<Vec<_>, _>>())
        .map_err(StoreError::db(op))?
        .into_iter()
        .map(decode)
        .collect()
}
