//! Replay nonces (RFC 8555 §6.5): issued on every answer, each accepted once.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

/// How many unused nonces are remembered; the oldest are forgotten first (a client that
/// sits on a nonce that long gets `badNonce` and a fresh one, as at a real CA).
const REMEMBERED: usize = 10_000;

/// The nonces handed out and not yet used.
#[derive(Debug, Default)]
pub(crate) struct NoncePool {
    inner: Mutex<Live>,
}

#[derive(Debug, Default)]
struct Live {
    set: HashSet<String>,
    order: VecDeque<String>,
}

impl NoncePool {
    /// A fresh nonce, remembered until used.
    pub fn issue(&self) -> String {
        let nonce = crate::random::token();
        let mut live = self.lock();
        live.set.insert(nonce.clone());
        live.order.push_back(nonce.clone());
        while live.order.len() > REMEMBERED {
            if let Some(old) = live.order.pop_front() {
                live.set.remove(&old);
            }
        }
        nonce
    }

    /// Uses up `nonce`: true the first time for a nonce this pool issued, false otherwise.
    pub fn consume(&self, nonce: &str) -> bool {
        // The order queue keeps used entries until they age out; `set` is the truth.
        self.lock().set.remove(nonce)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Live> {
        // A panic while holding this lock cannot leave the set inconsistent (each
        // operation is a single insert or remove), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_is_good_once() {
        let pool = NoncePool::default();
        let n = pool.issue();
        assert!(pool.consume(&n));
        assert!(!pool.consume(&n));
        assert!(!pool.consume("never-issued"));
    }

    #[test]
    fn old_unused_nonces_are_forgotten() {
        let pool = NoncePool::default();
        let first = pool.issue();
        for _ in 0..REMEMBERED {
            pool.issue();
        }
        assert!(!pool.consume(&first));
    }
}
