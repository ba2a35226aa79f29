//! From the config to what the scheduler plans with, and the inventory scan — shared by the
//! daemon's engine, `renewd renew` and `renewd status`, so all three apply one rule.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use renewd_config::{CertConfig, Config};
use renewd_core::{CaName, CertName};
use renewd_scheduler::{CertPlan, CertView, Circuits, Decision, Inventory, SchedulePolicy, decide};
use renewd_store::{
    CertSpec, CertState, CertStore, InstalledState, Retention, SqliteOptions, SqliteStore,
    StoreError,
};

/// The scheduling policy of `[renewal]`.
pub fn schedule_policy(config: &Config) -> SchedulePolicy {
    SchedulePolicy {
        urgent_remaining: config.renewal.urgent_remaining,
        critical_remaining: config.renewal.critical_remaining,
        ari: config.renewal.ari,
    }
}

/// The scheduler's plan of one certificate.
pub fn cert_plan(cert: &CertConfig) -> CertPlan {
    let plan = CertPlan::new(cert.name.clone(), cert.cas.clone());
    match cert.renew_before {
        Some(before) => plan.renew_before(before),
        None => plan,
    }
}

/// One plan per configured certificate, in config order; equal CA lists share one `Arc`.
pub fn cert_plans(config: &Config) -> Vec<CertPlan> {
    let mut lists: HashMap<&[CaName], Arc<[CaName]>> = HashMap::new();
    config
        .certs
        .iter()
        .map(|c| {
            let cas = lists
                .entry(c.cas.as_slice())
                .or_insert_with(|| Arc::from(c.cas.as_slice()))
                .clone();
            CertPlan {
                cas,
                ..cert_plan(c)
            }
        })
        .collect()
}

/// Scans the live files of `certs` (in parallel threads: call it off the async workers).
pub fn scan<'a>(
    cert_store: &CertStore,
    certs: impl IntoIterator<Item = &'a CertConfig>,
) -> Inventory {
    let certs: Vec<&CertConfig> = certs.into_iter().collect();
    let specs: Vec<CertSpec<'_>> = certs
        .iter()
        .map(|c| CertSpec {
            name: &c.name,
            domains: &c.domains,
            key_type: c.key,
        })
        .collect();
    let scans = cert_store.scan(&specs);
    certs.iter().map(|c| c.name.clone()).zip(scans).collect()
}

/// The ledger's retention (`[ledger]`).
pub fn retention(config: &Config) -> Retention {
    Retention {
        max_age: config.ledger.max_age,
        max_rows: config.ledger.max_rows,
        ..Retention::default()
    }
}

/// Opens (creating when needed) the state store read-write, with the config's retention.
pub fn open_store(config: &Config) -> Result<SqliteStore, StoreError> {
    SqliteStore::open_in(
        &config.state_dir,
        SqliteOptions {
            retention: retention(config),
            ..SqliteOptions::default()
        },
    )
}

/// The scheduler's decision for `cert` as of `now`: its stored state (`None`: never seen),
/// its scan (`None`: believe the store), the CAs' circuits.
pub fn decision(
    config: &Config,
    cert: &CertConfig,
    state: Option<&CertState>,
    scan: Option<&InstalledState>,
    circuits: &Circuits,
    now: DateTime<Utc>,
) -> (CertView, Decision) {
    let fresh;
    let state = match state {
        Some(s) => s,
        None => {
            fresh = CertState::new(cert.name.clone());
            &fresh
        }
    };
    let view = CertView::new(state, scan);
    let decision = decide(
        &cert_plan(cert),
        &view,
        circuits,
        &schedule_policy(config),
        now,
    );
    (view, decision)
}

/// The certificates of `config` named in `names`, in config order.
pub fn certs_named<'a>(config: &'a Config, names: &[CertName]) -> Vec<&'a CertConfig> {
    let names: std::collections::HashSet<&CertName> = names.iter().collect();
    config
        .certs
        .iter()
        .filter(|c| names.contains(&c.name))
        .collect()
}
