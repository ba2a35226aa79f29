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
    /// Another renewd process installed a new certificate meanwhile: nothing to do.
    AlreadyRenewed {
        /// The serial installed now, lower-case hex.
        serial: String,
    },
    /// No CA it may use can take an order yet (another job's half-open trial, an open
    /// circuit, a rate limit); not a failure, the daemon goes on at `until`.
    Deferred {
        /// When it may go on.
        until: DateTime<Utc>,
        /// Why, in one line.
        reason: String,
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
            RenewResult::Failed { .. }
                | RenewResult::Deferred { .. }
                | RenewResult::Unfinished { .. }
                | RenewResult::Unknown
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
            JobResult::AlreadyRenewed { serial } => RenewResult::AlreadyRenewed { serial },
            JobResult::Deferred { until, reason } => RenewResult::Deferred { until, reason },
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
            RenewResult::AlreadyRenewed { serial } => {
                write!(
                    f,
                    "already renewed by another renewd process (serial {serial})"
                )
            }
            RenewResult::Deferred { until, reason } => {
                write!(f, "not renewed yet: {reason}; next try {}", time(until))
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

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;
    use renewd_store::{InstalledCert, LastError};

    use super::*;

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
    }

    fn state(success: Option<i64>, error: Option<i64>) -> CertState {
        let mut s = CertState::new(CertName::new("www").unwrap());
        s.last_success = success.map(t);
        s.installed = success.map(|_| InstalledCert {
            serial: "3f".into(),
            not_before: t(0),
            not_after: t(0) + TimeDelta::days(90),
            issuer_ca: Some(CaName::new("le").unwrap()),
            account_url: None,
            ari_cert_id: None,
        });
        s.last_error = error.map(|at| LastError {
            class: OutcomeClass::CaUnavailable,
            message: "le: finalize: 502".into(),
            at: t(at),
        });
        s
    }

    #[test]
    fn the_store_tells_what_a_renewal_the_daemon_ran_did() {
        let before = state(Some(10), Some(5));
        let renewed = RenewResult::from_store(Some(&before), Some(&state(Some(20), Some(5))));
        assert!(matches!(renewed, RenewResult::Renewed { ref serial, .. } if serial == "3f"));
        let failed = RenewResult::from_store(Some(&before), Some(&state(Some(10), Some(30))));
        assert_eq!(
            failed,
            RenewResult::Failed {
                class: OutcomeClass::CaUnavailable,
                error: "le: finalize: 502".into()
            }
        );
        let nothing = RenewResult::from_store(Some(&before), Some(&before));
        assert!(matches!(nothing, RenewResult::Unfinished { .. }));
        // Never seen before: any success counts.
        let first = RenewResult::from_store(None, Some(&state(Some(1), None)));
        assert!(matches!(first, RenewResult::Renewed { .. }));
        assert!(!first.is_failure() && failed.is_failure() && nothing.is_failure());
    }

    #[test]
    fn lines_and_wire_form() {
        let www = CertName::new("www").unwrap();
        let renewed = CertOutcome {
            cert: www.clone(),
            result: RenewResult::Renewed {
                ca: Some(CaName::new("le").unwrap()),
                serial: "3f".into(),
                not_after: t(0),
            },
        };
        assert_eq!(
            renewed.to_string(),
            "www: renewed by le (serial 3f, valid until 2023-11-14T22:13:20Z)"
        );
        assert_eq!(
            serde_json::to_string(&renewed).unwrap(),
            r#"{"cert":"www","result":"renewed","ca":"le","serial":"3f","not_after":"2023-11-14T22:13:20Z"}"#
        );
        let not_due = CertOutcome {
            cert: www.clone(),
            result: RenewResult::NotDue { next_renewal: t(0) },
        };
        assert_eq!(
            not_due.to_string(),
            "www: not due (next renewal 2023-11-14T22:13:20Z)"
        );
        let failed: CertOutcome = serde_json::from_str(
            r#"{"cert":"www","result":"failed","class":"rate_limited","error":"429"}"#,
        )
        .unwrap();
        assert_eq!(failed.to_string(), "www: failed (rate_limited)");
        assert_eq!(
            serde_json::to_string(&FinalLine {
                finish: Finish::Done
            })
            .unwrap(),
            r#"{"finish":"done"}"#
        );
        assert_eq!(
            serde_json::to_string(&FinalLine {
                finish: Finish::Error("stopping".into())
            })
            .unwrap(),
            r#"{"finish":{"error":"stopping"}}"#
        );
        // A result line is never mistaken for the final line.
        assert!(
            serde_json::from_str::<FinalLine>(&serde_json::to_string(&not_due).unwrap()).is_err()
        );
    }
}
