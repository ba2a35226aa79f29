//! Exit statuses.

/// Success.
pub const OK: u8 = 0;
/// A renewal failed, or the command could not do its work.
pub const FAILURE: u8 = 1;
/// A usage error (clap's status for usage errors too).
pub const USAGE: u8 = 2;
/// The config is invalid or unreadable (`EX_CONFIG` from sysexits.h).
pub const CONFIG: u8 = 78;

/// `error` and its causes on one line, `outer: inner: …`, as `{:#}` prints them, except
/// that a cause whose text the error just above it already quotes is left out: many errors
/// put their source in their own message, and the operator should read it once.
pub fn error_text(error: &anyhow::Error) -> String {
    let mut text = String::new();
    let mut above = String::new();
    for cause in error.chain() {
        let part = cause.to_string();
        if !above.is_empty() && above.contains(&part) {
            above = part;
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
        above = part;
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Quotes its source in its message, and names it as its source too.
    #[derive(Debug)]
    struct Bind {
        source: std::io::Error,
    }

    impl std::fmt::Display for Bind {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(
                f,
                "could not listen on 127.0.0.1:80: {} (is another web server on this port?)",
                self.source
            )
        }
    }

    impl std::error::Error for Bind {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.source)
        }
    }

    #[test]
    fn a_cause_quoted_by_its_error_is_printed_once() {
        let bind = Bind {
            source: std::io::ErrorKind::AddrInUse.into(),
        };
        let e = anyhow::Error::new(bind)
            .context("starting the challenge responders")
            .context("starting the renewal engine");
        assert_eq!(
            error_text(&e),
            "starting the renewal engine: starting the challenge responders: \
             could not listen on 127.0.0.1:80: address in use (is another web server on this port?)"
        );
    }

    #[test]
    fn causes_not_quoted_are_all_printed() {
        let e = anyhow::anyhow!("disk full").context("writing the state");
        assert_eq!(error_text(&e), "writing the state: disk full");
        // Only the error just above counts: a short cause that an unrelated outer context
        // happens to contain is kept.
        let e = anyhow::anyhow!("timed out")
            .context("reading the answer")
            .context("the hook timed out earlier; retrying");
        assert_eq!(
            error_text(&e),
            "the hook timed out earlier; retrying: reading the answer: timed out"
        );
    }
}
