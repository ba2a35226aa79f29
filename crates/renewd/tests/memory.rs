//! `release_free_memory` gives freed heap pages back to the system: the anonymous memory
//! a burst of small allocations left behind shrinks. A test binary of its own, so no other
//! test allocates meanwhile.
#![allow(clippy::unwrap_used)]

fn rss_anon_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn freed_pages_go_back_to_the_system() {
    renewd::tune_allocator_for_daemon();
    // 64 MiB in 1 KiB blocks, written so the pages are resident; then all freed except the
    // last block, which pins the top of the heap so that free() alone cannot shrink it.
    let mut blocks: Vec<Box<[u8]>> = (0..65_536).map(|i| vec![i as u8; 1024].into()).collect();
    let pin = blocks.pop().unwrap();
    let before_free = rss_anon_kib();
    drop(blocks);
    let after_free = rss_anon_kib();
    renewd::release_free_memory();
    let after_release = rss_anon_kib();
    assert!(
        after_free > before_free / 2,
        "free() alone kept the pages: {before_free} → {after_free} KiB"
    );
    assert!(
        after_free - after_release > 48 * 1024,
        "released: {after_free} → {after_release} KiB"
    );
    drop(pin);
}
