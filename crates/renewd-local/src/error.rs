//! The crate's one error type. Everything here happens on this host, so every variant is
//! [`FailureClass::Local`]: never blamed on a CA.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use renewd_core::{ChallengeType, FailureClass};

/// A failure of a challenge responder, a hook or the served-certificate check.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A responder could not listen on a configured address. Retrying helps only once the
    /// address is free (or the service has the privilege to bind it).
    #[error("could not listen on {addr} for {challenge}: {source}{}", bind_hint(*challenge, source))]
    Bind {
        /// The challenge type the responder answers.
        challenge: ChallengeType,
        /// The configured address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A solver was handed an answer for another challenge type (a wiring bug). Retrying
    /// cannot help.
    #[error("the {solver} solver was given a {given} challenge for {identifier}")]
    WrongChallenge {
        /// What the solver answers.
        solver: ChallengeType,
        /// What it was given.
        given: ChallengeType,
        /// The identifier.
        identifier: String,
    },
    /// The CA sent a token that is not base64url (RFC 8555 §8.1); it is never used as a
    /// file name or path. Retrying the same order cannot help.
    #[error("the challenge token {token:?} is not base64url; refusing to use it")]
    BadToken {
        /// The token as received.
        token: String,
    },
    /// Writing or removing a webroot challenge file failed. Retrying helps once the
    /// directory's permissions or the disk are fixed.
    #[error("webroot: {what} {}: {source}", path.display())]
    Webroot {
        /// What was being done ("creating the directory", "writing", ...).
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The tls-alpn-01 certificate could not be loaded into the TLS server. Retrying cannot
    /// help.
    #[error("tls-alpn-01 for {identifier}: cannot use the challenge certificate: {detail}")]
    TlsAlpnCertificate {
        /// The identifier.
        identifier: String,
        /// Why.
        detail: String,
    },
    /// A hook program could not be started (missing, not executable). Retrying cannot help
    /// until the program is installed.
    #[error("could not run {argv}: {source}")]
    HookSpawn {
        /// The command line, shell-like.
        argv: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A hook ran and failed: a non-zero exit, a signal, or its time limit. Retrying may
    /// help (the hook's own problem decides).
    #[error("{argv} {}{}", describe_failure(*status, *timed_out, *duration), stderr_line(stderr_tail))]
    HookFailed {
        /// The command line, shell-like.
        argv: String,
        /// How it ended.
        status: ExitStatus,
        /// Whether it was killed at its time limit.
        timed_out: bool,
        /// How long it ran.
        duration: Duration,
        /// The end of its stderr.
        stderr_tail: String,
    },
    /// The dns-01 `propagation_check` never succeeded within `propagation_timeout`.
    /// Retrying later may help (DNS may just be slow).
    #[error(
        "the TXT record {name} did not propagate within {waited:?}: propagation_check failed {attempts} times{}",
        last.as_deref().map(|l| format!("; last: {l}")).unwrap_or_default()
    )]
    PropagationTimeout {
        /// The record name.
        name: String,
        /// How long was waited in all (delay included).
        waited: Duration,
        /// How many times the check ran.
        attempts: u32,
        /// The last check's failure, as text.
        last: Option<String>,
    },
    /// A TLS configuration (the tls-alpn-01 server's, the served-certificate check's client)
    /// could not be built. Retrying cannot help.
    #[error("{what}: cannot build the TLS configuration: {detail}")]
    TlsConfig {
        /// Whose configuration.
        what: &'static str,
        /// Why.
        detail: String,
    },
}

impl Error {
    /// The failure class: always [`FailureClass::Local`].
    pub fn class(&self) -> FailureClass {
        FailureClass::Local
    }
}

fn bind_hint(challenge: ChallengeType, source: &std::io::Error) -> &'static str {
    match (challenge, source.kind()) {
        (ChallengeType::Http01, std::io::ErrorKind::AddrInUse) => {
            " (is another web server on this port? use [http01] webroot mode instead)"
        }
        (ChallengeType::TlsAlpn01, std::io::ErrorKind::AddrInUse) => {
            " (is another TLS server on this port? use http-01 or dns-01 instead)"
        }
        (_, std::io::ErrorKind::PermissionDenied) => {
            " (ports below 1024 need CAP_NET_BIND_SERVICE)"
        }
        _ => "",
    }
}

fn describe_failure(status: ExitStatus, timed_out: bool, duration: Duration) -> String {
    if timed_out {
        format!("ran past its time limit and was killed after {duration:.1?}")
    } else {
        format!("failed ({status}) after {duration:.1?}")
    }
}

/// The last non-empty line of stderr, shortened, for one-line messages.
fn stderr_line(tail: &str) -> String {
    match tail.lines().rev().map(str::trim).find(|l| !l.is_empty()) {
        Some(line) => format!(": {}", crate::env::one_line(line, 300)),
        None => String::new(),
    }
}
