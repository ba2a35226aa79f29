//! [`RawConfig`] → [`Config`]: every rule, every problem reported (not just the first).
//!
//! Each part is checked on its own and yields [`Checked`]; the parts are combined only at
//! the end, so one bad value never hides another. Cross-references (a certificate's CAs,
//! its challenge section) are checked against the raw file, so an invalid `[[ca]]` does not
//! also produce "unknown CA" errors for every certificate that names it.

mod ca;
mod cert;
mod files;
mod sections;
mod values;

use std::path::PathBuf;

use crate::defaults::Defaults;
use crate::env::LoadEnv;
use crate::error::Problems;
use crate::model::Config;
use crate::raw::RawConfig;

/// Marker: the problem has been recorded in [`Problems`].
#[derive(Debug)]
pub(crate) struct Reported;

/// A checked value, or [`Reported`].
pub(crate) type Checked<T> = Result<T, Reported>;

/// The state of one validation run.
pub(crate) struct Check<'a> {
    pub(crate) problems: &'a mut Problems,
    pub(crate) env: &'a LoadEnv,
    /// The config text, to name the line of an earlier definition in messages.
    pub(crate) text: &'a str,
}

impl Check<'_> {
    /// The 1-based line of a byte offset.
    pub(crate) fn line_of(&self, offset: usize) -> usize {
        self.text.as_bytes()[..offset.min(self.text.len())]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }
}

/// What certificates may refer to, taken from the raw file.
pub(crate) struct Declared {
    /// CA names as written, in file order.
    pub(crate) ca_names: Vec<String>,
    pub(crate) http01: bool,
    pub(crate) dns01: bool,
    pub(crate) tls_alpn01: bool,
}

/// Checks `raw`; `None` when any problem was recorded.
pub(crate) fn validate(
    raw: &RawConfig,
    text: &str,
    env: &LoadEnv,
    problems: &mut Problems,
) -> Option<Config> {
    let mut c = Check {
        problems,
        env,
        text,
    };
    let state_dir = match &raw.state_dir {
        None => Ok(PathBuf::from(Defaults::STATE_DIR)),
        Some(v) => c.abs_path(v, "state_dir"),
    };
    let daemon = c.daemon(raw.daemon.as_ref());
    let renewal = c.renewal(raw.renewal.as_ref());
    let breaker = c.breaker(raw.breaker.as_ref());
    let ledger = c.ledger(raw.ledger.as_ref());
    let cas = c.cas(&raw.ca);
    let http01 = c.optional(&raw.http01, |c, v| c.http01(v));
    let dns01 = c.optional(&raw.dns01, |c, v| c.dns01(v));
    let tls_alpn01 = c.optional(&raw.tls_alpn01, |c, v| c.tls_alpn01(v));
    let hooks = c.hooks(raw.hooks.as_ref());
    let metrics = c.optional(&raw.metrics, |c, v| c.metrics(v));
    let declared = Declared {
        ca_names: raw
            .ca
            .iter()
            .filter_map(|ca| ca.get_ref().name.as_ref().map(|n| n.get_ref().clone()))
            .collect(),
        http01: raw.http01.is_some(),
        dns01: raw.dns01.is_some(),
        tls_alpn01: raw.tls_alpn01.is_some(),
    };
    let certs = c.certs(&raw.cert, &declared);
    c.listeners_distinct(raw);

    let config = (|| {
        Ok(Config {
            state_dir: state_dir?,
            daemon: daemon?,
            renewal: renewal?,
            breaker: breaker?,
            ledger: ledger?,
            cas: cas?,
            http01: http01?,
            dns01: dns01?,
            tls_alpn01: tls_alpn01?,
            hooks: hooks?,
            metrics: metrics?,
            certs: certs?,
        })
    })();
    match config {
        Ok(config) if c.problems.is_empty() => Some(config),
        Ok(_) => None,
        Err(Reported) => {
            // `Reported` is only made by `Check::report`, so a problem is on record.
            debug_assert!(!c.problems.is_empty());
            None
        }
    }
}
