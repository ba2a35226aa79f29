//! The lease table. Every function here runs inside the caller's immediate transaction, so a
//! read-decide-write is atomic across processes.

use chrono::{DateTime, Utc};
use renewd_core::CertName;
use rusqlite::{Connection, params};

use super::codec::{Col, ms};
use super::rows::{self, tuple};
use crate::error::StoreError;
use crate::lease::{Lease, LeaseHolder, LeaseOutcome};

const SELECT: &str =
    "SELECT cert, pid, pid_start, boot_id, hostname, token, acquired_ms, expires_ms FROM lease";

type Raw = (String, i64, Option<i64>, String, String, String, i64, i64);

fn decode(raw: Raw) -> Result<Lease, StoreError> {
    let (cert, pid, pid_start, boot_id, hostname, token, acquired, expires) = raw;
    let col = |c| Col::new("lease", c);
    Ok(Lease {
        cert: col("cert").parse(&cert)?,
        holder: LeaseHolder {
            pid: u32::try_from(pid).map_err(|_| col("pid").corrupt(pid, "not a pid"))?,
            pid_start: pid_start.and_then(|s| u64::try_from(s).ok()),
            boot_id,
            hostname,
            token,
        },
        acquired_at: col("acquired_ms").time(acquired)?,
        expires_at: col("expires_ms").time(expires)?,
    })
}

pub(super) fn get(conn: &Connection, cert: &CertName) -> Result<Option<Lease>, StoreError> {
    let sql = format!("{SELECT} WHERE cert = ?1");
    rows::one(conn, &sql, cert.as_str(), tuple, decode, "reading a lease")
}

pub(super) fn all(conn: &Connection) -> Result<Vec<Lease>, StoreError> {
    let sql = format!("{SELECT} ORDER BY cert");
    rows::all(conn, &sql, tuple, decode, "reading leases")
}

fn write(conn: &Connection, lease: &Lease) -> Result<(), StoreError> {
    let h = &lease.holder;
    conn.prepare_cached(
        "INSERT OR REPLACE INTO lease \
         (cert, pid, pid_start, boot_id, hostname, token, acquired_ms, expires_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .and_then(|mut st| {
        st.execute(params![
            lease.cert.as_str(),
            i64::from(h.pid),
            h.pid_start.and_then(|s| i64::try_from(s).ok()),
            h.boot_id,
            h.hostname,
            h.token,
            ms(lease.acquired_at),
            ms(lease.expires_at),
        ])
    })
    .map_err(StoreError::db("writing a lease"))?;
    Ok(())
}

/// Decides and writes; the caller holds an immediate transaction.
pub(super) fn acquire(
    conn: &Connection,
    cert: &CertName,
    holder: &LeaseHolder,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<LeaseOutcome, StoreError> {
    let fresh = |acquired_at| Lease {
        cert: cert.clone(),
        holder: holder.clone(),
        acquired_at,
        expires_at,
    };
    let outcome = match get(conn, cert)? {
        None => LeaseOutcome::Acquired {
            lease: fresh(now),
            took_over: None,
        },
        Some(current) if current.holder.same_as(holder) => LeaseOutcome::Acquired {
            lease: fresh(current.acquired_at),
            took_over: None,
        },
        Some(current) => match current.holder.staleness(current.expires_at, now) {
            Some(why) => LeaseOutcome::Acquired {
                lease: fresh(now),
                took_over: Some((current.holder, why)),
            },
            None => return Ok(LeaseOutcome::Held(current)),
        },
    };
    if let LeaseOutcome::Acquired { lease, .. } = &outcome {
        write(conn, lease)?;
    }
    Ok(outcome)
}

/// Extends the lease when its holder still holds it; `false` otherwise.
pub(super) fn renew(
    conn: &Connection,
    lease: &Lease,
    expires_at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let h = &lease.holder;
    let n = conn
        .prepare_cached(
            "UPDATE lease SET expires_ms = ?1 \
             WHERE cert = ?2 AND token = ?3 AND pid = ?4 AND boot_id = ?5",
        )
        .and_then(|mut st| {
            st.execute(params![
                ms(expires_at),
                lease.cert.as_str(),
                h.token,
                i64::from(h.pid),
                h.boot_id
            ])
        })
        .map_err(StoreError::db("renewing a lease"))?;
    Ok(n == 1)
}

pub(super) fn release(conn: &Connection, lease: &Lease) -> Result<bool, StoreError> {
    let h = &lease.holder;
    let n = conn
        .prepare_cached(
            "DELETE FROM lease WHERE cert = ?1 AND token = ?2 AND pid = ?3 AND boot_id = ?4",
        )
        .and_then(|mut st| {
            st.execute(params![
                lease.cert.as_str(),
                h.token,
                i64::from(h.pid),
                h.boot_id
            ])
        })
        .map_err(StoreError::db("releasing a lease"))?;
    Ok(n == 1)
}
