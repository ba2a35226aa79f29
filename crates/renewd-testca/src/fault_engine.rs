//! The fault plan at run time: which rule fires for a request, and the answers faults give.
//!
//! Rules are tried in order; the first one that matches the endpoint, still has `times`
//! left and passes its `probability` draw fires, and its count goes down by one. The random
//! source is a seeded generator, reseeded whenever a plan is set, so the same plan and the
//! same request sequence give the same faults.

use bytes::Bytes;
use http::StatusCode;

use crate::fault_toml::ceil_secs;
use crate::faults::{Action, Endpoint, Fault, FaultBody, FaultPlan};
use crate::response::{Problem, Reply};

/// A plan with its remaining counts and its random source.
#[derive(Debug)]
pub(crate) struct FaultEngine {
    plan: FaultPlan,
    remaining: Vec<Option<u32>>,
    rng: fastrand::Rng,
}

impl FaultEngine {
    pub fn new(plan: FaultPlan) -> FaultEngine {
        let remaining = plan.rules.iter().map(|r| r.fault.times).collect();
        let rng = fastrand::Rng::with_seed(plan.seed);
        FaultEngine {
            plan,
            remaining,
            rng,
        }
    }

    pub fn plan(&self) -> &FaultPlan {
        &self.plan
    }

    /// The remaining `times` of each rule (`None`: unlimited).
    #[cfg(test)]
    pub fn remaining(&self) -> &[Option<u32>] {
        &self.remaining
    }

    /// The fault for one request to `endpoint`, if a rule fires.
    pub fn decide(&mut self, endpoint: Endpoint) -> Option<Fault> {
        for (rule, remaining) in self.plan.rules.iter().zip(self.remaining.iter_mut()) {
            if !rule.endpoint.matches(endpoint) || *remaining == Some(0) {
                continue;
            }
            let applies = match rule.fault.action {
                Action::BadNonce => endpoint.is_signed(),
                Action::Processing { .. } => endpoint == Endpoint::Finalize,
                Action::InvalidOrder { .. } => endpoint == Endpoint::Order,
                Action::WrongCertificate { .. } => endpoint == Endpoint::Certificate,
                _ => true,
            };
            if !applies {
                continue;
            }
            if let Some(p) = rule.fault.probability
                && self.rng.f64() >= p
            {
                continue;
            }
            if let Some(n) = remaining {
                *n -= 1;
            }
            return Some(rule.fault.clone());
        }
        None
    }

    /// Random bytes for a garbage body: never valid JSON (the first byte is not one that
    /// can start a JSON text).
    pub fn garbage(&mut self) -> Bytes {
        let len = self.rng.usize(32..256);
        let mut bytes: Vec<u8> = (0..len).map(|_| self.rng.u8(..)).collect();
        if let Some(first) = bytes.first_mut() {
            *first = 0xff;
        }
        Bytes::from(bytes)
    }
}

/// The reason phrase nginx puts on its error pages.
fn reason(status: StatusCode) -> &'static str {
    match status.as_u16() {
        502 => "Bad Gateway",
        503 => "Service Temporarily Unavailable",
        504 => "Gateway Time-out",
        _ => status.canonical_reason().unwrap_or("Error"),
    }
}

/// An nginx-style error page, byte for byte the shape ZeroSSL's gateway sends.
pub(crate) fn html_page(status: StatusCode) -> String {
    let code = status.as_u16();
    let reason = reason(status);
    format!(
        "<html>\r\n<head><title>{code} {reason}</title></head>\r\n<body>\r\n\
         <center><h1>{code} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n\
         </body>\r\n</html>\r\n"
    )
}

fn default_problem_kind(status: StatusCode) -> &'static str {
    match status.as_u16() {
        429 => "rateLimited",
        s if s >= 500 => "serverInternal",
        _ => "malformed",
    }
}

/// The answer of a status fault.
pub(crate) fn status_reply(
    status: u16,
    body: &FaultBody,
    retry_after: Option<std::time::Duration>,
    garbage: impl FnOnce() -> Bytes,
) -> Reply {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut reply = match body {
        FaultBody::Html => Reply {
            from_ca: false,
            ..Reply::new(status, Some("text/html"), Bytes::from(html_page(status)))
        },
        FaultBody::Empty => Reply {
            from_ca: false,
            ..Reply::new(status, None, Bytes::new())
        },
        FaultBody::Garbage => Reply {
            from_ca: false,
            ..Reply::new(status, Some("application/json"), garbage())
        },
        FaultBody::Problem {
            problem_type,
            detail,
        } => Problem::new(
            status,
            problem_type
                .as_deref()
                .unwrap_or_else(|| default_problem_kind(status)),
            detail.as_deref().unwrap_or("injected by the fault plan"),
        )
        .into_reply(),
    };
    if let Some(d) = retry_after {
        reply = reply.retry_after(ceil_secs(d));
    }
    reply
}

/// The answer of a rate-limit fault.
pub(crate) fn rate_limited_reply(retry_after: std::time::Duration) -> Reply {
    Problem::rate_limited(
        "too many requests (injected by the fault plan)",
        ceil_secs(retry_after),
    )
    .into_reply()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::faults::EndpointMatch;

    #[test]
    fn next_n_fires_exactly_n_times_then_passes() {
        let plan = FaultPlan::new().rule(Endpoint::Finalize, Fault::status(504).times(2));
        let mut engine = FaultEngine::new(plan);
        assert!(engine.decide(Endpoint::Order).is_none());
        assert!(engine.decide(Endpoint::Finalize).is_some());
        assert!(engine.decide(Endpoint::Finalize).is_some());
        assert!(engine.decide(Endpoint::Finalize).is_none());
        assert_eq!(engine.remaining(), &[Some(0)]);
    }

    #[test]
    fn first_rule_that_fires_wins_and_later_rules_take_over() {
        let plan = FaultPlan::new()
            .rule(Endpoint::NewOrder, Fault::status(502).times(1))
            .rule(EndpointMatch::Any, Fault::status(503));
        let mut engine = FaultEngine::new(plan);
        let first = engine.decide(Endpoint::NewOrder).map(|f| f.action);
        assert!(matches!(first, Some(Action::Status { status: 502, .. })));
        let second = engine.decide(Endpoint::NewOrder).map(|f| f.action);
        assert!(matches!(second, Some(Action::Status { status: 503, .. })));
        assert_eq!(engine.remaining(), &[Some(0), None]);
    }

    #[test]
    fn probability_is_reproducible_from_the_seed() {
        let plan = FaultPlan::new()
            .seed(42)
            .rule(Endpoint::Directory, Fault::status(500).probability(0.3));
        let run = |plan: &FaultPlan| {
            let mut engine = FaultEngine::new(plan.clone());
            (0..1000)
                .map(|_| engine.decide(Endpoint::Directory).is_some())
                .collect::<Vec<_>>()
        };
        let a = run(&plan);
        assert_eq!(a, run(&plan), "same seed, same faults");
        let fired = a.iter().filter(|f| **f).count();
        assert!(
            (230..370).contains(&fired),
            "about 30 % of 1000, got {fired}"
        );
        assert_ne!(a, run(&plan.clone().seed(43)), "another seed, other faults");
    }

    #[test]
    fn probability_and_times_together_cap_the_firings() {
        let plan = FaultPlan::new().seed(1).rule(
            Endpoint::Directory,
            Fault::status(500).probability(0.5).times(3),
        );
        let mut engine = FaultEngine::new(plan);
        let fired = (0..100)
            .filter(|_| engine.decide(Endpoint::Directory).is_some())
            .count();
        assert_eq!(fired, 3);
    }

    #[test]
    fn bad_nonce_skips_unsigned_endpoints_and_processing_only_hits_finalize() {
        let plan = FaultPlan::new()
            .rule(EndpointMatch::Any, Fault::bad_nonce().times(1))
            .rule(
                Endpoint::Finalize,
                Fault::processing_for(Duration::from_secs(1)),
            );
        let mut engine = FaultEngine::new(plan);
        assert!(engine.decide(Endpoint::Directory).is_none());
        assert!(engine.decide(Endpoint::RenewalInfo).is_none());
        let f = engine.decide(Endpoint::Finalize).map(|f| f.action);
        assert_eq!(f, Some(Action::BadNonce));
        let f = engine.decide(Endpoint::Finalize).map(|f| f.action);
        assert!(matches!(f, Some(Action::Processing { .. })));
        assert!(engine.decide(Endpoint::NewOrder).is_none());
    }

    #[test]
    fn html_page_looks_like_nginx() {
        let page = html_page(StatusCode::GATEWAY_TIMEOUT);
        assert!(page.starts_with("<html>\r\n<head><title>504 Gateway Time-out</title></head>"));
        assert!(page.contains("<center>nginx</center>"));
    }

    #[test]
    fn garbage_is_not_json() {
        let mut engine = FaultEngine::new(FaultPlan::new());
        for _ in 0..20 {
            let g = engine.garbage();
            assert!(serde_json::from_slice::<serde_json::Value>(&g).is_err());
        }
    }
}
