//! What the crates actually emit: the daemon's engine runs against a test CA (a renewal
//! through finalize recovery and refused nonces, its ARI check, a CA that is down and
//! opens its circuit), then an in-process pass renews at critical urgency; a tracing layer
//! records every event and span of renewd's crates. Every field name must be one of
//! [`ALL`] or [`INCIDENTAL`] (so the journald names operators filter on are the documented ones: `CERT_NAME`,
//! never `CERT`; `ORDER_URL`, never `ORDER`), and no value may be the `Debug` of an
//! `Option` (`Some("…")`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use renewd_config::{Config, LoadEnv};
use renewd_core::{CaName, CertName, RenewalJob, RenewalReason, SystemClock, Urgency};
use renewd_issuer::{Issuer, IssuerParts, event_channel};
use renewd_store::{SqliteOptions, SqliteStore, StateStore};
use renewd_testca::{Endpoint, Fault, FaultPlan, TestCa};
use tokio_util::sync::CancellationToken;
use tracing::field::{Field, Visit};
use tracing::span::Attributes;
use tracing::{Event, Id, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

use super::{ALL, INCIDENTAL};
use crate::engine::{EngineContext, LocalHost, StatusLine, issuer_options, plan, solver_map};
use crate::heartbeat::Heartbeat;
use crate::metrics::Metrics;

/// One event (its message) or span (`span NAME`) with its fields and their values.
type Record = (String, Vec<(String, String)>);

/// Every event and span of renewd's own crates.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Record>>>);

struct Fields<'a>(&'a mut Vec<(String, String)>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_string(), value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .push((field.name().to_string(), format!("{value:?}")));
    }
}

/// renewd's crates, not the test CA's.
fn ours(target: &str) -> bool {
    target.starts_with("renewd") && !target.starts_with("renewd_testca")
}

impl<S: Subscriber> Layer<S> for Seen {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if !ours(event.metadata().target()) {
            return;
        }
        let mut fields = Vec::new();
        event.record(&mut Fields(&mut fields));
        let what = fields
            .iter()
            .find(|(n, _)| n == "message")
            .map_or_else(String::new, |(_, m)| m.clone());
        self.0.lock().unwrap().push((what, fields));
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, _id: &Id, _ctx: Context<'_, S>) {
        if !ours(attrs.metadata().target()) {
            return;
        }
        let mut fields = Vec::new();
        attrs.record(&mut Fields(&mut fields));
        let what = format!("span {}", attrs.metadata().name());
        self.0.lock().unwrap().push((what, fields));
    }
}

/// Polls `store` until `done` says so (the engine runs on its own: its outcome is in the
/// store), within a deadline.
async fn until(store: &SqliteStore, what: &str, done: impl Fn(&SqliteStore) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !done(store) {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn scenario(dir: &std::path::Path) {
    // Finalize answers 504 after issuing (recovery), and newOrder refuses two nonces.
    let up = TestCa::builder()
        .fault_plan(
            FaultPlan::new()
                .rule(
                    Endpoint::Finalize,
                    Fault::status(504).after_processing().times(1),
                )
                .rule(Endpoint::NewOrder, Fault::bad_nonce().times(2)),
        )
        .start()
        .await
        .unwrap();
    std::fs::write(dir.join("up-root.pem"), up.root_pem()).unwrap();
    std::fs::create_dir_all(dir.join("www")).unwrap();
    let down_port = renewd_testsupport::free_port();
    let text = format!(
        "state_dir = \"{d}/state\"\n[breaker]\nfailure_threshold = 1\n\
         [http01]\nwebroot = \"{d}/www\"\n\
         [[ca]]\nname = \"up\"\ndirectory = \"{}\"\ntrust_roots = [\"{d}/up-root.pem\"]\n\
         requests_per_second = 500\n\
         [[ca]]\nname = \"down\"\ndirectory = \"https://127.0.0.1:{down_port}/dir\"\n\
         [[cert]]\nname = \"www\"\ndomains = [\"www.example.test\"]\ncas = [\"up\", \"down\"]\n\
         [[cert]]\nname = \"gone\"\ndomains = [\"gone.example.test\"]\ncas = [\"down\"]\n",
        up.directory_url(),
        d = dir.display()
    );
    let config = Config::from_str(&text, &dir.join("renewd.toml"), &LoadEnv::default()).unwrap();

    // The daemon's engine: www renewed and its window fetched, gone failed at `down`.
    let shutdown = CancellationToken::new();
    let engine = crate::engine::starter().0(EngineContext {
        config: Arc::new(config.clone()),
        heartbeat: Heartbeat::new(Duration::from_secs(10)),
        status: StatusLine::new(String::new()),
        metrics: Metrics::new(),
        shutdown: shutdown.clone(),
    })
    .await
    .unwrap();
    let reader =
        SqliteStore::open_read_only(&dir.join("state/state.db"), SqliteOptions::default()).unwrap();
    let state = |s: &SqliteStore, c: &str| s.cert_state(&CertName::new(c).unwrap()).unwrap();
    until(&reader, "www renewed, its window known", |s| {
        state(s, "www").is_some_and(|c| c.last_success.is_some() && c.ari.window_start.is_some())
    })
    .await;
    until(&reader, "gone failed", |s| {
        state(s, "gone").is_some_and(|c| c.failure_streak > 0)
    })
    .await;
    shutdown.cancel();
    engine
        .drain(tokio::time::Instant::now() + Duration::from_secs(10))
        .await;

    // A pass at critical urgency at the CA that is down: the loud lines.
    let store: Arc<dyn StateStore> = Arc::new(plan::open_store(&config).unwrap());
    let solvers = renewd_local::ChallengeSolvers::start(&config, &shutdown)
        .await
        .unwrap();
    let issuer = Issuer::new(IssuerParts {
        config: config.clone(),
        store,
        cert_store: renewd_store::CertStore::new(&config.state_dir),
        clock: Arc::new(SystemClock),
        solvers: solver_map(&solvers),
        host_actions: Arc::new(LocalHost::default()),
        events: event_channel(64).0,
        options: issuer_options(None),
    })
    .unwrap();
    let mut job = RenewalJob::new(
        CertName::new("www").unwrap(),
        RenewalReason::Forced,
        Urgency::Critical,
    );
    job.only_ca = Some(CaName::new("down").unwrap());
    let results = issuer.run_once(vec![job], CancellationToken::new()).await;
    assert!(!results[0].1.is_renewed(), "{results:?}");
}

#[test]
fn every_field_the_crates_emit_has_a_documented_name_and_a_plain_value() {
    let dir = tempfile::tempdir().unwrap();
    let seen = Seen::default();
    let subscriber = tracing_subscriber::registry().with(seen.clone());
    tracing::subscriber::with_default(subscriber, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(scenario(dir.path()));
    });

    let known: BTreeSet<&str> = ALL
        .iter()
        .chain(INCIDENTAL)
        .copied()
        .chain(["message"])
        .collect();
    let mut unknown: BTreeMap<String, String> = BTreeMap::new();
    let mut optional: Vec<String> = Vec::new();
    let mut names: BTreeSet<String> = BTreeSet::new();
    for (what, fields) in seen.0.lock().unwrap().iter() {
        for (name, value) in fields {
            names.insert(name.clone());
            if !known.contains(name.as_str()) {
                unknown.entry(name.clone()).or_insert_with(|| what.clone());
            }
            if value.starts_with("Some(") || value == "None" {
                optional.push(format!("{what}: {name} = {value}"));
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "fields missing from log_fields::ALL and INCIDENTAL: {unknown:#?}"
    );
    assert!(
        optional.is_empty(),
        "Option values logged with Debug: {optional:#?}"
    );
    // The run went where the Option-valued fields are: renewals, failures, circuits,
    // finalize recovery, ARI, the critical start.
    for expected in [
        "cert_name",
        "order_url",
        "next_attempt",
        "open_until",
        "not_after",
        "window_start",
        "next_check",
        "failure_streak",
    ] {
        assert!(names.contains(expected), "{expected} not seen: {names:?}");
    }
}
