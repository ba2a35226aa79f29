//! [`Setback`]: a failed step of a job, reduced to what the failure policy reads — the
//! class (computed once, in `renewd-acme` or here for local steps), the step, one line of
//! text and a `Retry-After`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use renewd_core::{FailureClass, Step};

/// A failed step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Setback {
    pub(crate) class: FailureClass,
    pub(crate) step: Step,
    pub(crate) message: String,
    /// When the CA allows the next request, if it said.
    pub(crate) retry_after: Option<DateTime<Utc>>,
    /// Try again no later than this after the failure (the back-off is capped at it): for a
    /// failure whose retry costs the CA nothing, like installing a kept order's certificate
    /// once the local clock is right.
    pub(crate) retry_within: Option<Duration>,
}

impl Setback {
    /// A local failure (never blamed on the CA).
    pub(crate) fn local(step: Step, message: impl Into<String>) -> Setback {
        Setback {
            class: FailureClass::Local,
            step,
            message: one_line(&message.into()),
            retry_after: None,
            retry_within: None,
        }
    }

    /// The CA's `Retry-After` for a rate limit (from the class, else the response).
    pub(crate) fn rate_limit_end(&self) -> Option<DateTime<Utc>> {
        match self.class {
            FailureClass::RateLimited { retry_after } => retry_after.or(self.retry_after),
            _ => None,
        }
    }
}

impl From<&renewd_acme::Error> for Setback {
    fn from(e: &renewd_acme::Error) -> Setback {
        Setback {
            class: e.class(),
            step: e.step(),
            message: one_line(&e.to_string()),
            retry_after: e.retry_after(),
            retry_within: None,
        }
    }
}

impl From<renewd_acme::Error> for Setback {
    fn from(e: renewd_acme::Error) -> Setback {
        Setback::from(&e)
    }
}

/// Collapses whitespace runs (newlines of HTML bodies included) and caps the length, so a
/// message fits in one log line and one `last_error`.
pub(crate) fn one_line(s: &str) -> String {
    const MAX: usize = 400;
    let mut out = String::with_capacity(s.len().min(MAX));
    for word in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
        if out.len() > MAX {
            let mut cut = MAX;
            while !out.is_char_boundary(cut) {
                cut -= 1;
            }
            out.truncate(cut);
            out.push('…');
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_bounded_line() {
        assert_eq!(one_line("a\n  b\t\tc "), "a b c");
        let long = "é".repeat(500);
        let short = one_line(&long);
        assert!(short.len() <= 404, "{}", short.len());
        assert!(short.ends_with('…'));
    }
}
