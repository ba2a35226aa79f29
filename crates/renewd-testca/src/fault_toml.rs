//! The flat, as-written form of a fault rule (TOML and JSON) and its checks.
//!
//! A rule is written as one flat table (`endpoint`, `action`, and the fields that action
//! takes); [`RawRule`] is that table, and converting it to a [`Rule`] rejects fields that do
//! not belong to the action, missing ones, and values out of range, so a typo in a plan is an
//! error with a line number instead of a silently ignored fault.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::RuleError;
use crate::faults::{Action, Endpoint, EndpointMatch, Fault, FaultBody, Mismatch, Rule, When};

/// A rule as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    endpoint: EndpointMatch,
    action: ActionKind,
    #[serde(default)]
    when: When,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    times: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    probability: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delay_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body: Option<BodyKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    problem_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retry_after_secs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    processing_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mismatch: Option<Mismatch>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ActionKind {
    Status,
    Delay,
    Hang,
    Drop,
    RateLimited,
    Processing,
    BadNonce,
    InvalidOrder,
    WrongCertificate,
}

impl ActionKind {
    fn as_str(self) -> &'static str {
        match self {
            ActionKind::Status => "status",
            ActionKind::Delay => "delay",
            ActionKind::Hang => "hang",
            ActionKind::Drop => "drop",
            ActionKind::RateLimited => "rate_limited",
            ActionKind::Processing => "processing",
            ActionKind::BadNonce => "bad_nonce",
            ActionKind::InvalidOrder => "invalid_order",
            ActionKind::WrongCertificate => "wrong_certificate",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum BodyKind {
    Html,
    Problem,
    Empty,
    Garbage,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Whole seconds, rounded up: a `Retry-After` never promises less than was asked for.
pub(crate) fn ceil_secs(d: Duration) -> u64 {
    d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0))
}

impl TryFrom<RawRule> for Rule {
    type Error = RuleError;

    fn try_from(raw: RawRule) -> Result<Rule, RuleError> {
        let kind = raw.action;
        let not_allowed = |field: &'static str, present: bool| {
            if present {
                Err(RuleError::FieldNotAllowed {
                    action: kind.as_str(),
                    field,
                })
            } else {
                Ok(())
            }
        };
        let missing = |field: &'static str| RuleError::MissingField {
            action: kind.as_str(),
            field,
        };
        let retry_after = raw.retry_after_secs.map(Duration::from_secs);
        if kind != ActionKind::Status {
            not_allowed("status", raw.status.is_some())?;
            not_allowed("body", raw.body.is_some())?;
        }
        if !matches!(
            kind,
            ActionKind::Status | ActionKind::RateLimited | ActionKind::InvalidOrder
        ) {
            not_allowed("detail", raw.detail.is_some())?;
        }
        if !matches!(kind, ActionKind::Status | ActionKind::InvalidOrder) {
            not_allowed("problem_type", raw.problem_type.is_some())?;
        }
        if !matches!(
            kind,
            ActionKind::Status | ActionKind::RateLimited | ActionKind::Processing
        ) {
            not_allowed("retry_after_secs", raw.retry_after_secs.is_some())?;
        }
        if kind != ActionKind::Processing {
            not_allowed("processing_ms", raw.processing_ms.is_some())?;
        }
        if kind != ActionKind::WrongCertificate {
            not_allowed("mismatch", raw.mismatch.is_some())?;
        }
        let action = match kind {
            ActionKind::Status => {
                let status = raw.status.ok_or_else(|| missing("status"))?;
                let body = match raw.body {
                    Some(BodyKind::Html) => FaultBody::Html,
                    Some(BodyKind::Empty) => FaultBody::Empty,
                    Some(BodyKind::Garbage) => FaultBody::Garbage,
                    Some(BodyKind::Problem) => FaultBody::Problem {
                        problem_type: raw.problem_type.clone(),
                        detail: raw.detail.clone(),
                    },
                    None if raw.problem_type.is_some() || raw.detail.is_some() => {
                        FaultBody::Problem {
                            problem_type: raw.problem_type.clone(),
                            detail: raw.detail.clone(),
                        }
                    }
                    None => match Fault::status(status).action {
                        Action::Status { body, .. } => body,
                        _ => FaultBody::Html,
                    },
                };
                if !matches!(body, FaultBody::Problem { .. }) {
                    not_allowed("problem_type", raw.problem_type.is_some())?;
                    not_allowed("detail", raw.detail.is_some())?;
                }
                Action::Status {
                    status,
                    body,
                    retry_after,
                }
            }
            ActionKind::Delay => {
                if raw.delay_ms.is_none() {
                    return Err(missing("delay_ms"));
                }
                Action::Delay
            }
            ActionKind::Hang => Action::Hang,
            ActionKind::Drop => Action::Drop,
            ActionKind::RateLimited => Action::RateLimited {
                retry_after: retry_after.ok_or_else(|| missing("retry_after_secs"))?,
            },
            ActionKind::Processing => Action::Processing {
                duration: Duration::from_millis(
                    raw.processing_ms.ok_or_else(|| missing("processing_ms"))?,
                ),
                retry_after,
            },
            ActionKind::BadNonce => Action::BadNonce,
            ActionKind::InvalidOrder => Action::InvalidOrder {
                problem_type: raw
                    .problem_type
                    .clone()
                    .ok_or_else(|| missing("problem_type"))?,
                detail: raw
                    .detail
                    .clone()
                    .unwrap_or_else(|| "injected by the fault plan".to_owned()),
            },
            ActionKind::WrongCertificate => Action::WrongCertificate {
                mismatch: raw.mismatch.ok_or_else(|| missing("mismatch"))?,
            },
        };
        let rule = Rule {
            endpoint: raw.endpoint,
            fault: Fault {
                action,
                when: raw.when,
                times: raw.times,
                probability: raw.probability,
                delay: raw.delay_ms.map(Duration::from_millis),
            },
        };
        check_rule(&rule)?;
        Ok(rule)
    }
}

impl From<Rule> for RawRule {
    fn from(rule: Rule) -> RawRule {
        let fault = rule.fault;
        let mut raw = RawRule {
            endpoint: rule.endpoint,
            action: ActionKind::Status,
            when: fault.when,
            times: fault.times,
            probability: fault.probability,
            delay_ms: fault.delay.map(millis),
            status: None,
            body: None,
            problem_type: None,
            detail: None,
            retry_after_secs: None,
            processing_ms: None,
            mismatch: None,
        };
        match fault.action {
            Action::Status {
                status,
                body,
                retry_after,
            } => {
                raw.status = Some(status);
                raw.retry_after_secs = retry_after.map(ceil_secs);
                raw.body = Some(match body {
                    FaultBody::Html => BodyKind::Html,
                    FaultBody::Empty => BodyKind::Empty,
                    FaultBody::Garbage => BodyKind::Garbage,
                    FaultBody::Problem {
                        problem_type,
                        detail,
                    } => {
                        raw.problem_type = problem_type;
                        raw.detail = detail;
                        BodyKind::Problem
                    }
                });
            }
            Action::Delay => raw.action = ActionKind::Delay,
            Action::Hang => raw.action = ActionKind::Hang,
            Action::Drop => raw.action = ActionKind::Drop,
            Action::RateLimited { retry_after } => {
                raw.action = ActionKind::RateLimited;
                raw.retry_after_secs = Some(ceil_secs(retry_after));
            }
            Action::Processing {
                duration,
                retry_after,
            } => {
                raw.action = ActionKind::Processing;
                raw.processing_ms = Some(millis(duration));
                raw.retry_after_secs = retry_after.map(ceil_secs);
            }
            Action::BadNonce => raw.action = ActionKind::BadNonce,
            Action::InvalidOrder {
                problem_type,
                detail,
            } => {
                raw.action = ActionKind::InvalidOrder;
                raw.problem_type = Some(problem_type);
                raw.detail = Some(detail);
            }
            Action::WrongCertificate { mismatch } => {
                raw.action = ActionKind::WrongCertificate;
                raw.mismatch = Some(mismatch);
            }
        }
        raw
    }
}

/// The checks every rule passes, however it was made.
pub(crate) fn check_rule(rule: &Rule) -> Result<(), RuleError> {
    let fault = &rule.fault;
    if let Some(p) = fault.probability
        && !(0.0..=1.0).contains(&p)
    {
        return Err(RuleError::ProbabilityOutOfRange(p));
    }
    if fault.times == Some(0) {
        return Err(RuleError::ZeroTimes);
    }
    match &fault.action {
        Action::Status { status, .. } if !(200..=599).contains(status) => {
            Err(RuleError::StatusOutOfRange(*status))
        }
        Action::Delay if fault.delay.is_none() => Err(RuleError::MissingField {
            action: "delay",
            field: "delay_ms",
        }),
        Action::Processing { .. } => {
            if rule.endpoint != EndpointMatch::Only(Endpoint::Finalize) {
                Err(RuleError::EndpointNotAllowed {
                    action: "processing",
                    endpoint: rule.endpoint.into(),
                })
            } else if fault.when == When::After {
                Err(RuleError::FieldNotAllowed {
                    action: "processing",
                    field: "when = \"after\"",
                })
            } else {
                Ok(())
            }
        }
        Action::InvalidOrder { .. } => {
            if rule.endpoint != EndpointMatch::Only(Endpoint::Order) {
                Err(RuleError::EndpointNotAllowed {
                    action: "invalid_order",
                    endpoint: rule.endpoint.into(),
                })
            } else if fault.when == When::After {
                Err(RuleError::FieldNotAllowed {
                    action: "invalid_order",
                    field: "when = \"after\"",
                })
            } else {
                Ok(())
            }
        }
        Action::WrongCertificate { .. } => {
            if rule.endpoint != EndpointMatch::Only(Endpoint::Certificate) {
                Err(RuleError::EndpointNotAllowed {
                    action: "wrong_certificate",
                    endpoint: rule.endpoint.into(),
                })
            } else if fault.when == When::After {
                Err(RuleError::FieldNotAllowed {
                    action: "wrong_certificate",
                    field: "when = \"after\"",
                })
            } else {
                Ok(())
            }
        }
        Action::BadNonce => match rule.endpoint {
            EndpointMatch::Only(e) if !e.is_signed() => Err(RuleError::EndpointNotAllowed {
                action: "bad_nonce",
                endpoint: rule.endpoint.into(),
            }),
            _ if fault.when == When::After => Err(RuleError::FieldNotAllowed {
                action: "bad_nonce",
                field: "when = \"after\"",
            }),
            _ => Ok(()),
        },
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
