//! Two processes racing for one certificate's lease: exactly one wins, every round; a lease
//! whose holder process died is taken over.

use std::time::Duration;

use renewd_core::CertName;
use renewd_store::{LeaseHolder, LeaseOutcome, SqliteOptions, SqliteStore, StateStore, Takeover};

use crate::ChildGuard;

const ROUNDS: usize = 20;

#[test]
fn exactly_one_of_two_processes_gets_the_lease() {
    let dir = tempfile::tempdir().unwrap();
    // Create and migrate once, so the children race for the lease, not the schema.
    let store = SqliteStore::open_in(dir.path(), SqliteOptions::default()).unwrap();
    for round in 0..ROUNDS {
        let cert = format!("race{round}");
        let mut a = ChildGuard::spawn("lease-race", dir.path(), &cert);
        let mut b = ChildGuard::spawn("lease-race", dir.path(), &cert);
        a.expect_token("OPEN");
        b.expect_token("OPEN");
        a.say("go");
        b.say("go");
        let results = [a.next_token(), b.next_token()];
        let winners = results.iter().filter(|r| *r == "WON").count();
        assert_eq!(winners, 1, "round {round}: {results:?}");
        assert!(
            results.iter().all(|r| r == "WON" || r == "LOST"),
            "{results:?}"
        );
        // The database agrees on who holds it.
        let winner_pid = if results[0] == "WON" {
            a.pid()
        } else {
            b.pid()
        };
        let leases = store.status_snapshot().unwrap().leases;
        let held = leases.iter().find(|l| l.cert.as_str() == cert).unwrap();
        assert_eq!(held.holder.pid, winner_pid, "round {round}");
        a.finish();
        b.finish();
    }
}

#[test]
fn a_lease_of_a_dead_process_is_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in(dir.path(), SqliteOptions::default()).unwrap();
    let cert = CertName::new("www").unwrap();
    let me = LeaseHolder::this_process();
    let ttl = Duration::from_secs(60);

    let mut holder = ChildGuard::spawn("lease-hold", dir.path(), cert.as_str());
    holder.expect_token("HELD");
    // Alive in another process, not expired: held.
    match store.acquire_lease(&cert, &me, ttl).unwrap() {
        LeaseOutcome::Held(l) => assert_eq!(l.holder.pid, holder.pid()),
        other => panic!("{other:?}"),
    }
    let pid = holder.pid();
    holder.kill();
    match store.acquire_lease(&cert, &me, ttl).unwrap() {
        LeaseOutcome::Acquired {
            took_over: Some((from, Takeover::HolderDead)),
            lease,
        } => {
            assert_eq!(from.pid, pid);
            assert_eq!(lease.holder, me);
        }
        other => panic!("expected a takeover, got {other:?}"),
    }
}
