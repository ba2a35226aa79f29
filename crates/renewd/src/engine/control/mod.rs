//! The daemon's control socket, `STATE/control.sock`: how `renewd renew` hands its pass to
//! a running daemon instead of binding the challenge ports the daemon holds and racing it
//! for the same certificates.
//!
//! A Unix stream socket, mode 0600 in the 0700 state directory, removed when the daemon
//! stops; a file left by a daemon that crashed is replaced at start (a live daemon
//! answering on it stops the second one from starting). One request per connection, one
//! JSON line:
//!
//! ```json
//! {"renew": {"certs": ["www"], "force": true, "only_ca": null}}
//! ```
//!
//! `certs` empty means every configured certificate. The daemon queues the certificates
//! through the scheduler (`SchedulerCommand::RenewNow`) and answers with one JSON line per
//! certificate as it finishes ([`CertOutcome`]: `{"cert": "www", "result": "renewed",
//! …}`) once the issuer's `WorkDone` for it arrived — the job's own result (the
//! `JobEnded` event that precedes the `WorkDone`) when the store cannot tell it: deferred,
//! already renewed by another process, lease held elsewhere (a deferral until the stored
//! retry); else read from the store — then a [`FinalLine`]. A certificate already being renewed is not queued again: its answer is
//! the outcome of the renewal in flight.
//!
//! - `socket`: [`ControlSocket`] — binding (stale files replaced, a live daemon refused),
//!   mode 0600, removal.
//! - `serve`: [`serve`] — one task per connection, answering as the certificates finish.

mod serve;
mod socket;

use std::path::{Path, PathBuf};

use renewd_core::{CaName, CertName};
use serde::{Deserialize, Serialize};

pub use serve::{ControlContext, serve};
pub use socket::ControlSocket;

/// The socket's file name in the state directory.
pub const SOCKET_NAME: &str = "control.sock";

/// `STATE/control.sock`.
pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join(SOCKET_NAME)
}

/// One request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlRequest {
    /// A `renew` pass.
    pub renew: RenewRequest,
}

/// `renewd renew`'s arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenewRequest {
    /// The certificates (empty: all).
    pub certs: Vec<CertName>,
    /// Renew them even when not due.
    #[serde(default)]
    pub force: bool,
    /// Only this CA.
    #[serde(default)]
    pub only_ca: Option<CaName>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_as_documented() {
        let r: ControlRequest = serde_json::from_str(
            r#"{"renew": {"certs": ["www"], "force": true, "only_ca": null}}"#,
        )
        .unwrap();
        assert_eq!(r.renew.certs, [CertName::new("www").unwrap()]);
        assert!(r.renew.force);
        assert_eq!(r.renew.only_ca, None);
        let r: ControlRequest =
            serde_json::from_str(r#"{"renew": {"certs": [], "only_ca": "le"}}"#).unwrap();
        assert!(!r.renew.force);
        assert_eq!(r.renew.only_ca, Some(CaName::new("le").unwrap()));
        for bad in [
            r#"{"renew": {"certs": ["a b"]}}"#,
            r#"{"renew": {"certs": [], "forced": true}}"#,
            r#"{"revoke": {}}"#,
            "",
        ] {
            assert!(
                serde_json::from_str::<ControlRequest>(bad).is_err(),
                "{bad}"
            );
        }
    }
}
