//! `renewd status` rows: the inventory scan of each configured certificate, joined with
//! what the state store remembers about it (back-off, failures, pending order, lease, ARI)
//! and the health of its CAs.
//!
//! The due time and the next attempt are the scheduler's own rule
//! ([`renewd_scheduler::decide`] on the same view of the store and the scan, with the CAs'
//! circuits), so `status` says what the daemon will do. The state, first that applies (the
//! scheduler's order): `renewing` — an order is in flight (a pending order is stored, or a
//! live process holds the certificate's lease); `failing` — the last attempts failed;
//! `missing` — nothing is installed; `due` — the due time has passed, or the installed set
//! is unusable (unreadable, corrupt, no longer matching the config: the reason is shown);
//! else `valid`.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use renewd_config::{CertConfig, Config};
use renewd_core::CaName;
use renewd_scheduler::{Circuits, Decision};
use renewd_store::{CaHealth, CertState, InstalledState, Mismatch, StatusSnapshot};

use crate::check::plural;
use crate::engine::plan;
use crate::report::{CertStatus, StatusRow};

/// One row per configured certificate, in config order. `scans[i]` is the inventory scan
/// of `config.certs[i]`.
pub fn status_rows(
    config: &Config,
    snapshot: &StatusSnapshot,
    scans: &[InstalledState],
    now: DateTime<Utc>,
) -> Vec<StatusRow> {
    let circuits = Circuits::from_health(&snapshot.cas);
    let states: std::collections::HashMap<&renewd_core::CertName, &CertState> =
        snapshot.certs.iter().map(|s| (&s.cert, s)).collect();
    config
        .certs
        .iter()
        .zip(scans)
        .map(|(cert, scan)| {
            let stored = states.get(&cert.name).copied();
            let (_, decision) = plan::decision(config, cert, stored, Some(scan), &circuits, now);
            status_row(cert, scan, stored, snapshot, &decision, now)
        })
        .collect()
}

fn status_row(
    cert: &CertConfig,
    scan: &InstalledState,
    stored: Option<&CertState>,
    snapshot: &StatusSnapshot,
    decision: &Decision,
    now: DateTime<Utc>,
) -> StatusRow {
    let facts = scan.facts();
    // What the store says about the installed certificate holds only while the files on
    // disk are that certificate.
    let installed = stored
        .and_then(|s| s.installed.as_ref())
        .filter(|i| facts.is_some_and(|f| f.serial_hex() == i.serial));
    let live_lease = snapshot
        .leases
        .iter()
        .find(|l| l.cert == cert.name && l.holder.staleness(l.expires_at, now).is_none());
    let pending = stored.and_then(|s| s.pending.as_ref());
    let streak = stored.map_or(0, |s| s.failure_streak);
    let backoff = stored.and_then(|s| s.next_attempt);
    let renewal = &decision.renewal;

    let state = if pending.is_some() || live_lease.is_some() {
        CertStatus::Renewing
    } else if streak > 0 {
        CertStatus::Failing
    } else if matches!(scan, InstalledState::Missing) {
        CertStatus::Missing
    } else if renewal.due <= now {
        CertStatus::Due
    } else {
        CertStatus::Valid
    };
    let next_attempt = Some(renewal.at);

    let mut why = String::new();
    match state {
        CertStatus::Renewing => {
            if let Some(p) = pending {
                let _ = write!(
                    why,
                    "order in flight at {} since {}",
                    p.ca,
                    short_time(p.created_at, now)
                );
            }
            if let Some(l) = live_lease {
                sep(&mut why);
                let _ = write!(
                    why,
                    "pid {} on {} holds the lease until {}",
                    l.holder.pid,
                    l.holder.hostname,
                    short_time(l.expires_at, now)
                );
            }
        }
        CertStatus::Failing => {
            let failures = plural(streak as usize, "failure");
            match backoff.filter(|b| *b > now) {
                Some(until) => {
                    let _ = write!(
                        why,
                        "backing off after {failures} until {}",
                        short_time(until, now)
                    );
                }
                None => {
                    let _ = write!(why, "{failures} in a row; retry due now");
                }
            }
            sep(&mut why);
            why.push_str(&installed_text(scan, decision));
        }
        CertStatus::Missing => why.push_str("no certificate installed"),
        CertStatus::Due => why.push_str(&installed_text(scan, decision)),
        CertStatus::Valid => {
            let _ = write!(
                why,
                "renews {} ({})",
                short_time(renewal.at, now),
                renewal.basis
            );
        }
    }
    if !matches!(state, CertStatus::Valid | CertStatus::Renewing)
        && let Some(note) = circuit_note(&cert.cas, &snapshot.cas, now)
    {
        sep(&mut why);
        why.push_str(&note);
    }

    StatusRow {
        name: cert.name.clone(),
        domains: cert.domains.clone(),
        state,
        not_after: facts.map(|f| f.not_after()),
        serial: facts.map(|f| f.serial_hex()),
        issuer_ca: installed.and_then(|i| i.issuer_ca.clone()),
        next_attempt,
        last_error: stored
            .and_then(|s| s.last_error.as_ref())
            .map(|e| e.message.clone()),
        why,
    }
}

/// What is installed, as a reason: "due: 1/3 of lifetime left", "corrupt: …".
fn installed_text(scan: &InstalledState, decision: &Decision) -> String {
    match scan {
        InstalledState::Valid(_) => format!("due: {}", decision.renewal.basis),
        InstalledState::Missing => "no certificate installed".into(),
        InstalledState::Unreadable { file, kind } => format!("{file} unreadable: {kind}"),
        InstalledState::Corrupt { file, reason } => format!("corrupt: {file} {reason}"),
        InstalledState::Mismatch { kind, .. } => match kind {
            Mismatch::NamesChanged { missing } => format!(
                "names added to the config: {}",
                missing
                    .iter()
                    .map(|d| d.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            Mismatch::KeyTypeChanged { expected, found } => format!(
                "key type changed: {} installed, {expected} configured",
                found.map_or("another type".to_string(), |k| k.to_string())
            ),
            Mismatch::KeyDoesNotMatch => "privkey.pem is not the certificate's key".into(),
        },
    }
}

/// "zerossl circuit open until 14:05, will try letsencrypt" when the certificate's
/// preferred CA has an open circuit; `None` when it does not.
fn circuit_note(cas: &[CaName], health: &[CaHealth], now: DateTime<Utc>) -> Option<String> {
    let open_until = |ca: &CaName| {
        health
            .iter()
            .find(|h| &h.ca == ca)
            .and_then(|h| h.effective_open_until(now))
    };
    let first = cas.first()?;
    let until = open_until(first)?;
    let mut note = format!("{first} circuit open until {}", short_time(until, now));
    match cas.iter().skip(1).find(|ca| open_until(ca).is_none()) {
        Some(next) => {
            let _ = write!(note, ", will try {next}");
        }
        None if cas.len() > 1 => {
            note.push_str("; every CA of this certificate has an open circuit")
        }
        None => {}
    }
    Some(note)
}

/// `14:05` today, `2025-03-01 14:05` another day (UTC).
fn short_time(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    if t.date_naive() == now.date_naive() {
        t.format("%H:%M").to_string()
    } else {
        t.format("%Y-%m-%d %H:%M").to_string()
    }
}

fn sep(s: &mut String) {
    if !s.is_empty() {
        s.push_str("; ");
    }
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
