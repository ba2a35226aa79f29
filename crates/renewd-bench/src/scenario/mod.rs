//! The scenarios, one module each; each returns every run's figures, the report takes the
//! medians.

pub mod batch;
pub mod finalize504;
pub mod idle;
pub mod one_cert;
pub mod outage;
pub mod scan;

/// A scenario's outcome: `None` when it was not run, an error when it failed.
pub type Outcome<T> = Option<Result<T, String>>;
