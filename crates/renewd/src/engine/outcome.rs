//! What `renewd renew` reports per certificate, whether the pass ran in this process or in
//! the daemon (then it travels as one JSON line per certificate over the control socket).

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use renewd_core::{CaName, CertName, OutcomeClass};
use renewd_issuer::JobResult;
use renewd_store::CertState;
use serde::{Deserialize, Serialize};

/// One certificate's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertOutcome {
    /// The certificate.
    pub cert: CertName,
    /// What happened.
    #[serde(flatten)]
    pub result: RenewResult,
}

/// What happened to one certificate in a `renew` pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum RenewResult {
    /// Issued and installed.
    Renewed {
        /// The CA that issued it (`None` when the store does not say).
        ca: Option<CaName>,
        /// Its serial, lower-case hex.
        serial: String,
        /// Its notAfter.
        not_after: DateTime<Utc>,
    },
    /// Not renewed: the attempt failed (the store holds the back-off).
    Failed {
        /// The class of the failure that decided it.
        class: OutcomeClass,
        /// One line.
        error: String,
    },
    /// Not due, and not forced.
    NotDue {
        /// When it is next due.
        next_renewal: DateTime<Utc>,
    },
    /// Neither renewed nor failed: interrupted, or another renewd process holds it.
    Unfinished {
        /// Why.
        reason: String,
    },
    /// The daemon does not know this certificate (its config differs from this one's).
    Unknown,
}

impl RenewResult {
    /// Whether this result makes `renew` exit 1.
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            RenewResult::Failed { .. } | RenewResult::Unfinished { .. } | RenewResult::Unknown
        )
    }

    /// The result of an in-process job.
    pub fn of_job(result: JobResult) -> RenewResult {
        match result {
            JobResult::Renewed {
                ca,
                serial,
                not_after,
                ..
            } => RenewResult::Renewed {
                ca: Some(ca),
                serial,
                not_after,
            },
            JobResult::Failed { class, message, .. } => RenewResult::Failed {
                class: class.outcome(),
                error: message,
            },
            JobResult::Busy => RenewResult::Unfinished {
                reason: "another renewd process is renewing it".into(),
            },
            JobResult::Interrupted => RenewResult::Unfinished {
                reason: "interrupted; the order resumes at the next run".into(),
            },
            JobResult::NotConfigured => RenewResult::Unknown,
            other => RenewResult::Unfinished {
                reason: format!("{other:?}"),
            },
        }
    }

    /// The result of a renewal the daemon ran, read from the store: what changed since
    /// `before` (the state when the request came in).
    pub fn from_store(before: Option<&CertState>, after: Option<&CertState>) -> RenewResult {
        let success = |s: Option<&CertState>| s.and_then(|s| s.last_success);
        let error_at = |s: Option<&CertState>| s.and_then(|s| s.last_error.as_ref().map(|e| e.at));
        let Some(after) = after else {
            return RenewResult::Unfinished {
                reason: "the store has no state for it".into(),
            };
        };
        if success(Some(after)) > success(before)
            && let Some(i) = &after.installed
        {
            return RenewResult::Renewed {
                ca: i.issuer_ca.clone(),
                serial: i.serial.clone(),
                not_after: i.not_after,
            };
        }
        if error_at(Some(after)) > error_at(before)
            && let Some(e) = &after.last_error
        {
            return RenewResult::Failed {
                class: e.class,
                error: e.message.clone(),
            };
        }
        RenewResult::Unfinished {
            reason: "the renewal ended without a result (interrupted, or another renewd \
                     process holds the certificate)"
                .into(),
        }
    }
}

/// The line `renewd renew` prints on stdout: `www: renewed by le (serial 3f…, valid until …)`.
impl fmt::Display for CertOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let time = |t: &DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
        write!(f, "{}: ", self.cert)?;
        match &self.result {
            RenewResult::Renewed {
                ca,
                serial,
                not_after,
            } => {
                f.write_str("renewed")?;
                if let Some(ca) = ca {
                    write!(f, " by {ca}")?;
                }
                write!(f, " (serial {serial}, valid until {})", time(not_after))
            }
            RenewResult::Failed { class, .. } => write!(f, "failed ({class})"),
            RenewResult::NotDue { next_renewal } => {
                write!(f, "not due (next renewal {})", time(next_renewal))
            }
            RenewResult::Unfinished { reason } => write!(f, "not renewed: {reason}"),
            RenewResult::Unknown => f.write_str("not configured in the running daemon"),
        }
    }
}

/// The daemon's last line on the control socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Finish {
    /// Every certificate was answered.
    Done,
    /// The request could not be served (the daemon is stopping, a malformed request).
    Error(String),
}

/// The final line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalLine {
    /// How the request ended.
    pub finish: Finish,
}
