//! renewd-config's integration tests: one binary (see STYLE.md), one module per concern.
//!
//! - `malformed`: the corpus under `tests/malformed/`, each file carrying its expected errors.
//! - `examples`: every `config/*.toml` at the workspace root loads.
//! - `api`: the validated `Config` (defaults, every key, lookups, diff, redaction, `load`).
//! - `secrets`: which EAB MAC keys a load reads ([`renewd_config::SecretsMode`]).

#![allow(clippy::unwrap_used)]

mod api;
mod examples;
mod fixture;
mod malformed;
mod secrets;
