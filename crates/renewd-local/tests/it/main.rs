//! renewd-local's integration tests: the responders over real sockets, the hooks as real
//! processes, verify_served against a local TLS server, and every challenge type end to end
//! against a real pebble with real validation.
#![allow(clippy::unwrap_used)]

mod dns01;
mod hooks;
mod pebble;
mod responders;
mod served;
mod support;
mod tls_alpn;
mod webroot;
