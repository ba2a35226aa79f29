//! The names of renewd's structured log fields, in one place.
//!
//! Every event about a certificate, a CA or an ACME request carries its facts as fields with
//! these names, never only inside the message text, so that operators can filter on them.
//! Use them with tracing's constant-name syntax, through `event!` (the level macros such as
//! `warn!` do not accept `{ CONST }` names):
//!
//! ```
//! use renewd::log_fields::{CA, STEP};
//! use tracing::Level;
//!
//! let (ca, step) = ("zerossl", "probe");
//! tracing::event!(Level::WARN, { CA } = ca, { STEP } = step, "probe failed");
//! ```
//!
//! In journald (`--log-format journald`, or `auto` under systemd) field names are
//! upper-cased by tracing-journald and not prefixed, so these are also journal fields:
//!
//! ```text
//! journalctl -u renewd CERT_NAME=www
//! journalctl -u renewd CA=zerossl STEP=finalize
//! journalctl -u renewd -p crit          # expiry alarms (see `alarm`)
//! ```
//!
//! In JSON lines they are top-level keys, spelled as here.

use renewd_core::RequestOutcome;
use renewd_issuer::OutcomeKind;

/// The certificate an event is about ([`CertName`](renewd_core::CertName)). Journal: `CERT_NAME`.
pub const CERT_NAME: &str = "cert_name";
/// The CA an event is about ([`CaName`](renewd_core::CaName)). Journal: `CA`.
pub const CA: &str = "ca";
/// The ACME step ([`Step`](renewd_core::Step) label, e.g. `finalize`). Journal: `STEP`.
pub const STEP: &str = "step";
/// The order URL. Journal: `ORDER_URL`.
pub const ORDER_URL: &str = "order_url";
/// The HTTP status of the CA's answer. Journal: `HTTP_STATUS`.
pub const HTTP_STATUS: &str = "http_status";
/// The problem document's `type`. Journal: `PROBLEM_TYPE`.
pub const PROBLEM_TYPE: &str = "problem_type";
/// The outcome class ([`OutcomeClass`](renewd_core::OutcomeClass) label, e.g.
/// `ca_unavailable`). Journal: `CLASS`.
pub const CLASS: &str = "class";
/// How long a request took, in milliseconds. Journal: `LATENCY_MS`.
pub const LATENCY_MS: &str = "latency_ms";
/// A renewal's urgency ([`Urgency`](renewd_core::Urgency) label). Journal: `URGENCY`.
pub const URGENCY: &str = "urgency";
/// A certificate's notAfter, RFC 3339. Journal: `NOT_AFTER`.
pub const NOT_AFTER: &str = "not_after";
/// Seconds until a certificate expires (negative once expired). Journal: `REMAINING_SECONDS`.
pub const REMAINING_SECONDS: &str = "remaining_seconds";
/// What kind of alarm an alarm event is (`expiry_danger`). Journal: `ALARM`.
pub const ALARM: &str = "alarm";
/// Why a renewal runs ([`RenewalReason`](renewd_core::RenewalReason) label). Journal:
/// `REASON`.
pub const REASON: &str = "reason";
/// The scheduler's explanation of a certificate's next deadline. Journal: `WHY`.
pub const WHY: &str = "why";
/// A certificate's serial, lower-case hex. Journal: `SERIAL`.
pub const SERIAL: &str = "serial";
/// Failed renewals in a row. Journal: `FAILURE_STREAK`.
pub const FAILURE_STREAK: &str = "failure_streak";
/// When a certificate is tried next, RFC 3339. Journal: `NEXT_ATTEMPT`.
pub const NEXT_ATTEMPT: &str = "next_attempt";
/// A circuit state (`closed`, `open`, `half_open`). Journal: `CIRCUIT`.
pub const CIRCUIT: &str = "circuit";
/// When an open circuit's cool-down ends, RFC 3339. Journal: `OPEN_UNTIL`.
pub const OPEN_UNTIL: &str = "open_until";
/// When a rate-limit block ends, RFC 3339. Journal: `UNTIL`.
pub const UNTIL: &str = "until";
/// An ARI window's start, RFC 3339. Journal: `WINDOW_START`.
pub const WINDOW_START: &str = "window_start";
/// An ARI window's end, RFC 3339. Journal: `WINDOW_END`.
pub const WINDOW_END: &str = "window_end";
/// When the CA is asked for renewal information next, RFC 3339. Journal: `NEXT_CHECK`.
pub const NEXT_CHECK: &str = "next_check";
/// The CA's explanation URL of an ARI window. Journal: `EXPLANATION_URL`.
pub const EXPLANATION_URL: &str = "explanation_url";
/// Whether a new order names the certificate it replaces (ARI). Journal: `REPLACES`.
pub const REPLACES: &str = "replaces";
/// An error, in one line. Journal: `ERROR`.
pub const ERROR: &str = "error";
/// A ledger row's detail. Journal: `DETAIL`.
pub const DETAIL: &str = "detail";

/// Every field name above, for tests and documentation: the fields to filter on.
pub const ALL: &[&str] = &[
    CERT_NAME,
    CA,
    STEP,
    ORDER_URL,
    HTTP_STATUS,
    PROBLEM_TYPE,
    CLASS,
    LATENCY_MS,
    URGENCY,
    NOT_AFTER,
    REMAINING_SECONDS,
    ALARM,
    REASON,
    WHY,
    SERIAL,
    FAILURE_STREAK,
    NEXT_ATTEMPT,
    CIRCUIT,
    OPEN_UNTIL,
    UNTIL,
    WINDOW_START,
    WINDOW_END,
    NEXT_CHECK,
    EXPLANATION_URL,
    REPLACES,
    ERROR,
    DETAIL,
];

/// The other field names renewd's events carry: context of one kind of message (a hook's
/// `pid`, a responder's `addrs`, a request's `url`), not meant to be filtered on across
/// messages. Together with [`ALL`], every name an event of renewd's crates may have — a
/// test runs the engine and checks it.
pub const INCIDENTAL: &[&str] = &[
    "account_url",
    "added",
    "addr",
    "addrs",
    "attempt",
    "attempts",
    "certs",
    "challenge",
    "changed",
    "duration",
    "event",
    "force",
    "holder_host",
    "holder_pid",
    "hook",
    "identifier",
    "ignored",
    "limit",
    "local",
    "only_ca",
    "path",
    "peer",
    "period",
    "pgid",
    "pid",
    "previous_pid",
    "queued",
    "removed",
    "report",
    "sent",
    "signal",
    "sni",
    "token",
    "url",
    "version",
    "waiting",
    "work",
];

/// `SYSLOG_IDENTIFIER=` of every journal entry (`journalctl -t renewd`).
pub const SYSLOG_IDENTIFIER: &str = "renewd";

/// The tracing target of alarm events. They are logged at `ERROR` level and reach journald
/// with `PRIORITY=2` (crit) instead of 3; see `alarm`.
pub const ALARM_TARGET: &str = "renewd::alarm";

/// The journal field name a tracing field becomes: tracing-journald's rule for plain
/// ASCII names (`.` → `_`, leading `_` dropped, other punctuation dropped, upper case).
pub fn journal_name(field: &str) -> String {
    field
        .chars()
        .map(|c| if c == '.' { '_' } else { c })
        .skip_while(|&c| c == '_')
        .filter(|&c| c == '_' || c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// Logs one ACME request outcome with every field the ledger has: `debug` when it
/// succeeded or is a refused nonce the client retried at once (no ledger row), `warn` when
/// it failed. The engine calls this for every outcome the issuer hands over.
pub fn log_request_outcome(o: &RequestOutcome, kind: OutcomeKind) {
    let cert = o.cert.as_ref().map(|c| c.as_str());
    let latency_ms = u64::try_from(o.latency.as_millis()).unwrap_or(u64::MAX);
    let detail = o.detail.as_deref().unwrap_or("");
    if kind == OutcomeKind::Retried {
        tracing::event!(
            tracing::Level::DEBUG,
            { CA } = %o.ca, { CERT_NAME } = cert, { STEP } = %o.step,
            { HTTP_STATUS } = o.http_status, { PROBLEM_TYPE } = o.problem_type.as_deref(),
            { CLASS } = %o.class, { LATENCY_MS } = latency_ms,
            { ORDER_URL } = o.order_url.as_deref(),
            "{} at {}: nonce refused, sent again with the fresh one", o.step, o.ca
        );
    } else if o.class == renewd_core::OutcomeClass::Ok {
        tracing::event!(
            tracing::Level::DEBUG,
            { CA } = %o.ca, { CERT_NAME } = cert, { STEP } = %o.step,
            { HTTP_STATUS } = o.http_status, { CLASS } = %o.class,
            { LATENCY_MS } = latency_ms, { ORDER_URL } = o.order_url.as_deref(),
            "{} at {} succeeded", o.step, o.ca
        );
    } else {
        tracing::event!(
            tracing::Level::WARN,
            { CA } = %o.ca, { CERT_NAME } = cert, { STEP } = %o.step,
            { HTTP_STATUS } = o.http_status, { PROBLEM_TYPE } = o.problem_type.as_deref(),
            { CLASS } = %o.class, { LATENCY_MS } = latency_ms,
            { ORDER_URL } = o.order_url.as_deref(),
            "{} at {} failed ({}): {detail}", o.step, o.ca, o.class
        );
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use renewd_core::{CaName, CertName, OutcomeClass, Step};
    use tracing::Level;

    use super::*;
    use crate::test_support::capture;

    #[test]
    fn request_outcomes_carry_every_ledger_field() {
        let mut o = RequestOutcome {
            time: chrono::Utc::now(),
            ca: CaName::new("zerossl").unwrap(),
            account: None,
            cert: Some(CertName::new("www").unwrap()),
            step: Step::Finalize,
            http_status: Some(504),
            problem_type: Some("urn:ietf:params:acme:error:serverInternal".into()),
            class: OutcomeClass::CaUnavailable,
            latency: Duration::from_millis(1500),
            order_url: Some("https://ca.test/order/1".into()),
            detail: Some("504 Gateway Time-out".into()),
        };
        let failed = capture(|| log_request_outcome(&o, OutcomeKind::Recorded));
        let retried = capture(|| log_request_outcome(&o, OutcomeKind::Retried));
        o.class = OutcomeClass::Ok;
        o.cert = None;
        o.problem_type = None;
        let ok = capture(|| log_request_outcome(&o, OutcomeKind::Recorded));

        let e = &failed[0];
        assert_eq!(e.level, Level::WARN);
        assert_eq!(e.field(CA), Some("zerossl"));
        assert_eq!(e.field(CERT_NAME), Some("www"));
        assert_eq!(e.field(STEP), Some("finalize"));
        assert_eq!(e.field(HTTP_STATUS), Some("504"));
        assert_eq!(
            e.field(PROBLEM_TYPE),
            Some("urn:ietf:params:acme:error:serverInternal")
        );
        assert_eq!(e.field(CLASS), Some("ca_unavailable"));
        assert_eq!(e.field(LATENCY_MS), Some("1500"));
        assert_eq!(e.field(ORDER_URL), Some("https://ca.test/order/1"));
        assert_eq!(
            e.field("message"),
            Some("finalize at zerossl failed (ca_unavailable): 504 Gateway Time-out")
        );
        let e = &retried[0];
        assert_eq!(
            e.level,
            Level::DEBUG,
            "a nonce retried at once is no failure"
        );
        assert_eq!(e.field(CLASS), Some("ca_unavailable"));
        let e = &ok[0];
        assert_eq!(e.level, Level::DEBUG);
        assert_eq!(e.field(CERT_NAME), None, "absent values are not recorded");
        assert_eq!(e.field(CLASS), Some("ok"));
    }

    #[test]
    fn journal_names_are_the_documented_ones() {
        assert_eq!(journal_name(CERT_NAME), "CERT_NAME");
        assert_eq!(journal_name(CA), "CA");
        assert_eq!(journal_name(ORDER_URL), "ORDER_URL");
        assert_eq!(journal_name("_x.y-z"), "X_YZ");
        for f in ALL {
            // Lower-case snake case maps one-to-one onto a valid journal field name.
            assert!(
                f.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{f}"
            );
            assert_eq!(journal_name(f), f.to_ascii_uppercase());
        }
        let mut unique = [ALL, INCIDENTAL].concat();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ALL.len() + INCIDENTAL.len());
        for f in INCIDENTAL {
            assert_eq!(journal_name(f), f.to_ascii_uppercase());
        }
    }
}

#[cfg(test)]
#[path = "log_fields_tests.rs"]
mod emitted;
