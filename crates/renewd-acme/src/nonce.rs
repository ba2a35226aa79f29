//! The nonce pool: every response's `Replay-Nonce` is kept for the next signed request.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

/// How many nonces are kept; older ones are dropped (servers expire them anyway).
const CAPACITY: usize = 16;

/// Fresh nonces, newest last. Shared by all clones of a client.
#[derive(Debug, Default)]
pub(crate) struct NoncePool {
    nonces: Mutex<VecDeque<String>>,
}

impl NoncePool {
    /// Keeps a nonce from a response.
    pub(crate) fn put(&self, nonce: String) {
        if nonce.is_empty() {
            return;
        }
        let mut nonces = self.nonces.lock().unwrap_or_else(PoisonError::into_inner);
        nonces.push_back(nonce);
        while nonces.len() > CAPACITY {
            nonces.pop_front();
        }
    }

    /// Takes the freshest nonce, if any.
    pub(crate) fn take(&self) -> Option<String> {
        self.nonces
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_back()
    }

    /// Forgets every nonce (after a directory refresh: the CA may have restarted).
    pub(crate) fn clear(&self) {
        self.nonces
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn freshest_first_and_bounded() {
        let pool = NoncePool::default();
        assert_eq!(pool.take(), None);
        for i in 0..20 {
            pool.put(format!("n{i}"));
        }
        pool.put(String::new());
        assert_eq!(pool.take().as_deref(), Some("n19"));
        let mut rest = 0;
        while pool.take().is_some() {
            rest += 1;
        }
        assert_eq!(rest, CAPACITY - 1);
    }
}
