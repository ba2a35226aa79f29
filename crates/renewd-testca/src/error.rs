//! The crate's errors: starting the server, parsing plans and requests from tests.

use std::net::SocketAddr;

/// Why the test CA could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestCaError {
    /// A listener could not bind. Retrying helps only if the address frees up.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// Generating a key or certificate failed. Not retryable.
    #[error("certificate generation failed: {0}")]
    Certificate(#[from] rcgen::Error),
    /// The TLS configuration was rejected. Not retryable.
    #[error("TLS configuration failed: {0}")]
    Tls(#[from] rustls::Error),
    /// A fault plan in TOML did not parse (the message carries line and column). Fix the plan.
    #[error("fault plan: {0}")]
    FaultPlanToml(#[source] Box<toml::de::Error>),
    /// A fault plan in JSON did not parse. Fix the plan.
    #[error("fault plan: {0}")]
    FaultPlanJson(#[source] serde_json::Error),
    /// A rule of a plan built in code is inconsistent. Fix the plan.
    #[error("fault plan rule {index}: {source}")]
    InvalidFaultRule {
        /// The rule's position in the plan, from 0.
        index: usize,
        /// What is wrong with it.
        #[source]
        source: RuleError,
    },
    /// An ARI override names neither a known serial nor a CertID format. Fix the override.
    #[error("ARI override: {0}")]
    InvalidAriOverride(&'static str),
    /// The builder was given an inconsistent option. Fix the call.
    #[error("configuration: {0}")]
    Config(&'static str),
    /// Reading a file (a fault plan) failed. Retrying helps only if the file appears.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
}

/// What is wrong with one fault rule.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RuleError {
    /// `endpoint` is not one of the endpoint names or `any`.
    #[error("unknown endpoint {0:?}")]
    UnknownEndpoint(String),
    /// The action needs a field that is absent.
    #[error("action {action:?} needs `{field}`")]
    MissingField {
        /// The action.
        action: &'static str,
        /// The missing field.
        field: &'static str,
    },
    /// A field was given that the action does not use.
    #[error("action {action:?} does not take `{field}`")]
    FieldNotAllowed {
        /// The action.
        action: &'static str,
        /// The field that does not belong.
        field: &'static str,
    },
    /// The action cannot apply to that endpoint.
    #[error("action {action:?} cannot apply to endpoint {endpoint:?}")]
    EndpointNotAllowed {
        /// The action.
        action: &'static str,
        /// The endpoint as written.
        endpoint: String,
    },
    /// `probability` outside 0..=1.
    #[error("probability {0} is outside 0..=1")]
    ProbabilityOutOfRange(f64),
    /// `times = 0` would never fire.
    #[error("times = 0 never fires")]
    ZeroTimes,
    /// `status` outside 200..=599.
    #[error("status {0} is outside 200..=599")]
    StatusOutOfRange(u16),
}

impl TestCaError {
    pub(crate) fn bind(addr: SocketAddr) -> impl FnOnce(std::io::Error) -> TestCaError {
        move |source| TestCaError::Bind { addr, source }
    }
}
