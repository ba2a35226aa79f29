//! Checks of command-line names against the loaded config, and what they select.
//!
//! `--cert NAME` and `--ca NAME` are syntactically checked by clap; whether they name a
//! configured certificate or CA is only known once the config is loaded. A name that is not
//! configured is a usage error (exit 2), reported with the names that are.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use renewd_config::Config;
use renewd_core::{CaName, CertName, Step};
use renewd_store::LedgerQuery;

use crate::cli::{LedgerArgs, RenewArgs};

/// A command-line name that the config does not know. Exit status 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// What one `renew` pass is asked to do, checked against the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenewSelection {
    /// The certificates to consider, in config order, without duplicates.
    pub certs: Vec<CertName>,
    /// Renew them even if they are not due.
    pub force: bool,
    /// Use only this CA.
    pub only_ca: Option<CaName>,
}

/// Checks `renew`'s arguments against `config`.
///
/// Without `--cert`, every configured certificate is considered — with `--ca`, every one
/// that lists that CA. With `--cert`, each named certificate must be configured and, with
/// `--ca`, must list that CA.
pub fn renew_selection(config: &Config, args: &RenewArgs) -> Result<RenewSelection, UsageError> {
    if let Some(ca) = &args.ca {
        known_ca(config, ca)?;
    }
    for name in &args.certs {
        let cert = known_cert(config, name)?;
        if let Some(ca) = &args.ca
            && !cert.cas.contains(ca)
        {
            return Err(UsageError(format!(
                "certificate {:?} does not list CA {:?}; its CAs: {}",
                name.as_str(),
                ca.as_str(),
                join(&cert.cas)
            )));
        }
    }
    let certs = config
        .certs
        .iter()
        .filter(|c| args.certs.is_empty() || args.certs.contains(&c.name))
        .filter(|c| args.ca.as_ref().is_none_or(|ca| c.cas.contains(ca)))
        .map(|c| c.name.clone())
        .collect();
    Ok(RenewSelection {
        certs,
        force: args.force,
        only_ca: args.ca.clone(),
    })
}

/// Which ledger rows `renewd ledger` shows.
///
/// Unlike `renew`, the names are not checked against the config: the ledger keeps the
/// history of CAs and certificates that have since left it, and that history must stay
/// queryable. (clap has already checked that they are well-formed names.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerFilter {
    /// Only this CA's rows.
    pub ca: Option<CaName>,
    /// Only this certificate's rows.
    pub cert: Option<CertName>,
    /// Only rows at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// At most this many rows (`None`: all).
    pub limit: Option<u32>,
    /// Every step's rows, not only [`LEDGER_STEPS`].
    pub all_steps: bool,
}

/// The steps `renewd ledger` shows by default: the ACME requests of issuance
/// ([`Step::ISSUANCE_REQUESTS`], the list of `CONTRACT.md`). The rows of renewd's own steps
/// (install, deploy hook, challenge setup) and of revoke stay in the store and show with
/// `--all-steps`.
pub const LEDGER_STEPS: [Step; 11] = Step::ISSUANCE_REQUESTS;

impl LedgerFilter {
    /// The store query selecting these rows.
    pub fn query(&self) -> LedgerQuery {
        LedgerQuery {
            ca: self.ca.clone(),
            cert: self.cert.clone(),
            since: self.since,
            limit: self.limit,
            steps: (!self.all_steps).then(|| LEDGER_STEPS.to_vec()),
        }
    }

    /// Notes for stderr about names the config does not declare (their history is shown
    /// all the same).
    pub fn unconfigured(&self, config: &Config) -> Vec<String> {
        let mut notes = Vec::new();
        if let Some(ca) = self.ca.as_ref().filter(|ca| config.ca(ca).is_none()) {
            notes.push(format!(
                "CA {:?} is not in the config; showing its history",
                ca.as_str()
            ));
        }
        if let Some(cert) = self.cert.as_ref().filter(|c| config.cert(c).is_none()) {
            notes.push(format!(
                "certificate {:?} is not in the config; showing its history",
                cert.as_str()
            ));
        }
        notes
    }
}

/// `ledger`'s arguments as a filter; `--since` counts back from `now`, `--limit 0` means
/// no limit.
pub fn ledger_filter(args: &LedgerArgs, now: DateTime<Utc>) -> Result<LedgerFilter, UsageError> {
    let since = match args.since {
        None => None,
        Some(d) => Some(since(now, d)?),
    };
    Ok(LedgerFilter {
        ca: args.ca.clone(),
        cert: args.cert.clone(),
        since,
        limit: (args.limit > 0).then_some(args.limit),
        all_steps: args.all_steps,
    })
}

fn since(now: DateTime<Utc>, d: Duration) -> Result<DateTime<Utc>, UsageError> {
    TimeDelta::from_std(d)
        .ok()
        .and_then(|d| now.checked_sub_signed(d))
        .ok_or_else(|| UsageError(format!("--since {}s reaches before any date", d.as_secs())))
}

fn known_ca(config: &Config, ca: &CaName) -> Result<(), UsageError> {
    match config.ca(ca) {
        Some(_) => Ok(()),
        None => Err(UsageError(format!(
            "CA {:?} is not configured; configured CAs: {}",
            ca.as_str(),
            join(config.cas.iter().map(|c| &c.name))
        ))),
    }
}

fn known_cert<'c>(
    config: &'c Config,
    name: &CertName,
) -> Result<&'c renewd_config::CertConfig, UsageError> {
    config.cert(name).ok_or_else(|| {
        UsageError(format!(
            "certificate {:?} is not configured; configured certificates: {}",
            name.as_str(),
            join(config.certs.iter().map(|c| &c.name))
        ))
    })
}

fn join<T: fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    let names: Vec<String> = items.into_iter().map(|i| i.to_string()).collect();
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use renewd_config::LoadEnv;

    use super::*;

    const CONFIG: &str = r#"
state_dir = "/tmp/renewd-test"
[[ca]]
name = "zerossl"
directory = "https://acme.zerossl.invalid/directory"
[[ca]]
name = "letsencrypt"
directory = "https://acme.letsencrypt.invalid/directory"
[http01]
listen = ["127.0.0.1:5002"]
[[cert]]
name = "www"
domains = ["www.example.com"]
cas = ["zerossl", "letsencrypt"]
[[cert]]
name = "api"
domains = ["api.example.com"]
cas = ["letsencrypt"]
"#;

    fn config() -> Config {
        Config::from_str(CONFIG, Path::new("t.toml"), &LoadEnv::default()).unwrap()
    }

    fn cert(n: &str) -> CertName {
        CertName::new(n).unwrap()
    }

    fn ca(n: &str) -> CaName {
        CaName::new(n).unwrap()
    }

    fn renew(certs: &[&str], ca_name: Option<&str>) -> Result<RenewSelection, UsageError> {
        let args = RenewArgs {
            certs: certs.iter().map(|c| cert(c)).collect(),
            force: true,
            ca: ca_name.map(ca),
        };
        renew_selection(&config(), &args)
    }

    #[test]
    fn renew_selects_in_config_order() {
        let s = renew(&[], None).unwrap();
        assert_eq!(s.certs, vec![cert("www"), cert("api")]);
        assert!(s.force);
        let s = renew(&["api", "www", "api"], None).unwrap();
        assert_eq!(s.certs, vec![cert("www"), cert("api")]);
        let s = renew(&[], Some("zerossl")).unwrap();
        assert_eq!(s.certs, vec![cert("www")]);
        assert_eq!(s.only_ca, Some(ca("zerossl")));
    }

    #[test]
    fn renew_refuses_unknown_names() {
        let e = renew(&["nope"], None).unwrap_err();
        assert_eq!(
            e.0,
            "certificate \"nope\" is not configured; configured certificates: www, api"
        );
        let e = renew(&[], Some("buypass")).unwrap_err();
        assert_eq!(
            e.0,
            "CA \"buypass\" is not configured; configured CAs: zerossl, letsencrypt"
        );
        let e = renew(&["api"], Some("zerossl")).unwrap_err();
        assert_eq!(
            e.0,
            "certificate \"api\" does not list CA \"zerossl\"; its CAs: letsencrypt"
        );
    }

    #[test]
    fn ledger_filter_counts_back_and_keeps_unconfigured_names() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let args = LedgerArgs {
            ca: Some(ca("zerossl")),
            cert: None,
            since: Some(Duration::from_secs(3600)),
            limit: 1000,
            all_steps: false,
            json: false,
        };
        let f = ledger_filter(&args, now).unwrap();
        let q = f.query();
        assert_eq!(
            q.steps.as_deref(),
            Some(&LEDGER_STEPS[..]),
            "the contract's steps"
        );
        assert!(!LEDGER_STEPS.contains(&Step::Install));
        let every = LedgerArgs {
            all_steps: true,
            ..args.clone()
        };
        assert_eq!(ledger_filter(&every, now).unwrap().query().steps, None);
        assert_eq!(q.since, Some(now - TimeDelta::hours(1)));
        assert_eq!(q.ca, Some(ca("zerossl")));
        assert_eq!(q.limit, Some(1000));
        assert!(f.unconfigured(&config()).is_empty());

        // A CA and a certificate removed from the config keep their history.
        let gone = LedgerArgs {
            ca: Some(ca("buypass")),
            cert: Some(cert("mail")),
            since: None,
            limit: 0,
            ..args.clone()
        };
        let f = ledger_filter(&gone, now).unwrap();
        assert_eq!(f.query().limit, None);
        assert_eq!(f.query().cert, Some(cert("mail")));
        assert_eq!(
            f.unconfigured(&config()),
            [
                "CA \"buypass\" is not in the config; showing its history",
                "certificate \"mail\" is not in the config; showing its history"
            ]
        );

        let far = LedgerArgs {
            since: Some(Duration::from_secs(u64::MAX / 2)),
            ..args
        };
        assert!(ledger_filter(&far, now).is_err());
    }
}
