//! What changed between two configs, for the reload log line.

use std::fmt;

use renewd_core::{CaName, CertName};

use crate::model::Config;

/// The difference between an old and a new config, by name. Secrets compare by value but
/// are never printed: a changed EAB key shows only as a changed CA.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigDiff {
    /// CAs only in the new config.
    pub cas_added: Vec<CaName>,
    /// CAs only in the old config.
    pub cas_removed: Vec<CaName>,
    /// CAs in both whose settings (or trust root or key contents) differ.
    pub cas_changed: Vec<CaName>,
    /// Certificates only in the new config.
    pub certs_added: Vec<CertName>,
    /// Certificates only in the old config.
    pub certs_removed: Vec<CertName>,
    /// Certificates in both whose settings differ.
    pub certs_changed: Vec<CertName>,
    /// Global settings that differ: `state_dir`, `[daemon]`, `[renewal]`, `[breaker]`,
    /// `[ledger]`, `[http01]`, `[dns01]`, `[tls_alpn01]`, `[hooks]`, `[metrics]`.
    pub settings_changed: Vec<&'static str>,
}

impl ConfigDiff {
    /// Compares `old` with `new`.
    pub fn between(old: &Config, new: &Config) -> Self {
        let mut d = ConfigDiff::default();
        for ca in &new.cas {
            match old.ca(&ca.name) {
                None => d.cas_added.push(ca.name.clone()),
                Some(before) if before != ca => d.cas_changed.push(ca.name.clone()),
                Some(_) => {}
            }
        }
        d.cas_removed = old
            .cas
            .iter()
            .filter(|ca| new.ca(&ca.name).is_none())
            .map(|ca| ca.name.clone())
            .collect();
        for cert in &new.certs {
            match old.cert(&cert.name) {
                None => d.certs_added.push(cert.name.clone()),
                Some(before) if before != cert => d.certs_changed.push(cert.name.clone()),
                Some(_) => {}
            }
        }
        d.certs_removed = old
            .certs
            .iter()
            .filter(|c| new.cert(&c.name).is_none())
            .map(|c| c.name.clone())
            .collect();
        let settings = [
            ("state_dir", old.state_dir != new.state_dir),
            ("[daemon]", old.daemon != new.daemon),
            ("[renewal]", old.renewal != new.renewal),
            ("[breaker]", old.breaker != new.breaker),
            ("[ledger]", old.ledger != new.ledger),
            ("[http01]", old.http01 != new.http01),
            ("[dns01]", old.dns01 != new.dns01),
            ("[tls_alpn01]", old.tls_alpn01 != new.tls_alpn01),
            ("[hooks]", old.hooks != new.hooks),
            ("[metrics]", old.metrics != new.metrics),
        ];
        d.settings_changed = settings
            .into_iter()
            .filter(|(_, changed)| *changed)
            .map(|(name, _)| name)
            .collect();
        d
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        *self == ConfigDiff::default()
    }
}

/// One line: `CAs +new -gone ~changed; certs +a ~b; settings [daemon]`, or `no changes`.
impl fmt::Display for ConfigDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("no changes");
        }
        fn group<T: fmt::Display>(sign: char, items: &[T]) -> impl Iterator<Item = String> + '_ {
            items.iter().map(move |i| format!("{sign}{i}"))
        }
        let mut parts = Vec::new();
        let cas: Vec<String> = group('+', &self.cas_added)
            .chain(group('-', &self.cas_removed))
            .chain(group('~', &self.cas_changed))
            .collect();
        if !cas.is_empty() {
            parts.push(format!("CAs {}", cas.join(" ")));
        }
        let certs: Vec<String> = group('+', &self.certs_added)
            .chain(group('-', &self.certs_removed))
            .chain(group('~', &self.certs_changed))
            .collect();
        if !certs.is_empty() {
            parts.push(format!("certs {}", certs.join(" ")));
        }
        if !self.settings_changed.is_empty() {
            parts.push(format!("settings {}", self.settings_changed.join(" ")));
        }
        f.write_str(&parts.join("; "))
    }
}
