//! The fault plan as data: which endpoint misbehaves, how, how often.
//!
//! A [`FaultPlan`] is a seed and an ordered list of [`Rule`]s. Each rule names an endpoint
//! (or `any`) and a [`Fault`]: an [`Action`], whether it happens before or after the request
//! is really processed ([`When`]), and how often it fires (`times`, `probability`). The same
//! shape is read from TOML (the binary's `--fault-plan` file, the management endpoint) and
//! built in code by tests:
//!
//! ```toml
//! seed = 7
//!
//! [[rule]]
//! endpoint = "finalize"
//! action = "status"        # status | delay | hang | drop | rate_limited | processing | bad_nonce | invalid_order | wrong_certificate
//! status = 504
//! body = "html"            # html | problem | empty | garbage
//! when = "after"           # before (default) | after: the request is processed, then the error
//! times = 1                # fires for the next N matching requests (default: every one)
//! ```
//!
//! ```
//! use renewd_testca::{Endpoint, Fault, FaultPlan};
//! let plan = FaultPlan::new()
//!     .rule(Endpoint::Finalize, Fault::status(504).after_processing().html().times(1));
//! assert_eq!(plan.rules.len(), 1);
//! ```

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{RuleError, TestCaError};

/// An ACME endpoint of the test CA, as fault rules and request counts name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Endpoint {
    /// GET the directory.
    Directory,
    /// HEAD or GET newNonce.
    Nonce,
    /// POST newAccount.
    NewAccount,
    /// POST to an account URL (lookup, contact update, deactivation) or its orders list.
    Account,
    /// POST newOrder.
    NewOrder,
    /// POST-as-GET an order.
    Order,
    /// POST to an authorization.
    Authorization,
    /// POST to a challenge (respond or read).
    Challenge,
    /// POST an order's finalize URL.
    Finalize,
    /// POST-as-GET a certificate chain.
    Certificate,
    /// GET `renewalInfo/{certID}` (ARI).
    RenewalInfo,
    /// POST revokeCert.
    Revoke,
    /// POST keyChange.
    KeyChange,
}

impl Endpoint {
    /// Every endpoint.
    pub const ALL: &'static [Endpoint] = &[
        Endpoint::Directory,
        Endpoint::Nonce,
        Endpoint::NewAccount,
        Endpoint::Account,
        Endpoint::NewOrder,
        Endpoint::Order,
        Endpoint::Authorization,
        Endpoint::Challenge,
        Endpoint::Finalize,
        Endpoint::Certificate,
        Endpoint::RenewalInfo,
        Endpoint::Revoke,
        Endpoint::KeyChange,
    ];

    /// The spelling used in plans and counts.
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Directory => "directory",
            Endpoint::Nonce => "nonce",
            Endpoint::NewAccount => "new_account",
            Endpoint::Account => "account",
            Endpoint::NewOrder => "new_order",
            Endpoint::Order => "order",
            Endpoint::Authorization => "authorization",
            Endpoint::Challenge => "challenge",
            Endpoint::Finalize => "finalize",
            Endpoint::Certificate => "certificate",
            Endpoint::RenewalInfo => "renewal_info",
            Endpoint::Revoke => "revoke",
            Endpoint::KeyChange => "key_change",
        }
    }

    /// Whether requests to this endpoint are JWS-signed POSTs (and so carry a nonce).
    pub fn is_signed(self) -> bool {
        !matches!(
            self,
            Endpoint::Directory | Endpoint::Nonce | Endpoint::RenewalInfo
        )
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which endpoints a rule applies to: one, or `any`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum EndpointMatch {
    /// Every endpoint (actions that only make sense on some endpoints skip the others).
    Any,
    /// Just this one.
    Only(Endpoint),
}

impl EndpointMatch {
    /// Whether a request to `endpoint` is covered.
    pub fn matches(self, endpoint: Endpoint) -> bool {
        match self {
            EndpointMatch::Any => true,
            EndpointMatch::Only(e) => e == endpoint,
        }
    }
}

impl From<Endpoint> for EndpointMatch {
    fn from(e: Endpoint) -> Self {
        EndpointMatch::Only(e)
    }
}

impl TryFrom<String> for EndpointMatch {
    type Error = RuleError;
    fn try_from(s: String) -> Result<Self, RuleError> {
        if s == "any" {
            return Ok(EndpointMatch::Any);
        }
        Endpoint::ALL
            .iter()
            .find(|e| e.as_str() == s)
            .map(|e| EndpointMatch::Only(*e))
            .ok_or(RuleError::UnknownEndpoint(s))
    }
}

impl From<EndpointMatch> for String {
    fn from(m: EndpointMatch) -> String {
        match m {
            EndpointMatch::Any => "any".to_owned(),
            EndpointMatch::Only(e) => e.as_str().to_owned(),
        }
    }
}

/// Whether a fault replaces the request's processing or follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum When {
    /// The request is not processed; the client gets the fault instead.
    #[default]
    Before,
    /// The request is processed in full (an order really is finalized, a certificate really
    /// issued) and the client gets the fault instead of the answer: the "504 but issued" case.
    After,
}

/// The body of an injected error status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultBody {
    /// An nginx-style gateway page (`<html><head><title>504 Gateway Time-out</title>…`),
    /// `text/html`, no `Replay-Nonce`: what a load balancer in front of a CA sends.
    Html,
    /// An ACME problem document from the CA itself (`application/problem+json`, with a
    /// `Replay-Nonce`). `problem_type` defaults by status (`serverInternal` for 5xx,
    /// `rateLimited` for 429, `malformed` otherwise).
    Problem {
        /// The full `type` URN, or a short name (`serverInternal`) completed with the ACME prefix.
        problem_type: Option<String>,
        /// The `detail` text.
        detail: Option<String>,
    },
    /// No body at all.
    Empty,
    /// Random bytes (from the plan's seed) labelled `application/json`.
    Garbage,
}

/// What a fault does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Answer `status` with `body` (and `Retry-After` when given).
    Status {
        /// The HTTP status, 200–599.
        status: u16,
        /// What the body holds.
        body: FaultBody,
        /// An optional `Retry-After` header.
        retry_after: Option<Duration>,
    },
    /// Only the fault's `delay`, then the normal answer.
    Delay,
    /// Never answer: the connection is held open until the client gives up (or the server
    /// stops, or [`HANG_LIMIT`] passes).
    Hang,
    /// Close the connection without any response.
    Drop,
    /// `429 Too Many Requests` with a `rateLimited` problem and `Retry-After`.
    RateLimited {
        /// The `Retry-After` delay.
        retry_after: Duration,
    },
    /// Finalize only: the order stays `processing` for `duration` before the certificate is
    /// issued; order responses meanwhile carry `Retry-After`.
    Processing {
        /// How long the order stays `processing`.
        duration: Duration,
        /// `Retry-After` on the `processing` order (default: the CA's poll interval).
        retry_after: Option<Duration>,
    },
    /// Signed endpoints only: reject the request's nonce with `badNonce` (and a fresh nonce).
    BadNonce,
    /// Order only (before processing): the order becomes `invalid` with this `error`, as
    /// when a CA gives up on issuing; the answer (and every later one) shows it.
    InvalidOrder {
        /// The error's `type`: a full URN or a short name (`serverInternal`) completed with
        /// the ACME prefix.
        problem_type: String,
        /// The error's `detail`.
        detail: String,
    },
    /// Certificate only (before processing): the download serves a certificate that does not
    /// fit the order, as a CA that mixes up its orders would — freshly signed by the real
    /// intermediate with the real chain, so only a check against the order and the CSR finds
    /// it. The stored certificate is untouched: once the rule is used up, the same URL
    /// serves the right one again.
    WrongCertificate {
        /// What is wrong with it.
        mismatch: Mismatch,
    },
}

/// What a [`Action::WrongCertificate`] gets wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Mismatch {
    /// The leaf certifies the CSR's key but names only `wrong-name.invalid`, none of the
    /// order's identifiers.
    Names,
    /// The leaf names the order's identifiers but certifies a key the CA generated, not the
    /// CSR's: the client's private key does not match it.
    Key,
}

impl Mismatch {
    /// The spelling used in plans.
    pub fn as_str(self) -> &'static str {
        match self {
            Mismatch::Names => "names",
            Mismatch::Key => "key",
        }
    }
}

/// How long a [`Action::Hang`] holds a connection at most.
pub const HANG_LIMIT: Duration = Duration::from_secs(15 * 60);

/// One fault: what happens, when, and how often.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// What the fault does.
    pub action: Action,
    /// Before or after the request is processed.
    pub when: When,
    /// Fire for this many matching requests, then never again (`None`: no limit).
    pub times: Option<u32>,
    /// Fire for each matching request with this probability (from the plan's seed).
    pub probability: Option<f64>,
    /// Wait this long before answering (before processing for `before`, after it for `after`).
    pub delay: Option<Duration>,
}

impl Fault {
    fn with_action(action: Action) -> Self {
        Fault {
            action,
            when: When::Before,
            times: None,
            probability: None,
            delay: None,
        }
    }

    /// Answer with `status`; the body defaults to an HTML gateway page for 5xx and a problem
    /// document otherwise.
    pub fn status(status: u16) -> Self {
        let body = if status >= 500 {
            FaultBody::Html
        } else {
            FaultBody::Problem {
                problem_type: None,
                detail: None,
            }
        };
        Fault::with_action(Action::Status {
            status,
            body,
            retry_after: None,
        })
    }

    /// Answer normally after waiting `delay`.
    pub fn delay(delay: Duration) -> Self {
        Fault {
            delay: Some(delay),
            ..Fault::with_action(Action::Delay)
        }
    }

    /// Never answer.
    pub fn hang() -> Self {
        Fault::with_action(Action::Hang)
    }

    /// Close the connection without a response.
    pub fn drop_connection() -> Self {
        Fault::with_action(Action::Drop)
    }

    /// `429` with a `rateLimited` problem and `Retry-After`.
    pub fn rate_limited(retry_after: Duration) -> Self {
        Fault::with_action(Action::RateLimited { retry_after })
    }

    /// Keep the finalized order `processing` for `duration`.
    pub fn processing_for(duration: Duration) -> Self {
        Fault::with_action(Action::Processing {
            duration,
            retry_after: None,
        })
    }

    /// Reject the request's nonce.
    pub fn bad_nonce() -> Self {
        Fault::with_action(Action::BadNonce)
    }

    /// Make the order `invalid` with an `error` of `problem_type` (full URN or short name).
    pub fn invalid_order(problem_type: &str, detail: &str) -> Self {
        Fault::with_action(Action::InvalidOrder {
            problem_type: problem_type.to_owned(),
            detail: detail.to_owned(),
        })
    }

    /// Serve a certificate that does not fit the order (certificate endpoint only).
    pub fn wrong_certificate(mismatch: Mismatch) -> Self {
        Fault::with_action(Action::WrongCertificate { mismatch })
    }

    /// Process the request first, then answer with the fault.
    pub fn after_processing(mut self) -> Self {
        self.when = When::After;
        self
    }

    /// Answer with the fault instead of processing (the default).
    pub fn before_processing(mut self) -> Self {
        self.when = When::Before;
        self
    }

    /// Fire for the next `n` matching requests only.
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }

    /// Fire with probability `p` for each matching request.
    pub fn probability(mut self, p: f64) -> Self {
        self.probability = Some(p);
        self
    }

    /// Wait `delay` before answering.
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// Status faults: an HTML gateway page. Ignored for other actions.
    pub fn html(self) -> Self {
        self.body(FaultBody::Html)
    }

    /// Status faults: no body. Ignored for other actions.
    pub fn empty(self) -> Self {
        self.body(FaultBody::Empty)
    }

    /// Status faults: random bytes. Ignored for other actions.
    pub fn garbage(self) -> Self {
        self.body(FaultBody::Garbage)
    }

    /// Status faults: a problem document of `problem_type` (full URN or short name) with
    /// `detail`. Ignored for other actions.
    pub fn problem(self, problem_type: &str, detail: &str) -> Self {
        self.body(FaultBody::Problem {
            problem_type: Some(problem_type.to_owned()),
            detail: Some(detail.to_owned()),
        })
    }

    fn body(mut self, new_body: FaultBody) -> Self {
        if let Action::Status { body, .. } = &mut self.action {
            *body = new_body;
        }
        self
    }

    /// `Retry-After` for status, rate-limit and processing faults. Ignored for others.
    pub fn retry_after(mut self, delay: Duration) -> Self {
        match &mut self.action {
            Action::Status { retry_after, .. } | Action::Processing { retry_after, .. } => {
                *retry_after = Some(delay)
            }
            Action::RateLimited { retry_after } => *retry_after = delay,
            Action::Delay
            | Action::Hang
            | Action::Drop
            | Action::BadNonce
            | Action::InvalidOrder { .. }
            | Action::WrongCertificate { .. } => {}
        }
        self
    }
}

/// One rule of a plan: an endpoint and a fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    try_from = "crate::fault_toml::RawRule",
    into = "crate::fault_toml::RawRule"
)]
pub struct Rule {
    /// Which endpoints the rule covers.
    pub endpoint: EndpointMatch,
    /// What happens to them.
    pub fault: Fault,
}

/// The whole fault plan: rules tried in order, the first that fires wins.
///
/// Each rule keeps its own remaining `times`; setting a new plan resets them and reseeds
/// the random source with `seed`, so a test run is reproducible.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultPlan {
    /// Seed of the random source behind `probability` and garbage bodies.
    #[serde(default)]
    pub seed: u64,
    /// The rules, in order.
    #[serde(default, rename = "rule", alias = "rules")]
    pub rules: Vec<Rule>,
}

impl FaultPlan {
    /// An empty plan: no faults.
    pub fn new() -> Self {
        FaultPlan::default()
    }

    /// Set the seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Append a rule.
    pub fn rule(mut self, endpoint: impl Into<EndpointMatch>, fault: Fault) -> Self {
        self.rules.push(Rule {
            endpoint: endpoint.into(),
            fault,
        });
        self
    }

    /// Parse a plan from TOML (the `--fault-plan` file format).
    pub fn from_toml_str(text: &str) -> Result<Self, TestCaError> {
        toml::from_str(text).map_err(|e| TestCaError::FaultPlanToml(Box::new(e)))
    }

    /// Parse a plan from JSON (same shape as the TOML).
    pub fn from_json_str(text: &str) -> Result<Self, TestCaError> {
        serde_json::from_str(text).map_err(TestCaError::FaultPlanJson)
    }

    /// Check every rule (plans built in code skip the checks parsing does).
    pub fn validate(&self) -> Result<(), TestCaError> {
        for (index, rule) in self.rules.iter().enumerate() {
            crate::fault_toml::check_rule(rule)
                .map_err(|source| TestCaError::InvalidFaultRule { index, source })?;
        }
        Ok(())
    }
}
