//! The crate's one error type and its classification into [`FailureClass`].

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use renewd_core::{ChallengeType, FailureClass, Step};

use crate::http::TransportErrorKind;
use crate::types::Problem;

/// An error from a caller-supplied component (challenge solver, pending-order sink).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong talking to an ACME CA. Each variant keeps the step and the
/// URL; server answers keep status, problem document, `Retry-After` and a body snippet.
/// [`Error::class`] is the one classification everything downstream reads.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The CA answered with an error status. Retrying helps for 5xx (after a back-off), 429
    /// (after `retry_after`) and `badNonce`; not for other 4xx problems. See
    /// [`Error::class`].
    #[error("{step}: {url} answered HTTP {status}: {}", describe(problem.as_deref(), body_snippet))]
    Status {
        /// The request.
        step: Step,
        /// The request URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The problem document, when the body was one.
        problem: Option<Box<Problem>>,
        /// `Retry-After`, as an absolute time.
        retry_after: Option<DateTime<Utc>>,
        /// The start of the body (HTML gateway pages included).
        body_snippet: String,
    },
    /// No answer: timeout, refused or reset connection, TLS failure. Retrying after a
    /// back-off can help.
    #[error("{step}: {url}: {kind}: {message}")]
    Transport {
        /// The request.
        step: Step,
        /// The request URL.
        url: String,
        /// What failed.
        kind: TransportErrorKind,
        /// The underlying error, as text.
        message: String,
    },
    /// The CA answered success with a body or headers this client cannot use (not JSON,
    /// missing `Location`, no certificate in the chain). Retrying after a back-off can help.
    #[error(
        "{step}: {url} answered HTTP {status} that cannot be used: {reason} (body: {body_snippet:?})"
    )]
    InvalidResponse {
        /// The request.
        step: Step,
        /// The request URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// What was wrong.
        reason: String,
        /// The start of the body.
        body_snippet: String,
    },
    /// The order became `invalid`. Retrying this order cannot help; a new order might.
    #[error("{step}: order {url} is invalid: {}", describe(problem.as_deref(), ""))]
    OrderInvalid {
        /// The request that saw it.
        step: Step,
        /// The order URL.
        url: String,
        /// The order's `error`.
        problem: Option<Box<Problem>>,
    },
    /// An authorization failed validation (or expired, was deactivated or revoked).
    /// Retrying cannot help until the cause (DNS, firewall, responder) is fixed.
    #[error("authorization {url} for {identifier} is {status}: {}", describe(problem.as_deref(), ""))]
    AuthorizationFailed {
        /// The authorization URL.
        url: String,
        /// The identifier.
        identifier: String,
        /// The authorization's status.
        status: String,
        /// The failed challenge's `error`.
        problem: Option<Box<Problem>>,
    },
    /// The CA does not offer the wanted challenge type for an identifier. Retrying cannot
    /// help; another CA or challenge type may.
    #[error(
        "authorization {url} for {identifier} offers no {wanted} challenge (offered: {offered:?})"
    )]
    ChallengeNotOffered {
        /// The authorization URL.
        url: String,
        /// The identifier.
        identifier: String,
        /// The wanted type.
        wanted: ChallengeType,
        /// The types offered.
        offered: Vec<String>,
    },
    /// The CA does not support something the request needs (ARI, a profile, key change).
    /// Retrying cannot help; another CA may.
    #[error("{step}: the CA at {url} does not support {what}")]
    Unsupported {
        /// The request that needed it.
        step: Step,
        /// The directory URL.
        url: String,
        /// What is missing.
        what: String,
    },
    /// Waiting for the CA (polling, finalize recovery) ran past the deadline. The order may
    /// still complete: resume it later.
    #[error("{step}: {url} did not complete within {waited:?}")]
    Deadline {
        /// The step waited on.
        step: Step,
        /// The resource polled.
        url: String,
        /// How long was waited.
        waited: Duration,
    },
    /// Finalize was sent as often as one attempt may ([`crate::PollPolicy::max_finalizes`])
    /// and the order did not move on (the CA kept failing, or kept answering with an order
    /// still `ready`). The order may still complete: resume it after a back-off.
    #[error("finalize: {url}: sent {sent} times without the order moving on")]
    FinalizeUnanswered {
        /// The order URL.
        url: String,
        /// How many finalize requests were sent.
        sent: u32,
    },
    /// A key, CSR or certificate could not be made or read locally. Retrying cannot help.
    #[error("{step}: {what}: {detail}")]
    Key {
        /// The step.
        step: Step,
        /// What was being done.
        what: &'static str,
        /// Why it failed.
        detail: String,
    },
    /// A local file could not be read or written. Retrying may help once the disk or
    /// permissions are fixed.
    #[error("{step}: {}: {source}", path.display())]
    File {
        /// The step.
        step: Step,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A request this client was asked to make is not valid (no identifiers, a bad URL or
    /// key). Retrying cannot help.
    #[error("{step}: invalid request: {detail}")]
    InvalidRequest {
        /// The step.
        step: Step,
        /// What is wrong.
        detail: String,
    },
    /// A caller-supplied component (challenge solver, pending-order sink) failed. Whether
    /// retrying helps depends on it.
    #[error("{step}: {what} failed: {source}")]
    Caller {
        /// The step.
        step: Step,
        /// Which component.
        what: &'static str,
        /// Its error.
        #[source]
        source: BoxError,
    },
}

fn describe(problem: Option<&Problem>, snippet: &str) -> String {
    match problem {
        Some(p) => p.to_string(),
        None if snippet.is_empty() => "(empty body)".to_string(),
        None => snippet.to_string(),
    }
}

/// Whether a refusal with ACME error `name` is specific to the CA (another CA may accept
/// the same request). Validation failures and malformed requests are not.
pub(crate) fn is_ca_specific(name: &str) -> bool {
    matches!(
        name,
        "caa"
            | "invalidProfile"
            | "externalAccountRequired"
            | "unsupportedIdentifier"
            | "unsupportedContact"
            | "userActionRequired"
            | "alreadyReplaced"
            | "accountDoesNotExist"
            | "badSignatureAlgorithm"
    )
}

/// The class of a refusal carried by a problem document (a 4xx, or an invalid order's or
/// authorization's `error`).
fn class_of_problem(problem: Option<&Problem>, retry_after: Option<DateTime<Utc>>) -> FailureClass {
    match problem.and_then(Problem::short_type) {
        Some("rateLimited") => FailureClass::RateLimited { retry_after },
        Some("badNonce") => FailureClass::BadNonce,
        Some(name) => FailureClass::Rejected {
            ca_specific: is_ca_specific(name),
        },
        None => FailureClass::Rejected { ca_specific: false },
    }
}

/// The requests about an order that exists (and is saved by the caller): its
/// authorizations and challenges, finalize, the order itself and its certificate.
fn acts_on_a_saved_order(step: Step) -> bool {
    matches!(
        step,
        Step::Authorization | Step::Challenge | Step::Finalize | Step::PollOrder | Step::Download
    )
}

/// The class of an invalid order's `error`. The order itself is dead whatever the error
/// says ([`Error::order_is_dead`]); the class says what the failure tells about the CA: a
/// `serverInternal` (or a `badNonce`, which makes no sense as an order's fate) is the CA
/// failing, so it counts against its health and allows failover like a 5xx; a
/// `rateLimited` is a rate limit (without a `Retry-After`); anything else is a refusal.
fn class_of_order_error(problem: Option<&Problem>) -> FailureClass {
    match problem.and_then(Problem::short_type) {
        Some("serverInternal" | "badNonce") => FailureClass::CaUnavailable,
        _ => class_of_problem(problem, None),
    }
}

impl Error {
    /// Whether the order the failed request belonged to can never complete, on the CA's
    /// own evidence (an ACME answer, never a gateway's page): the order is `invalid`; an
    /// authorization of it failed (which makes it invalid, RFC 8555 §7.1.6) or offers no
    /// challenge of the wanted type; the CA answered the order's own URL with a problem
    /// document saying the order (404, `malformed`) or the account (`accountDoesNotExist`,
    /// `unauthorized`) does not exist for us; or it refused the order's CSR (`badCSR`: the
    /// CSR is fixed with the order). The caller drops its saved order then, and only then:
    /// every other failure leaves an order that may still complete.
    pub fn order_is_dead(&self) -> bool {
        match self {
            Error::OrderInvalid { .. }
            | Error::AuthorizationFailed { .. }
            | Error::ChallengeNotOffered { .. } => true,
            Error::Status {
                step: Step::PollOrder,
                status,
                problem: Some(problem),
                ..
            } => {
                problem.short_type().is_some()
                    && (*status == 404
                        || ["malformed", "accountDoesNotExist", "unauthorized"]
                            .iter()
                            .any(|name| problem.is(name)))
            }
            Error::Status {
                step: Step::Finalize,
                ..
            } => self.is_problem("badCSR"),
            _ => false,
        }
    }

    /// Whether the CA says the account behind the request does not exist
    /// (`accountDoesNotExist`, at any request) or may not act (`unauthorized` at newOrder
    /// or an account request: deactivated, or an external account binding refused). A
    /// cached account is then stale: set it up again (find it by its key, or create it).
    pub fn account_unusable(&self) -> bool {
        match self {
            Error::Status { step, .. } => {
                self.is_problem("accountDoesNotExist")
                    || (self.is_problem("unauthorized")
                        && matches!(step, Step::NewOrder | Step::Account))
            }
            _ => false,
        }
    }

    /// The failure class (DESIGN.md's table): 5xx, timeouts, connection and TLS failures and
    /// unusable success answers are `CaUnavailable`; 429 and `rateLimited` are
    /// `RateLimited`; a `badNonce` that persisted is `BadNonce`; other refusals are
    /// `Rejected` (CA-specific or not); local failures are `Local`.
    pub fn class(&self) -> FailureClass {
        match self {
            Error::Status {
                step,
                status,
                problem,
                retry_after,
                ..
            } => {
                let problem = problem.as_deref();
                if *status >= 500 {
                    FailureClass::CaUnavailable
                } else if *status == 429 {
                    FailureClass::RateLimited {
                        retry_after: *retry_after,
                    }
                } else if problem.is_some_and(|p| p.is("unauthorized"))
                    && matches!(step, Step::NewOrder | Step::Account)
                {
                    // Our account may not act at this CA (deactivated, or the CA refused
                    // our EAB binding): about the account at this CA, not about the names.
                    FailureClass::Rejected { ca_specific: true }
                } else if problem.and_then(Problem::short_type).is_some() {
                    class_of_problem(problem, *retry_after)
                } else if *status == 408 || acts_on_a_saved_order(*step) {
                    // Request Timeout without a problem: the CA (or a proxy) gave up. And a
                    // 4xx without a problem document about an order that exists (a
                    // gateway's or firewall's 404/403 page) is no word from the CA on the
                    // order: a passing failure in front of it.
                    FailureClass::CaUnavailable
                } else {
                    // A 4xx without a problem document before any order exists is not an
                    // ACME answer (a proxy, a wrong directory URL): something about this
                    // CA, not about the request.
                    FailureClass::Rejected { ca_specific: true }
                }
            }
            Error::Transport { .. }
            | Error::InvalidResponse { .. }
            | Error::Deadline { .. }
            | Error::FinalizeUnanswered { .. } => FailureClass::CaUnavailable,
            Error::OrderInvalid { problem, .. } => class_of_order_error(problem.as_deref()),
            Error::AuthorizationFailed { problem, .. } => {
                class_of_problem(problem.as_deref(), None)
            }
            Error::ChallengeNotOffered { .. } | Error::Unsupported { .. } => {
                FailureClass::Rejected { ca_specific: true }
            }
            Error::Key { .. }
            | Error::File { .. }
            | Error::InvalidRequest { .. }
            | Error::Caller { .. } => FailureClass::Local,
        }
    }

    /// The step the error belongs to.
    pub fn step(&self) -> Step {
        match self {
            Error::Status { step, .. }
            | Error::Transport { step, .. }
            | Error::InvalidResponse { step, .. }
            | Error::OrderInvalid { step, .. }
            | Error::Unsupported { step, .. }
            | Error::Deadline { step, .. }
            | Error::Key { step, .. }
            | Error::File { step, .. }
            | Error::InvalidRequest { step, .. }
            | Error::Caller { step, .. } => *step,
            Error::AuthorizationFailed { .. } | Error::ChallengeNotOffered { .. } => {
                Step::Authorization
            }
            Error::FinalizeUnanswered { .. } => Step::Finalize,
        }
    }

    /// The URL of the request or resource, when there is one.
    pub fn url(&self) -> Option<&str> {
        match self {
            Error::Status { url, .. }
            | Error::Transport { url, .. }
            | Error::InvalidResponse { url, .. }
            | Error::OrderInvalid { url, .. }
            | Error::AuthorizationFailed { url, .. }
            | Error::ChallengeNotOffered { url, .. }
            | Error::Unsupported { url, .. }
            | Error::Deadline { url, .. }
            | Error::FinalizeUnanswered { url, .. } => Some(url),
            _ => None,
        }
    }

    /// The HTTP status, when a response arrived.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Error::Status { status, .. } | Error::InvalidResponse { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The problem document, when there is one.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            Error::Status { problem, .. }
            | Error::OrderInvalid { problem, .. }
            | Error::AuthorizationFailed { problem, .. } => problem.as_deref(),
            _ => None,
        }
    }

    /// The problem's type (full URN), when there is one.
    pub fn problem_type(&self) -> Option<&str> {
        self.problem().and_then(|p| p.problem_type.as_deref())
    }

    /// Whether the problem is the ACME error `name` (e.g. `"alreadyReplaced"`).
    pub fn is_problem(&self, name: &str) -> bool {
        self.problem().is_some_and(|p| p.is(name))
    }

    /// `Retry-After` of the failed response, as an absolute time.
    pub fn retry_after(&self) -> Option<DateTime<Utc>> {
        match self {
            Error::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The start of the response body, when one arrived.
    pub fn body_snippet(&self) -> Option<&str> {
        match self {
            Error::Status { body_snippet, .. } | Error::InvalidResponse { body_snippet, .. } => {
                Some(body_snippet)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
#[path = "error_tests.rs"]
mod tests;
