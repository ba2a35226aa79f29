//! The renewal engine the daemon runs, and the seam it plugs into.
//!
//! - `seam`: [`Engine`], [`StartEngine`], [`EngineContext`], [`StatusLine`] — what the
//!   daemon's lifecycle knows of an engine.
//! - `running`: the real engine ([`starter`]): store, first scan, challenge responders,
//!   issuer, scheduler, wired together; reload and drain.
//! - `bridge`: the issuer's answers (`WorkDone`, events) to the scheduler, the metrics,
//!   `STATUS=` and the crit alarm.
//! - `status`: the `STATUS=` line (the scheduler's summary plus open circuits).
//! - `control`: the control socket `renewd renew` forwards to when a daemon runs.
//! - `host`: the issuer's hooks and served-certificate check, done by renewd-local.
//! - `plan`: config → scheduler plans and policy, the inventory scan, one certificate's
//!   decision — shared with `renewd renew` and `renewd status`.
//! - `outcome`: one certificate's result of a `renew` pass, as printed and as sent over the
//!   control socket.

mod bridge;
pub mod control;
mod host;
pub mod outcome;
pub mod plan;
mod running;
mod seam;
mod status;

pub use host::LocalHost;
pub use running::{issuer_options, solver_map};
pub use seam::{Drained, Engine, EngineContext, EngineFuture, StartEngine, StatusLine};

use crate::daemon::StartEngineBox;

/// The real engine's starter, for `renewd run`.
pub fn starter() -> StartEngineBox {
    StartEngineBox(Box::new(|ctx| Box::pin(running::start(ctx))))
}
