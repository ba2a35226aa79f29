//! Steps of an ACME exchange and the one classification of their failures.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A label that does not name any variant (reading a stored or typed-in value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {label:?}; expected one of: {expected}")]
pub struct UnknownLabel {
    /// What was being parsed.
    pub what: &'static str,
    /// The label as given.
    pub label: String,
    /// The accepted labels.
    pub expected: &'static str,
}

macro_rules! labelled_enum {
    ($(#[$doc:meta])* $name:ident, $what:literal { $($(#[$vdoc:meta])* $var:ident => $label:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vdoc])* $var,)+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$var,)+];

            /// The stable label used in JSON, the ledger and metrics.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$var => $label,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownLabel;
            fn from_str(s: &str) -> Result<Self, UnknownLabel> {
                match s {
                    $($label => Ok($name::$var),)+
                    _ => Err(UnknownLabel {
                        what: $what,
                        label: s.to_string(),
                        expected: concat!($($label, " "),+),
                    }),
                }
            }
        }
    };
}

labelled_enum!(
    /// The ACME request (or local action) an outcome belongs to.
    Step, "step" {
        /// GET the directory.
        Directory => "directory",
        /// HEAD newNonce.
        Nonce => "nonce",
        /// newAccount, account lookup, update or key rollover.
        Account => "account",
        /// newOrder.
        NewOrder => "new_order",
        /// POST-as-GET an authorization (also its polling).
        Authorization => "authorization",
        /// POST to a challenge to start validation.
        Challenge => "challenge",
        /// POST the CSR to the order's finalize URL.
        Finalize => "finalize",
        /// POST-as-GET the order (polling and finalize recovery).
        PollOrder => "poll_order",
        /// POST-as-GET the certificate chain.
        Download => "download",
        /// GET the ARI renewalInfo resource.
        RenewalInfo => "renewal_info",
        /// The health probe before an order (directory + newNonce).
        Probe => "probe",
        /// revokeCert.
        Revoke => "revoke",
        /// Verifying and installing the issued certificate (local).
        Install => "install",
        /// Running a deploy hook (local).
        DeployHook => "deploy_hook",
        /// Presenting or removing a challenge response (local: responder, webroot, DNS hook).
        ChallengeSetup => "challenge_setup",
    }
);

impl Step {
    /// The ACME requests of issuance and its health checks: the steps `renewd ledger` shows
    /// by default, exactly the list of `CONTRACT.md`. The others are renewd's own steps
    /// (install, deploy hook, challenge setup) and revoke.
    pub const ISSUANCE_REQUESTS: [Step; 11] = [
        Step::Directory,
        Step::Nonce,
        Step::Account,
        Step::NewOrder,
        Step::Authorization,
        Step::Challenge,
        Step::Finalize,
        Step::PollOrder,
        Step::Download,
        Step::RenewalInfo,
        Step::Probe,
    ];

    /// Whether this step is one of [`Step::ISSUANCE_REQUESTS`].
    pub fn is_issuance_request(self) -> bool {
        Step::ISSUANCE_REQUESTS.contains(&self)
    }
}

labelled_enum!(
    /// The class of a request's outcome as the ledger stores it: [`FailureClass`]'s label,
    /// or `ok`.
    OutcomeClass, "class" {
        /// The request succeeded.
        Ok => "ok",
        /// See [`FailureClass::CaUnavailable`].
        CaUnavailable => "ca_unavailable",
        /// See [`FailureClass::RateLimited`].
        RateLimited => "rate_limited",
        /// See [`FailureClass::BadNonce`].
        BadNonce => "bad_nonce",
        /// See [`FailureClass::Rejected`].
        Rejected => "rejected",
        /// See [`FailureClass::Local`].
        Local => "local",
    }
);

/// What kind of failure a failed step was. Computed once, next to the protocol
/// (`renewd-acme`), and read by everything downstream: ledger, circuit breaker, scheduler,
/// metrics. Nothing downstream re-parses errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureClass {
    /// The CA did not answer usefully: any 5xx (HTML gateway pages included), a timeout,
    /// a refused or reset connection, a TLS failure, an unparseable success. Counts against
    /// the CA's health. Retrying the same order after a back-off can help; so can failover.
    CaUnavailable,
    /// 429 or a `rateLimited` problem. Nothing may be sent to that CA for that account
    /// before `retry_after` (when the CA said). Failover can help if the deadline needs it.
    RateLimited {
        /// When the CA allows the next request, if it said.
        retry_after: Option<DateTime<Utc>>,
    },
    /// A `badNonce` problem that persisted through the client's own retries. Transient.
    BadNonce,
    /// The CA refused the request with a problem document. Not a health failure.
    /// Retrying the same request at the same CA cannot help.
    Rejected {
        /// Whether the refusal is specific to this CA (`caa`, `invalidProfile`,
        /// `externalAccountRequired`, `unsupportedIdentifier`, `accountDoesNotExist`, an
        /// `unauthorized` account at newOrder or an account request, ...), so that another CA
        /// may accept. Validation failures (`unauthorized` for the names, `connection`, `dns`,
        /// `incorrectResponse`, `rejectedIdentifier`, `badCSR`) are not: another CA would
        /// fail the same way.
        ca_specific: bool,
    },
    /// Our side failed: disk, permissions, a hook, a challenge responder that could not
    /// bind. Never blamed on the CA.
    Local,
}

impl FailureClass {
    /// The label stored in the ledger.
    pub fn outcome(self) -> OutcomeClass {
        match self {
            FailureClass::CaUnavailable => OutcomeClass::CaUnavailable,
            FailureClass::RateLimited { .. } => OutcomeClass::RateLimited,
            FailureClass::BadNonce => OutcomeClass::BadNonce,
            FailureClass::Rejected { .. } => OutcomeClass::Rejected,
            FailureClass::Local => OutcomeClass::Local,
        }
    }

    /// Whether this failure counts against the CA's health (the circuit breaker).
    pub fn counts_against_ca(self) -> bool {
        matches!(self, FailureClass::CaUnavailable)
    }

    /// Whether trying another CA may succeed where this one failed.
    pub fn allows_failover(self) -> bool {
        match self {
            FailureClass::CaUnavailable | FailureClass::RateLimited { .. } => true,
            FailureClass::Rejected { ca_specific } => ca_specific,
            FailureClass::BadNonce | FailureClass::Local => false,
        }
    }

    /// Whether retrying the same request at the same CA later can help.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            FailureClass::CaUnavailable
                | FailureClass::RateLimited { .. }
                | FailureClass::BadNonce
                | FailureClass::Local
        )
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.outcome().as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip() {
        for s in Step::ALL {
            assert_eq!(s.as_str().parse::<Step>().unwrap(), *s);
            assert_eq!(
                serde_json::to_string(s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        for c in OutcomeClass::ALL {
            assert_eq!(c.as_str().parse::<OutcomeClass>().unwrap(), *c);
        }
        let err = "nope".parse::<Step>().unwrap_err();
        assert!(err.to_string().contains("poll_order"));
    }

    #[test]
    fn contract_labels() {
        // The labels CONTRACT.md promises to the outside acceptance suite, in its order:
        // the issuance requests, no more and no fewer.
        let labels: Vec<&str> = Step::ISSUANCE_REQUESTS.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            labels,
            [
                "directory",
                "nonce",
                "account",
                "new_order",
                "authorization",
                "challenge",
                "finalize",
                "poll_order",
                "download",
                "renewal_info",
                "probe",
            ]
        );
        for l in [
            "ok",
            "ca_unavailable",
            "rate_limited",
            "bad_nonce",
            "rejected",
            "local",
        ] {
            assert!(l.parse::<OutcomeClass>().is_ok(), "{l}");
        }
    }

    #[test]
    fn class_effects() {
        assert!(FailureClass::CaUnavailable.counts_against_ca());
        assert!(!FailureClass::Local.counts_against_ca());
        assert!(FailureClass::Rejected { ca_specific: true }.allows_failover());
        assert!(!FailureClass::Rejected { ca_specific: false }.allows_failover());
        assert!(!FailureClass::Rejected { ca_specific: true }.is_transient());
        assert_eq!(
            FailureClass::RateLimited { retry_after: None }.to_string(),
            "rate_limited"
        );
    }
}
