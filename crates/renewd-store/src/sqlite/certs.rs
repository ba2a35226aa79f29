//! The per-certificate state and pending-order tables.

use renewd_core::CertName;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::codec::{Col, count, ms, ms_opt, path_buf, path_text};
use super::rows;
use crate::error::StoreError;
use crate::records::{AriState, CertState, InstalledCert, LastError, PendingOrder};

const SELECT: &str = "SELECT s.cert, s.serial, s.not_before_ms, s.not_after_ms, s.issuer_ca, \
    s.account_url, s.ari_cert_id, s.ari_window_start_ms, s.ari_window_end_ms, \
    s.ari_explanation_url, s.ari_next_check_ms, s.ari_not_offered_ms, s.next_attempt_ms, \
    s.backoff_step, \
    s.urgency_alerted, s.failing_since_ms, s.failure_streak, s.last_error_class, \
    s.last_error_message, s.last_error_ms, s.last_success_ms, \
    p.ca AS p_ca, p.account_url AS p_account_url, p.order_url AS p_order_url, \
    p.key_path AS p_key_path, p.csr_der AS p_csr_der, p.created_ms AS p_created_ms \
    FROM cert_state s LEFT JOIN pending_order p ON p.cert = s.cert";

/// A row as stored, before its values are checked.
struct Raw {
    cert: String,
    serial: Option<String>,
    not_before: Option<i64>,
    not_after: Option<i64>,
    issuer_ca: Option<String>,
    account_url: Option<String>,
    ari_cert_id: Option<String>,
    ari_start: Option<i64>,
    ari_end: Option<i64>,
    ari_explanation: Option<String>,
    ari_next_check: Option<i64>,
    ari_not_offered: Option<i64>,
    next_attempt: Option<i64>,
    backoff_step: i64,
    urgency_alerted: Option<String>,
    failing_since: Option<i64>,
    failure_streak: i64,
    err_class: Option<String>,
    err_message: Option<String>,
    err_at: Option<i64>,
    last_success: Option<i64>,
    pending: Option<RawPending>,
}

struct RawPending {
    ca: String,
    account_url: String,
    order_url: String,
    key_path: String,
    csr_der: Vec<u8>,
    created: i64,
}

impl RawPending {
    fn decode(self) -> Result<PendingOrder, StoreError> {
        let col = |c| Col::new("pending_order", c);
        Ok(PendingOrder {
            ca: col("ca").parse(&self.ca)?,
            account_url: self.account_url,
            order_url: self.order_url,
            key_path: path_buf(self.key_path),
            csr_der: self.csr_der,
            created_at: col("created_ms").time(self.created)?,
        })
    }
}

fn read_raw(r: &Row<'_>) -> rusqlite::Result<Raw> {
    let p_ca: Option<String> = r.get("p_ca")?;
    let pending = match p_ca {
        None => None,
        Some(ca) => Some(RawPending {
            ca,
            account_url: r.get("p_account_url")?,
            order_url: r.get("p_order_url")?,
            key_path: r.get("p_key_path")?,
            csr_der: r.get("p_csr_der")?,
            created: r.get("p_created_ms")?,
        }),
    };
    Ok(Raw {
        cert: r.get("cert")?,
        serial: r.get("serial")?,
        not_before: r.get("not_before_ms")?,
        not_after: r.get("not_after_ms")?,
        issuer_ca: r.get("issuer_ca")?,
        account_url: r.get("account_url")?,
        ari_cert_id: r.get("ari_cert_id")?,
        ari_start: r.get("ari_window_start_ms")?,
        ari_end: r.get("ari_window_end_ms")?,
        ari_explanation: r.get("ari_explanation_url")?,
        ari_next_check: r.get("ari_next_check_ms")?,
        ari_not_offered: r.get("ari_not_offered_ms")?,
        next_attempt: r.get("next_attempt_ms")?,
        backoff_step: r.get("backoff_step")?,
        urgency_alerted: r.get("urgency_alerted")?,
        failing_since: r.get("failing_since_ms")?,
        failure_streak: r.get("failure_streak")?,
        err_class: r.get("last_error_class")?,
        err_message: r.get("last_error_message")?,
        err_at: r.get("last_error_ms")?,
        last_success: r.get("last_success_ms")?,
        pending,
    })
}

impl Raw {
    fn decode(self) -> Result<CertState, StoreError> {
        let col = |c| Col::new("cert_state", c);
        let installed = match (self.serial, self.not_before, self.not_after) {
            (Some(serial), Some(nb), Some(na)) => Some(InstalledCert {
                serial,
                not_before: col("not_before_ms").time(nb)?,
                not_after: col("not_after_ms").time(na)?,
                issuer_ca: col("issuer_ca").parse_opt(self.issuer_ca.as_deref())?,
                account_url: self.account_url,
                ari_cert_id: self.ari_cert_id,
            }),
            _ => None,
        };
        let last_error = match (self.err_class, self.err_at) {
            (Some(class), Some(at)) => Some(LastError {
                class: col("last_error_class").parse(&class)?,
                message: self.err_message.unwrap_or_default(),
                at: col("last_error_ms").time(at)?,
            }),
            _ => None,
        };
        let pending = self.pending.map(RawPending::decode).transpose()?;
        Ok(CertState {
            cert: col("cert").parse(&self.cert)?,
            installed,
            ari: AriState {
                window_start: col("ari_window_start_ms").time_opt(self.ari_start)?,
                window_end: col("ari_window_end_ms").time_opt(self.ari_end)?,
                explanation_url: self.ari_explanation,
                next_check: col("ari_next_check_ms").time_opt(self.ari_next_check)?,
                not_offered_at: col("ari_not_offered_ms").time_opt(self.ari_not_offered)?,
            },
            next_attempt: col("next_attempt_ms").time_opt(self.next_attempt)?,
            backoff_step: col("backoff_step").count(self.backoff_step)?,
            urgency_alerted: col("urgency_alerted").urgency_opt(self.urgency_alerted.as_deref())?,
            failing_since: col("failing_since_ms").time_opt(self.failing_since)?,
            failure_streak: col("failure_streak").count(self.failure_streak)?,
            last_error,
            last_success: col("last_success_ms").time_opt(self.last_success)?,
            pending,
        })
    }
}

pub(super) fn get(conn: &Connection, cert: &CertName) -> Result<Option<CertState>, StoreError> {
    let sql = format!("{SELECT} WHERE s.cert = ?1");
    let op = "reading a certificate's state";
    rows::one(conn, &sql, cert.as_str(), read_raw, Raw::decode, op)
}

pub(super) fn all(conn: &Connection) -> Result<Vec<CertState>, StoreError> {
    let sql = format!("{SELECT} ORDER BY s.cert");
    rows::all(
        conn,
        &sql,
        read_raw,
        Raw::decode,
        "reading certificate states",
    )
}

/// Writes the state and its pending order; the caller wraps this in a transaction.
pub(super) fn put(conn: &Connection, s: &CertState) -> Result<(), StoreError> {
    let inst = s.installed.as_ref();
    let err = s.last_error.as_ref();
    conn.prepare_cached(
        "INSERT OR REPLACE INTO cert_state (cert, serial, not_before_ms, not_after_ms, issuer_ca, \
         account_url, ari_cert_id, ari_window_start_ms, ari_window_end_ms, ari_explanation_url, \
         ari_next_check_ms, next_attempt_ms, backoff_step, urgency_alerted, failing_since_ms, \
         failure_streak, last_error_class, last_error_message, last_error_ms, last_success_ms, \
         ari_not_offered_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, \
         ?18, ?19, ?20, ?21)",
    )
    .and_then(|mut st| {
        st.execute(params![
            s.cert.as_str(),
            inst.map(|i| i.serial.as_str()),
            inst.map(|i| ms(i.not_before)),
            inst.map(|i| ms(i.not_after)),
            inst.and_then(|i| i.issuer_ca.as_ref()).map(|c| c.as_str()),
            inst.and_then(|i| i.account_url.as_deref()),
            inst.and_then(|i| i.ari_cert_id.as_deref()),
            ms_opt(s.ari.window_start),
            ms_opt(s.ari.window_end),
            s.ari.explanation_url,
            ms_opt(s.ari.next_check),
            ms_opt(s.next_attempt),
            count(s.backoff_step),
            s.urgency_alerted.map(|u| u.as_str()),
            ms_opt(s.failing_since),
            count(s.failure_streak),
            err.map(|e| e.class.as_str()),
            err.map(|e| e.message.as_str()),
            err.map(|e| ms(e.at)),
            ms_opt(s.last_success),
            ms_opt(s.ari.not_offered_at),
        ])
    })
    .map_err(StoreError::db("writing a certificate's state"))?;
    match &s.pending {
        Some(p) => set_pending(conn, &s.cert, p),
        None => clear_pending(conn, &s.cert).map(drop),
    }
}

pub(super) fn set_pending(
    conn: &Connection,
    cert: &CertName,
    p: &PendingOrder,
) -> Result<(), StoreError> {
    let key_path = path_text(&p.key_path)?;
    // A pending order always belongs to a state row (reads join from it).
    conn.prepare_cached("INSERT OR IGNORE INTO cert_state (cert) VALUES (?1)")
        .and_then(|mut st| st.execute(params![cert.as_str()]))
        .map_err(StoreError::db("writing a certificate's state"))?;
    conn.prepare_cached(
        "INSERT OR REPLACE INTO pending_order \
         (cert, ca, account_url, order_url, key_path, csr_der, created_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut st| {
        st.execute(params![
            cert.as_str(),
            p.ca.as_str(),
            p.account_url,
            p.order_url,
            key_path,
            p.csr_der,
            ms(p.created_at),
        ])
    })
    .map_err(StoreError::db("writing a pending order"))?;
    Ok(())
}

fn get_pending(conn: &Connection, cert: &CertName) -> Result<Option<PendingOrder>, StoreError> {
    let raw = conn
        .prepare_cached(
            "SELECT ca, account_url, order_url, key_path, csr_der, created_ms \
             FROM pending_order WHERE cert = ?1",
        )
        .and_then(|mut st| {
            st.query_row(params![cert.as_str()], |r| {
                Ok(RawPending {
                    ca: r.get(0)?,
                    account_url: r.get(1)?,
                    order_url: r.get(2)?,
                    key_path: r.get(3)?,
                    csr_der: r.get(4)?,
                    created: r.get(5)?,
                })
            })
            .optional()
        })
        .map_err(StoreError::db("reading a pending order"))?;
    raw.map(RawPending::decode).transpose()
}

/// Deletes the pending order, returning it; the caller wraps this in a transaction.
pub(super) fn clear_pending(
    conn: &Connection,
    cert: &CertName,
) -> Result<Option<PendingOrder>, StoreError> {
    let old = get_pending(conn, cert)?;
    conn.prepare_cached("DELETE FROM pending_order WHERE cert = ?1")
        .and_then(|mut st| st.execute(params![cert.as_str()]))
        .map_err(StoreError::db("removing a pending order"))?;
    Ok(old)
}

/// Removes everything about `cert`; the caller wraps this in a transaction.
pub(super) fn remove(
    conn: &Connection,
    cert: &CertName,
) -> Result<Option<PendingOrder>, StoreError> {
    let old = clear_pending(conn, cert)?;
    for sql in [
        "DELETE FROM cert_state WHERE cert = ?1",
        "DELETE FROM lease WHERE cert = ?1",
    ] {
        conn.prepare_cached(sql)
            .and_then(|mut st| st.execute(params![cert.as_str()]))
            .map_err(StoreError::db("removing a certificate's state"))?;
    }
    Ok(old)
}
