//! The allocator's hold on freed memory. glibc's malloc keeps what a burst of work freed
//! for reuse: one arena per thread that ever allocated, and a trim threshold that grows
//! after large frees, so an idle daemon would hold megabytes it no longer uses (its RSS
//! is one of the targets in `docs/BENCHMARKS.md`).
//! The daemon asks for one arena and the fixed default threshold before it starts its
//! threads ([`tune_for_daemon`]), and hands free pages back ([`release_free_memory`]) once
//! started and whenever a burst of work ends ([`release_after_bursts`]). Other C libraries:
//! nothing to do.

use renewd_scheduler::SchedulerStatus;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// glibc's own default trim threshold; setting it explicitly stops it from growing.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: libc::c_int = 128 * 1024;

/// One malloc arena and a fixed trim threshold. Call before the runtime's threads exist.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn tune_for_daemon() {
    // SAFETY: mallopt(3) only sets allocator parameters; it takes integers and may be
    // called at any time. A refused setting (return 0) leaves glibc's default in place,
    // which is correct, only larger.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}

/// Nothing to tune outside glibc.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn tune_for_daemon() {}

/// Returns the allocator's free pages to the system (`malloc_trim(0)`: the top of the heap
/// and whole free pages inside it).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn release_free_memory() {
    // SAFETY: malloc_trim(3) takes an integer and works on the allocator's own lists under
    // its lock; it frees nothing that is in use.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Nothing to release outside glibc.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_free_memory() {}

/// Whether the scheduler has nothing in flight and nothing queued.
fn at_rest(status: &SchedulerStatus) -> bool {
    status.in_flight == 0 && status.queued == 0
}

/// Calls `release` now (the start's parsing and scanning are over), then each time the
/// scheduler comes to rest after work, until `stop`. Wakes only on status changes. The
/// daemon's `release` empties SQLite's page cache and then [`release_free_memory`].
pub async fn release_after_bursts(
    mut status: watch::Receiver<SchedulerStatus>,
    stop: CancellationToken,
    release: impl Fn(),
) {
    release();
    let mut was_at_rest = at_rest(&status.borrow_and_update());
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            changed = status.changed() => if changed.is_err() { break },
        }
        let now_at_rest = at_rest(&status.borrow_and_update());
        if now_at_rest && !was_at_rest {
            release();
        }
        was_at_rest = now_at_rest;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(in_flight: usize, queued: usize) -> SchedulerStatus {
        SchedulerStatus {
            certificates: 3,
            by_status: [0; 5],
            in_flight,
            queued,
            next: None,
        }
    }

    #[test]
    fn rest_means_nothing_in_flight_or_queued() {
        assert!(at_rest(&status(0, 0)));
        assert!(!at_rest(&status(1, 0)));
        assert!(!at_rest(&status(0, 2)));
    }

    #[tokio::test]
    async fn memory_is_released_at_the_start_and_when_a_burst_ends_and_only_then() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};

        let released = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&released);
        let (tx, rx) = watch::channel(status(0, 0));
        let stop = CancellationToken::new();
        let task = tokio::spawn(release_after_bursts(rx, stop.clone(), move || {
            count.fetch_add(1, Ordering::SeqCst);
        }));
        // The test runtime has one thread: a yield lets the task take each change in
        // turn (the watch keeps only the latest value).
        for (in_flight, queued) in [(2, 5), (1, 0), (0, 0), (0, 0), (0, 1), (0, 0)] {
            tx.send_replace(status(in_flight, queued));
            tokio::task::yield_now().await;
        }
        stop.cancel();
        task.await.unwrap();
        // At the start, and at the end of each of the two bursts; never while busy, nor
        // for a rest that follows a rest.
        assert_eq!(released.load(Ordering::SeqCst), 3);

        let (tx, rx) = watch::channel(status(0, 0));
        let task = tokio::spawn(release_after_bursts(rx, CancellationToken::new(), || {}));
        drop(tx);
        task.await.unwrap();
    }
}
