//! The CA health and account tables.

use renewd_core::CaName;
use rusqlite::{Connection, params};

use super::codec::{Col, count, dur_ms_opt, ms, ms_opt, path_buf, path_text};
use super::rows::{self, tuple};
use crate::error::StoreError;
use crate::records::{AccountRecord, CaHealth};

const SELECT_HEALTH: &str = "SELECT ca, circuit, consecutive_failures, open_until_ms, cooldown_ms, \
    last_probe_ms, last_probe_ok, last_probe_latency_ms, blocked_until_ms FROM ca_health";

type RawHealth = (
    String,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<bool>,
    Option<i64>,
    Option<i64>,
);

fn decode_health(raw: RawHealth) -> Result<CaHealth, StoreError> {
    let (ca, circuit, failures, open_until, cooldown, probe, probe_ok, probe_latency, blocked) =
        raw;
    let col = |c| Col::new("ca_health", c);
    Ok(CaHealth {
        ca: col("ca").parse(&ca)?,
        circuit: col("circuit").parse(&circuit)?,
        consecutive_failures: col("consecutive_failures").count(failures)?,
        open_until: col("open_until_ms").time_opt(open_until)?,
        cooldown: col("cooldown_ms").duration_opt(cooldown)?,
        last_probe: col("last_probe_ms").time_opt(probe)?,
        last_probe_ok: probe_ok,
        last_probe_latency: col("last_probe_latency_ms").duration_opt(probe_latency)?,
        blocked_until: col("blocked_until_ms").time_opt(blocked)?,
    })
}

pub(super) fn get(conn: &Connection, ca: &CaName) -> Result<Option<CaHealth>, StoreError> {
    let sql = format!("{SELECT_HEALTH} WHERE ca = ?1");
    rows::one(
        conn,
        &sql,
        ca.as_str(),
        tuple,
        decode_health,
        "reading a CA's health",
    )
}

pub(super) fn all(conn: &Connection) -> Result<Vec<CaHealth>, StoreError> {
    let sql = format!("{SELECT_HEALTH} ORDER BY ca");
    rows::all(conn, &sql, tuple, decode_health, "reading CA health")
}

pub(super) fn put(conn: &Connection, h: &CaHealth) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO ca_health (ca, circuit, consecutive_failures, open_until_ms, \
         cooldown_ms, last_probe_ms, last_probe_ok, last_probe_latency_ms, blocked_until_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .and_then(|mut st| {
        st.execute(params![
            h.ca.as_str(),
            h.circuit.as_str(),
            count(h.consecutive_failures),
            ms_opt(h.open_until),
            dur_ms_opt(h.cooldown),
            ms_opt(h.last_probe),
            h.last_probe_ok,
            dur_ms_opt(h.last_probe_latency),
            ms_opt(h.blocked_until),
        ])
    })
    .map_err(StoreError::db("writing a CA's health"))?;
    Ok(())
}

const SELECT_ACCOUNT: &str = "SELECT ca, url, key_path, eab_kid, contact, created_ms FROM account";

type RawAccount = (String, String, String, Option<String>, String, i64);

fn decode_account(raw: RawAccount) -> Result<AccountRecord, StoreError> {
    let (ca, url, key_path, eab_kid, contact, created) = raw;
    let col = |c| Col::new("account", c);
    let contact: Vec<String> =
        serde_json::from_str(&contact).map_err(|e| col("contact").corrupt(&contact, e))?;
    Ok(AccountRecord {
        ca: col("ca").parse(&ca)?,
        url,
        key_path: path_buf(key_path),
        eab_kid,
        contact,
        created: col("created_ms").time(created)?,
    })
}

pub(super) fn get_account(
    conn: &Connection,
    ca: &CaName,
) -> Result<Option<AccountRecord>, StoreError> {
    let sql = format!("{SELECT_ACCOUNT} WHERE ca = ?1");
    rows::one(
        conn,
        &sql,
        ca.as_str(),
        tuple,
        decode_account,
        "reading an account",
    )
}

pub(super) fn all_accounts(conn: &Connection) -> Result<Vec<AccountRecord>, StoreError> {
    let sql = format!("{SELECT_ACCOUNT} ORDER BY ca");
    rows::all(conn, &sql, tuple, decode_account, "reading accounts")
}

pub(super) fn put_account(conn: &Connection, a: &AccountRecord) -> Result<(), StoreError> {
    let key_path = path_text(&a.key_path)?;
    // A Vec<String> always serialises.
    let contact = serde_json::to_string(&a.contact).unwrap_or_else(|_| "[]".into());
    conn.prepare_cached(
        "INSERT OR REPLACE INTO account (ca, url, key_path, eab_kid, contact, created_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut st| {
        st.execute(params![
            a.ca.as_str(),
            a.url,
            key_path,
            a.eab_kid,
            contact,
            ms(a.created),
        ])
    })
    .map_err(StoreError::db("writing an account"))?;
    Ok(())
}
