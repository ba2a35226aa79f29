//! The classification table of [`Error`](super::Error) and what each error says about the
//! order and the account.
#![allow(clippy::unwrap_used)]

use super::*;

fn status(code: u16, problem_type: Option<&str>) -> Error {
    Error::Status {
        step: Step::Finalize,
        url: "https://ca/finalize/1".into(),
        status: code,
        problem: problem_type.map(|t| {
            Box::new(Problem {
                problem_type: Some(t.to_string()),
                detail: Some("detail".into()),
                ..Problem::default()
            })
        }),
        retry_after: None,
        body_snippet: String::new(),
    }
}

fn acme(name: &str) -> String {
    format!("urn:ietf:params:acme:error:{name}")
}

#[test]
fn classification_table() {
    use FailureClass::*;
    let ca_specific = Rejected { ca_specific: true };
    let not_specific = Rejected { ca_specific: false };
    let cases: Vec<(Error, FailureClass)> = vec![
        (status(502, None), CaUnavailable),
        (status(504, None), CaUnavailable),
        (status(500, Some(&acme("serverInternal"))), CaUnavailable),
        (status(503, Some(&acme("rateLimited"))), CaUnavailable),
        (status(429, None), RateLimited { retry_after: None }),
        (
            status(400, Some(&acme("rateLimited"))),
            RateLimited { retry_after: None },
        ),
        (status(400, Some(&acme("badNonce"))), BadNonce),
        (status(403, Some(&acme("caa"))), ca_specific),
        (status(400, Some(&acme("invalidProfile"))), ca_specific),
        (
            status(403, Some(&acme("externalAccountRequired"))),
            ca_specific,
        ),
        (
            status(400, Some(&acme("unsupportedIdentifier"))),
            ca_specific,
        ),
        (status(400, Some(&acme("unsupportedContact"))), ca_specific),
        (status(403, Some(&acme("userActionRequired"))), ca_specific),
        (status(409, Some(&acme("alreadyReplaced"))), ca_specific),
        (status(403, Some(&acme("unauthorized"))), not_specific),
        (at(Step::NewOrder, 403, Some("unauthorized")), ca_specific),
        (at(Step::Account, 403, Some("unauthorized")), ca_specific),
        (
            at(Step::Authorization, 403, Some("unauthorized")),
            not_specific,
        ),
        (
            at(Step::NewOrder, 400, Some("accountDoesNotExist")),
            ca_specific,
        ),
        (status(400, Some(&acme("connection"))), not_specific),
        (status(400, Some(&acme("dns"))), not_specific),
        (status(403, Some(&acme("incorrectResponse"))), not_specific),
        (status(400, Some(&acme("tls"))), not_specific),
        (status(400, Some(&acme("rejectedIdentifier"))), not_specific),
        (status(400, Some(&acme("badCSR"))), not_specific),
        (status(400, Some(&acme("malformed"))), not_specific),
        (status(400, Some("about:blank")), not_specific),
        (status(404, None), CaUnavailable),
        (status(403, None), CaUnavailable),
        (status(408, None), CaUnavailable),
        (
            Error::Transport {
                step: Step::Finalize,
                url: "u".into(),
                kind: TransportErrorKind::Timeout,
                message: "m".into(),
            },
            CaUnavailable,
        ),
        (
            Error::InvalidResponse {
                step: Step::NewOrder,
                url: "u".into(),
                status: 201,
                reason: "not JSON".into(),
                body_snippet: "<html>".into(),
            },
            CaUnavailable,
        ),
        (
            Error::OrderInvalid {
                step: Step::PollOrder,
                url: "u".into(),
                problem: None,
            },
            not_specific,
        ),
        (
            Error::Key {
                step: Step::Finalize,
                what: "CSR",
                detail: "d".into(),
            },
            Local,
        ),
        (
            Error::File {
                step: Step::Account,
                path: "/x".into(),
                source: std::io::Error::other("disk"),
            },
            Local,
        ),
    ];
    for (err, want) in cases {
        assert_eq!(err.class(), want, "{err}");
    }
}

fn invalid_order(problem_type: Option<&str>) -> Error {
    Error::OrderInvalid {
        step: Step::PollOrder,
        url: "https://ca/order/1".into(),
        problem: problem_type.map(|t| {
            Box::new(Problem {
                problem_type: Some(acme(t)),
                detail: Some("detail".into()),
                ..Problem::default()
            })
        }),
    }
}

#[test]
fn an_invalid_order_is_dead_whatever_its_error_and_its_class_follows_the_error() {
    use FailureClass::*;
    let cases = [
        (None, Rejected { ca_specific: false }),
        (Some("serverInternal"), CaUnavailable),
        (Some("badNonce"), CaUnavailable),
        (Some("rateLimited"), RateLimited { retry_after: None }),
        (Some("caa"), Rejected { ca_specific: true }),
        (Some("unauthorized"), Rejected { ca_specific: false }),
    ];
    for (error, class) in cases {
        let e = invalid_order(error);
        assert!(e.order_is_dead(), "{e}");
        assert_eq!(e.class(), class, "{e}");
    }
    // Failures that leave the order alive.
    assert!(!status(504, None).order_is_dead());
}

fn at(step: Step, code: u16, problem_type: Option<&str>) -> Error {
    let mut e = status(code, problem_type.map(acme).as_deref());
    if let Error::Status { step: s, .. } = &mut e {
        *s = step;
    }
    e
}

#[test]
fn a_4xx_page_without_a_problem_is_a_passing_failure_once_the_order_exists() {
    for step in [
        Step::Authorization,
        Step::Challenge,
        Step::Finalize,
        Step::PollOrder,
        Step::Download,
    ] {
        for code in [403, 404, 410] {
            let e = at(step, code, None);
            assert_eq!(e.class(), FailureClass::CaUnavailable, "{e}");
            assert!(!e.order_is_dead(), "{e}");
        }
    }
    // Before an order exists it says something about this CA.
    for step in [Step::NewOrder, Step::Account, Step::Directory] {
        assert_eq!(
            at(step, 404, None).class(),
            FailureClass::Rejected { ca_specific: true }
        );
    }
}

#[test]
fn an_account_the_ca_does_not_know_or_refuses_is_unusable() {
    assert!(at(Step::NewOrder, 400, Some("accountDoesNotExist")).account_unusable());
    assert!(at(Step::PollOrder, 400, Some("accountDoesNotExist")).account_unusable());
    assert!(at(Step::NewOrder, 403, Some("unauthorized")).account_unusable());
    assert!(at(Step::Account, 403, Some("unauthorized")).account_unusable());
    assert!(!at(Step::Authorization, 403, Some("unauthorized")).account_unusable());
    assert!(!at(Step::NewOrder, 400, Some("malformed")).account_unusable());
    assert!(!at(Step::NewOrder, 503, None).account_unusable());
}

#[test]
fn only_acme_evidence_kills_a_saved_order() {
    let dead = [
        at(Step::PollOrder, 404, Some("malformed")),
        at(Step::PollOrder, 400, Some("malformed")),
        at(Step::PollOrder, 400, Some("accountDoesNotExist")),
        at(Step::PollOrder, 403, Some("unauthorized")),
        at(Step::Finalize, 400, Some("badCSR")),
    ];
    for e in dead {
        assert!(e.order_is_dead(), "{e}");
    }
    let alive = [
        at(Step::PollOrder, 404, None),
        at(Step::PollOrder, 500, Some("serverInternal")),
        at(Step::PollOrder, 429, Some("rateLimited")),
        at(Step::Finalize, 403, Some("orderNotReady")),
        at(Step::Finalize, 404, Some("malformed")),
        at(Step::Download, 404, Some("malformed")),
        at(Step::Finalize, 504, None),
    ];
    for e in alive {
        assert!(!e.order_is_dead(), "{e}");
    }
}

#[test]
fn rate_limit_keeps_retry_after() {
    let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    let mut e = status(429, Some(&acme("rateLimited")));
    if let Error::Status { retry_after, .. } = &mut e {
        *retry_after = Some(at);
    }
    assert_eq!(
        e.class(),
        FailureClass::RateLimited {
            retry_after: Some(at)
        }
    );
    assert_eq!(e.retry_after(), Some(at));
    assert_eq!(e.http_status(), Some(429));
    assert!(e.is_problem("rateLimited"));
    assert_eq!(e.step(), Step::Finalize);
    assert!(e.to_string().contains("rateLimited: detail"), "{e}");
}
