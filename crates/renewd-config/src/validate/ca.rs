//! `[[ca]]` entries.

use std::net::IpAddr;
use std::ops::Range;

use renewd_core::{CaName, NameError};
use toml::Spanned;

use super::{Check, Checked, Reported};
use crate::defaults::{Defaults, bounds};
use crate::model::{CaConfig, Eab};
use crate::raw::{RawCa, StringList};

/// Whether an http:// directory on `host` stays on this machine.
fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl Check<'_> {
    /// A validated name of type `T`; `what` is "CA name" or "cert name".
    pub(crate) fn name<T>(
        &mut self,
        v: &Spanned<String>,
        what: &str,
        parse: fn(String) -> Result<T, NameError>,
    ) -> Checked<T> {
        let s = v.get_ref();
        parse(s.clone())
            .or_else(|e| self.report(v.span(), format!("{what} {s:?} is not valid: {e}")))
    }

    /// Every `[[ca]]`; names must be distinct.
    pub(crate) fn cas(&mut self, raw: &[Spanned<RawCa>]) -> Checked<Vec<CaConfig>> {
        let mut out = Ok(Vec::new());
        let mut seen: Vec<(&str, Range<usize>)> = Vec::new();
        for entry in raw {
            if let Some(name) = &entry.get_ref().name {
                if let Some((_, first)) = seen.iter().find(|(n, _)| *n == name.get_ref()) {
                    let message = format!(
                        "CA name {:?} is already used by the [[ca]] on line {}; give each [[ca]] its own name",
                        name.get_ref(),
                        self.line_of(first.start)
                    );
                    out = self.report(name.span(), message);
                } else {
                    seen.push((name.get_ref(), entry.span()));
                }
            }
            match (self.ca(entry), &mut out) {
                (Ok(ca), Ok(list)) => list.push(ca),
                (Err(Reported), _) => out = Err(Reported),
                (Ok(_), Err(Reported)) => {}
            }
        }
        out
    }

    fn ca(&mut self, entry: &Spanned<RawCa>) -> Checked<CaConfig> {
        let raw = entry.get_ref();
        let table = entry.span();
        let name = self
            .required(&raw.name, "[[ca]] name", &table, "name = \"letsencrypt\"")
            .and_then(|n| self.name(n, "CA name", CaName::new));
        let directory = self
            .required(
                &raw.directory,
                "[[ca]] directory",
                &table,
                "directory = \"https://acme.example/directory\" (the CA's ACME directory URL)",
            )
            .and_then(|d| self.directory(d));
        let contact = self.optional(&raw.contact, |c, l| c.contacts(l));
        let trust_roots = self.optional(&raw.trust_roots, |c, list| {
            let roots: Vec<_> = list.get_ref().iter().map(|p| c.trust_root(p)).collect();
            roots.into_iter().collect::<Checked<Vec<_>>>()
        });
        let eab = self.eab(raw);
        let profile = self.optional(&raw.profile, |c, v| c.label(v, "profile"));
        let preferred_chain =
            self.optional(&raw.preferred_chain, |c, v| c.label(v, "preferred_chain"));
        let max_orders = self.int(
            &raw.max_concurrent_orders,
            "max_concurrent_orders",
            Defaults::CA_MAX_CONCURRENT_ORDERS as i64,
            bounds::CA_MAX_CONCURRENT_ORDERS,
        );
        let rps = self.int(
            &raw.requests_per_second,
            "requests_per_second",
            i64::from(Defaults::CA_REQUESTS_PER_SECOND),
            bounds::CA_REQUESTS_PER_SECOND,
        );
        let timeout = self.duration(
            &raw.timeout,
            "timeout",
            Defaults::CA_TIMEOUT,
            bounds::CA_TIMEOUT,
        );
        let order_timeout = self.duration(
            &raw.order_timeout,
            "order_timeout",
            Defaults::CA_ORDER_TIMEOUT,
            bounds::CA_ORDER_TIMEOUT,
        );
        Ok(CaConfig {
            name: name?,
            directory: directory?,
            contact: contact?.unwrap_or_default(),
            trust_roots: trust_roots?.unwrap_or_default(),
            eab: eab?,
            profile: profile?,
            preferred_chain: preferred_chain?,
            max_concurrent_orders: usize::try_from(max_orders?).unwrap_or(1),
            requests_per_second: u32::try_from(rps?).unwrap_or(1),
            timeout: timeout?,
            order_timeout: order_timeout?,
            terms_agreed: raw
                .terms_agreed
                .as_ref()
                .map_or(Defaults::CA_TERMS_AGREED, |v| *v.get_ref()),
        })
    }

    fn directory(&mut self, v: &Spanned<String>) -> Checked<http::Uri> {
        let s = v.get_ref();
        const EXAMPLE: &str = "such as \"https://acme.example/directory\"";
        let uri = match s.parse::<http::Uri>() {
            Ok(u) if u.scheme().is_some() && u.host().is_some_and(|h| !h.is_empty()) => u,
            _ => return self.report(v.span(), format!("directory {s:?} is not an absolute URL; give the CA's ACME directory URL, {EXAMPLE}")),
        };
        let host = uri.host().unwrap_or_default();
        match uri.scheme_str() {
            Some("https") => Ok(uri),
            Some("http") if is_loopback(host) => Ok(uri),
            Some("http") => self.report(
                v.span(),
                format!("directory {s:?} uses http://, which is allowed only for loopback hosts (localhost, 127.0.0.1, [::1]); use https://"),
            ),
            Some(other) => self.report(v.span(), format!("directory {s:?} must be an https:// URL, not {other}://; {EXAMPLE}")),
            None => self.report(v.span(), format!("directory {s:?} is not an absolute URL; {EXAMPLE}")),
        }
    }

    fn contacts(&mut self, list: &Spanned<StringList>) -> Checked<Vec<String>> {
        let checked: Vec<Checked<String>> = list
            .get_ref()
            .iter()
            .map(|v| {
                let s = v.get_ref();
                let address = s.strip_prefix("mailto:");
                let good = address.is_some_and(|a| {
                    let at = a.find('@');
                    at.is_some_and(|i| i > 0 && i + 1 < a.len())
                        && !a.contains(|c: char| c.is_whitespace() || c == ',' || c == '?')
                });
                if good {
                    Ok(s.clone())
                } else if address.is_none() && s.contains('@') && !s.contains(':') {
                    self.report(v.span(), format!("contact {s:?} must be a mailto: URI: write \"mailto:{s}\""))
                } else {
                    self.report(
                        v.span(),
                        format!("contact {s:?} must be a mailto: URI with one address, such as \"mailto:ops@example.com\""),
                    )
                }
            })
            .collect();
        checked.into_iter().collect()
    }

    fn eab(&mut self, raw: &RawCa) -> Checked<Option<Eab>> {
        const KEY_HINT: &str = "add eab_hmac_key_file = \"/etc/renewd/NAME.eab\" or eab_hmac_key_credential = \"NAME.eab\"";
        match (&raw.eab_kid, &raw.eab_hmac_key_file, &raw.eab_hmac_key_credential) {
            (None, None, None) => Ok(None),
            (_, Some(_), Some(cred)) => self.report(
                cred.span(),
                "eab_hmac_key_file and eab_hmac_key_credential are both set; keep one: a file, or a systemd credential",
            ),
            (Some(kid), None, None) => self.report(
                kid.span(),
                format!("eab_kid is set but there is no MAC key to go with it; {KEY_HINT}"),
            ),
            (None, Some(key), None) | (None, None, Some(key)) => self.report(
                key.span(),
                "an EAB MAC key is set but eab_kid is not; add the key identifier the CA gave with it: eab_kid = \"…\"",
            ),
            (Some(kid), Some(file), None) => {
                let kid = self.label(kid, "eab_kid");
                let key = self.secret_file(file);
                let (hmac_key, source) = key?;
                Ok(Some(Eab { kid: kid?, hmac_key, source }))
            }
            (Some(kid), None, Some(credential)) => {
                let kid = self.label(kid, "eab_kid");
                let key = self.secret_credential(credential);
                let (hmac_key, source) = key?;
                Ok(Some(Eab { kid: kid?, hmac_key, source }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_loopback;

    #[test]
    fn loopback_hosts() {
        for h in ["localhost", "LOCALHOST", "127.0.0.1", "127.8.9.1", "[::1]"] {
            assert!(is_loopback(h), "{h}");
        }
        for h in ["example.com", "10.0.0.1", "[::2]", "localhost.example.com"] {
            assert!(!is_loopback(h), "{h}");
        }
    }
}
