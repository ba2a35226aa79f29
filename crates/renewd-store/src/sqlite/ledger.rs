//! The failure ledger table: append, query, the breaker's aggregates, pruning.

use chrono::{DateTime, Utc};
use renewd_core::{CaName, OutcomeClass, RequestOutcome};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use super::codec::{Col, dur_ms, ms};
use crate::error::StoreError;
use crate::records::{LedgerQuery, LedgerStats, PruneReport, Retention};

const COLUMNS: &str = "time_ms, ca, account, cert, step, http_status, problem_type, class, \
                       latency_ms, order_url, detail";

pub(super) fn append(conn: &Connection, o: &RequestOutcome) -> Result<(), StoreError> {
    conn.prepare_cached(&format!(
        "INSERT INTO ledger ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
    ))
    .and_then(|mut st| {
        st.execute(params![
            ms(o.time),
            o.ca.as_str(),
            o.account,
            o.cert.as_ref().map(|c| c.as_str()),
            o.step.as_str(),
            o.http_status,
            o.problem_type,
            o.class.as_str(),
            dur_ms(o.latency),
            o.order_url,
            o.detail,
        ])
    })
    .map_err(StoreError::db("appending to the ledger"))?;
    Ok(())
}

/// One row as stored, before its values are checked.
struct RawRow {
    time_ms: i64,
    ca: String,
    account: Option<String>,
    cert: Option<String>,
    step: String,
    http_status: Option<i64>,
    problem_type: Option<String>,
    class: String,
    latency_ms: i64,
    order_url: Option<String>,
    detail: Option<String>,
}

impl RawRow {
    fn decode(self) -> Result<RequestOutcome, StoreError> {
        let col = |c| Col::new("ledger", c);
        Ok(RequestOutcome {
            time: col("time_ms").time(self.time_ms)?,
            ca: col("ca").parse(&self.ca)?,
            account: self.account,
            cert: col("cert").parse_opt(self.cert.as_deref())?,
            step: col("step").parse(&self.step)?,
            http_status: col("http_status").u16_opt(self.http_status)?,
            problem_type: self.problem_type,
            class: col("class").parse(&self.class)?,
            latency: col("latency_ms").duration(self.latency_ms)?,
            order_url: self.order_url,
            detail: self.detail,
        })
    }
}

pub(super) fn query(conn: &Connection, q: &LedgerQuery) -> Result<Vec<RequestOutcome>, StoreError> {
    let mut filters = Vec::new();
    let mut args: Vec<Value> = Vec::new();
    if let Some(ca) = &q.ca {
        filters.push("ca = ?");
        args.push(Value::Text(ca.as_str().to_string()));
    }
    if let Some(cert) = &q.cert {
        filters.push("cert = ?");
        args.push(Value::Text(cert.as_str().to_string()));
    }
    if let Some(since) = q.since {
        filters.push("time_ms >= ?");
        args.push(Value::Integer(ms(since)));
    }
    let step_list;
    if let Some(steps) = &q.steps {
        step_list = format!("step IN ({})", vec!["?"; steps.len()].join(", "));
        filters.push(if steps.is_empty() { "0" } else { &step_list });
        args.extend(steps.iter().map(|s| Value::Text(s.as_str().to_string())));
    }
    // A negative LIMIT is no limit.
    args.push(Value::Integer(q.limit.map_or(-1, i64::from)));
    let where_clause = if filters.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", filters.join(" AND "))
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM ledger {where_clause} ORDER BY time_ms DESC, id DESC LIMIT ?"
    );
    let raw = conn
        .prepare_cached(&sql)
        .and_then(|mut st| {
            st.query_map(params_from_iter(args), |r| {
                Ok(RawRow {
                    time_ms: r.get(0)?,
                    ca: r.get(1)?,
                    account: r.get(2)?,
                    cert: r.get(3)?,
                    step: r.get(4)?,
                    http_status: r.get(5)?,
                    problem_type: r.get(6)?,
                    class: r.get(7)?,
                    latency_ms: r.get(8)?,
                    order_url: r.get(9)?,
                    detail: r.get(10)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(StoreError::db("querying the ledger"))?;
    raw.into_iter().map(RawRow::decode).collect()
}

pub(super) fn consecutive_ca_unavailable(
    conn: &Connection,
    ca: &CaName,
) -> Result<u32, StoreError> {
    let last_ok: Option<(i64, i64)> = conn
        .prepare_cached(
            "SELECT time_ms, id FROM ledger WHERE ca = ?1 AND class = ?2 \
             ORDER BY time_ms DESC, id DESC LIMIT 1",
        )
        .and_then(|mut st| {
            st.query_row(params![ca.as_str(), OutcomeClass::Ok.as_str()], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
        })
        .map_err(StoreError::db("finding the last ok in the ledger"))?;
    let (t, id) = last_ok.unwrap_or((i64::MIN, i64::MIN));
    let n: i64 = conn
        .prepare_cached(
            "SELECT COUNT(*) FROM ledger WHERE ca = ?1 AND class = ?2 \
             AND (time_ms > ?3 OR (time_ms = ?3 AND id > ?4))",
        )
        .and_then(|mut st| {
            st.query_row(
                params![ca.as_str(), OutcomeClass::CaUnavailable.as_str(), t, id],
                |r| r.get(0),
            )
        })
        .map_err(StoreError::db("counting consecutive failures"))?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

pub(super) fn stats(
    conn: &Connection,
    ca: &CaName,
    since: DateTime<Utc>,
) -> Result<LedgerStats, StoreError> {
    let rows: Vec<(String, i64)> = conn
        .prepare_cached(
            "SELECT class, COUNT(*) FROM ledger WHERE ca = ?1 AND time_ms >= ?2 GROUP BY class",
        )
        .and_then(|mut st| {
            st.query_map(params![ca.as_str(), ms(since)], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect()
        })
        .map_err(StoreError::db("aggregating the ledger"))?;
    let mut stats = LedgerStats::default();
    for (class, n) in rows {
        let class: OutcomeClass = Col::new("ledger", "class").parse(&class)?;
        stats.add(class, u64::try_from(n).unwrap_or(0));
    }
    Ok(stats)
}

pub(super) fn prune(
    conn: &Connection,
    now: DateTime<Utc>,
    retention: &Retention,
) -> Result<PruneReport, StoreError> {
    let max_age = chrono::TimeDelta::from_std(retention.max_age).unwrap_or(chrono::TimeDelta::MAX);
    let cutoff = now.checked_sub_signed(max_age).map_or(i64::MIN, ms);
    let by_age = conn
        .prepare_cached("DELETE FROM ledger WHERE time_ms < ?1")
        .and_then(|mut st| st.execute(params![cutoff]))
        .map_err(StoreError::db("pruning the ledger by age"))?;
    let keep = i64::try_from(retention.max_rows).unwrap_or(i64::MAX);
    let by_rows = conn
        .prepare_cached(
            "DELETE FROM ledger WHERE id <= \
             (SELECT id FROM ledger ORDER BY id DESC LIMIT 1 OFFSET ?1)",
        )
        .and_then(|mut st| st.execute(params![keep]))
        .map_err(StoreError::db("pruning the ledger by size"))?;
    Ok(PruneReport {
        by_age: by_age as u64,
        by_rows: by_rows as u64,
    })
}

pub(super) fn row_count(conn: &Connection) -> Result<u64, StoreError> {
    let n: i64 = conn
        .query_row("SELECT COUNT(*) FROM ledger", [], |r| r.get(0))
        .map_err(StoreError::db("counting ledger rows"))?;
    Ok(u64::try_from(n).unwrap_or(0))
}
