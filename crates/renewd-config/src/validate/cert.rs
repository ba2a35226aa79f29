//! `[[cert]]` entries and their references to CAs and challenge sections.

use std::ops::Range;
use std::path::Path;

use renewd_core::{CaName, CertName, ChallengeType, DomainName};
use toml::Spanned;

use super::{Check, Checked, Declared, Reported};
use crate::defaults::{Defaults, bounds};
use crate::model::{CertConfig, CopyOut};
use crate::raw::{Field, RawCert, RawMode, StringList};

/// The copy-out keys of a `[[cert]]`, with their values.
fn copy_paths(raw: &RawCert) -> [(&'static str, &Field<String>); 4] {
    [
        ("cert_path", &raw.cert_path),
        ("key_path", &raw.key_path),
        ("fullchain_path", &raw.fullchain_path),
        ("chain_path", &raw.chain_path),
    ]
}

/// A user or group: a numeric id, or a name as `useradd` accepts it.
fn is_account(s: &str) -> bool {
    if !s.is_empty() && s.len() <= 10 && s.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    let body = s.strip_suffix('$').unwrap_or(s);
    !body.is_empty()
        && s.len() <= 32
        && body.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && body
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Parses `"0640"`-style modes: 3 or 4 octal digits, no setuid/setgid/sticky bits.
fn parse_mode(s: &str) -> Result<u32, String> {
    if !(3..=4).contains(&s.len()) || !s.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return Err(format!(
            "mode {s:?} is not an octal mode; use 3 or 4 octal digits, such as \"0640\""
        ));
    }
    let mode = u32::from_str_radix(s, 8).map_err(|_| format!("mode {s:?} is not an octal mode"))?;
    if mode > 0o777 {
        return Err(format!(
            "mode {s:?} sets setuid, setgid or sticky bits, which certificate files never need; use at most \"0777\""
        ));
    }
    Ok(mode)
}

impl Check<'_> {
    /// Every `[[cert]]`; names distinct, copy-out paths written by one certificate only.
    pub(crate) fn certs(
        &mut self,
        raw: &[Spanned<RawCert>],
        declared: &Declared,
    ) -> Checked<Vec<CertConfig>> {
        let mut out = Ok(Vec::new());
        let mut names: Vec<(&str, Range<usize>)> = Vec::new();
        let mut paths: Vec<(&str, &str, Range<usize>)> = Vec::new();
        for entry in raw {
            let raw = entry.get_ref();
            let label = raw.name.as_ref().map_or("?", |n| n.get_ref().as_str());
            if let Some(name) = &raw.name {
                if let Some((_, first)) = names.iter().find(|(n, _)| *n == name.get_ref()) {
                    let message = format!(
                        "cert name {label:?} is already used by the [[cert]] on line {}; give each [[cert]] its own name",
                        self.line_of(first.start)
                    );
                    out = self.report(name.span(), message);
                } else {
                    names.push((name.get_ref(), entry.span()));
                }
            }
            for (key, value) in copy_paths(raw) {
                let Some(v) = value else { continue };
                match paths.iter().find(|(_, p, _)| *p == v.get_ref()) {
                    Some((other, _, first)) if *other != label => {
                        let message = format!(
                            "{key} {:?} is also written by cert {other:?} (line {}); each file can have only one writer",
                            v.get_ref(),
                            self.line_of(first.start)
                        );
                        out = self.report(v.span(), message);
                    }
                    _ => paths.push((label, v.get_ref(), v.span())),
                }
            }
            match (self.cert(entry, declared), &mut out) {
                (Ok(cert), Ok(list)) => list.push(cert),
                (Err(Reported), _) => out = Err(Reported),
                (Ok(_), Err(Reported)) => {}
            }
        }
        out
    }

    fn cert(&mut self, entry: &Spanned<RawCert>, declared: &Declared) -> Checked<CertConfig> {
        let raw = entry.get_ref();
        let table = entry.span();
        let label = raw.name.as_ref().map_or("?", |n| n.get_ref().as_str());
        let name = self
            .required(
                &raw.name,
                "[[cert]] name",
                &table,
                "name = \"www\" (also its directory under state_dir/certs)",
            )
            .and_then(|n| self.name(n, "cert name", CertName::new));
        let challenge = self
            .optional(&raw.challenge, |c, v| {
                v.get_ref()
                    .parse::<ChallengeType>()
                    .or_else(|e| c.report(v.span(), format!("challenge: {e}")))
            })
            .map(|c| c.unwrap_or(Defaults::CHALLENGE));
        let section = match &challenge {
            Ok(ch) => {
                let at = raw.challenge.as_ref().map_or(table.clone(), Spanned::span);
                self.challenge_section(*ch, raw.challenge.is_none(), at, label, declared)
            }
            Err(Reported) => Err(Reported),
        };
        let domains = self
            .required(
                &raw.domains,
                &format!("cert {label:?}: domains"),
                &table,
                "domains = [\"example.com\", \"www.example.com\"]",
            )
            .and_then(|d| self.domains(d, label, challenge.as_ref().ok().copied()));
        let cas = self
            .required(
                &raw.cas,
                &format!("cert {label:?}: cas"),
                &table,
                &format!(
                    "cas = [{}] (CAs in order of preference)",
                    quoted_list(&declared.ca_names)
                ),
            )
            .and_then(|l| self.cert_cas(l, label, declared));
        let key = self.optional(&raw.key, |c, v| {
            v.get_ref()
                .parse()
                .or_else(|e| c.report(v.span(), format!("key: {e}")))
        });
        let deploy_hook = self.optional(&raw.deploy_hook, |c, h| c.command(h, "deploy_hook"));
        let failure_hook = self.optional(&raw.failure_hook, |c, h| c.command(h, "failure_hook"));
        let renew_before = self.optional(&raw.renew_before, |c, v| {
            c.some_duration(v, "renew_before", bounds::RENEW_BEFORE)
        });
        let profile = self.optional(&raw.profile, |c, v| c.label(v, "profile"));
        let preferred_chain =
            self.optional(&raw.preferred_chain, |c, v| c.label(v, "preferred_chain"));
        let copy_out = self.copy_out(raw, label);
        let verify_served = self.optional(&raw.verify_served, |c, l| {
            c.socket_addrs(l, "verify_served")
        });
        section?;
        Ok(CertConfig {
            name: name?,
            domains: domains?,
            cas: cas?,
            key: key?.unwrap_or(Defaults::KEY),
            challenge: challenge?,
            deploy_hook: deploy_hook?,
            failure_hook: failure_hook?,
            renew_before: renew_before?,
            profile: profile?,
            preferred_chain: preferred_chain?,
            copy_out: copy_out?,
            verify_served: verify_served?.unwrap_or_default(),
        })
    }

    fn challenge_section(
        &mut self,
        challenge: ChallengeType,
        by_default: bool,
        at: Range<usize>,
        label: &str,
        declared: &Declared,
    ) -> Checked<()> {
        let (present, section, example) = match challenge {
            ChallengeType::Http01 => (declared.http01, "[http01]", "listen = [\"0.0.0.0:80\"] or webroot = \"/var/www/html\""),
            ChallengeType::Dns01 => (declared.dns01, "[dns01]", "add_hook = [\"/usr/local/bin/dns-add\"]"),
            ChallengeType::TlsAlpn01 => (declared.tls_alpn01, "[tls_alpn01]", "listen = [\"0.0.0.0:443\"]"),
            // A challenge type added to core later, before this crate learns its section.
            _ => return self.report(at, format!("cert {label:?}: challenge {challenge} is not supported by this version of renewd")),
        };
        if present {
            return Ok(());
        }
        let how = if by_default { " (the default)" } else { "" };
        self.report(
            at,
            format!("cert {label:?} uses {challenge}{how} but there is no {section} section; add {section} with {example}, or choose another challenge"),
        )
    }

    fn domains(
        &mut self,
        list: &Spanned<StringList>,
        label: &str,
        challenge: Option<ChallengeType>,
    ) -> Checked<Vec<DomainName>> {
        let items = list.get_ref();
        if items.is_empty() {
            return self.report(list.span(), format!("cert {label:?} has an empty domains list; give at least one name, as in [\"example.com\"]"));
        }
        if items.len() > bounds::MAX_DOMAINS {
            return self.report(
                list.span(),
                format!("cert {label:?} has {} domains; CAs accept at most {} names in one certificate, so split it into several [[cert]]", items.len(), bounds::MAX_DOMAINS),
            );
        }
        let mut out: Checked<Vec<DomainName>> = Ok(Vec::new());
        for v in items {
            let s = v.get_ref();
            let checked = match DomainName::new(s) {
                Err(e) => self.report(v.span(), format!("domain {s:?} is not valid: {e}")),
                Ok(d) if out.as_ref().is_ok_and(|seen| seen.contains(&d)) => {
                    self.report(v.span(), format!("domain {:?} is listed twice in cert {label:?}; remove one", d.as_str()))
                }
                Ok(d) if d.is_wildcard() && challenge.is_some_and(|c| c != ChallengeType::Dns01) => self.report(
                    v.span(),
                    format!("{s:?} is a wildcard, which only dns-01 can validate; set challenge = \"dns-01\" in cert {label:?} (with a [dns01] section)"),
                ),
                Ok(d) => Ok(d),
            };
            match (checked, &mut out) {
                (Ok(d), Ok(list)) => list.push(d),
                (Err(Reported), _) => out = Err(Reported),
                (Ok(_), Err(Reported)) => {}
            }
        }
        out
    }

    fn cert_cas(
        &mut self,
        list: &Spanned<StringList>,
        label: &str,
        declared: &Declared,
    ) -> Checked<Vec<CaName>> {
        let configured = if declared.ca_names.is_empty() {
            "no [[ca]] is configured yet; add one".to_string()
        } else {
            format!("configured CAs: {}", declared.ca_names.join(", "))
        };
        if list.get_ref().is_empty() {
            return self.report(
                list.span(),
                format!(
                    "cert {label:?} has an empty cas list; name at least one CA ({configured})"
                ),
            );
        }
        let mut out: Checked<Vec<CaName>> = Ok(Vec::new());
        for v in list.get_ref() {
            let s = v.get_ref();
            let checked = if !declared.ca_names.contains(s) {
                self.report(
                    v.span(),
                    format!("cert {label:?} names CA {s:?}, which is not configured; {configured}"),
                )
            } else if let Ok(name) = CaName::new(s.clone()) {
                if out.as_ref().is_ok_and(|seen| seen.contains(&name)) {
                    self.report(v.span(), format!("cert {label:?} lists CA {s:?} twice; name each CA once, in order of preference"))
                } else {
                    Ok(name)
                }
            } else {
                // The [[ca]] with this invalid name has reported it already.
                Err(Reported)
            };
            match (checked, &mut out) {
                (Ok(n), Ok(list)) => list.push(n),
                (Err(Reported), _) => out = Err(Reported),
                (Ok(_), Err(Reported)) => {}
            }
        }
        out
    }

    fn copy_out(&mut self, raw: &RawCert, label: &str) -> Checked<CopyOut> {
        let mut failed = false;
        let mut abs = |c: &mut Self, key: &str, v: &Field<String>| {
            let r = c.optional(v, |c, p| c.abs_path(p, key));
            failed |= r.is_err();
            r.ok().flatten()
        };
        let cert_path = abs(self, "cert_path", &raw.cert_path);
        let key_path = abs(self, "key_path", &raw.key_path);
        let fullchain_path = abs(self, "fullchain_path", &raw.fullchain_path);
        let chain_path = abs(self, "chain_path", &raw.chain_path);
        // Two copies at one path would overwrite each other.
        let mut seen: Vec<(&str, &Spanned<String>)> = Vec::new();
        for (key, value) in copy_paths(raw) {
            let Some(v) = value else { continue };
            if let Some((first, _)) = seen
                .iter()
                .find(|(_, p)| p.get_ref() == v.get_ref() && Path::new(v.get_ref()).is_absolute())
            {
                failed = true;
                self.problems.push(
                    v.span(),
                    format!("{key} is the same file as {first}; give each copy its own path"),
                );
            }
            seen.push((key, v));
        }
        let any_path = !seen.is_empty();
        let mut account = |c: &mut Self, key: &str, v: &Field<String>| {
            let r = c.optional(v, |c, s| {
                if !any_path {
                    c.report(s.span(), format!("{key} is set but cert {label:?} has no copy-out path (cert_path, key_path, fullchain_path or chain_path); add one or remove {key}"))
                } else if is_account(s.get_ref()) {
                    Ok(s.get_ref().clone())
                } else {
                    c.report(s.span(), format!("{key} {:?} is not a valid user/group name or numeric id", s.get_ref()))
                }
            });
            failed |= r.is_err();
            r.ok().flatten()
        };
        let owner = account(self, "owner", &raw.owner);
        let group = account(self, "group", &raw.group);
        let mode = self.optional(&raw.mode, |c, v: &Spanned<RawMode>| {
            let mode = parse_mode(&v.get_ref().0).or_else(|e| c.report(v.span(), e))?;
            if !any_path {
                return c.report(v.span(), format!("mode is set but cert {label:?} has no copy-out path (cert_path, key_path, fullchain_path or chain_path); add one or remove mode"));
            }
            if raw.key_path.is_some() && mode & 0o007 != 0 {
                return c.report(
                    v.span(),
                    format!("mode {:?} would let every user read the private key copied to key_path; use \"0640\" (with group) or \"0600\"", v.get_ref().0),
                );
            }
            Ok(mode)
        });
        if failed {
            return Err(Reported);
        }
        Ok(CopyOut {
            cert_path,
            key_path,
            fullchain_path,
            chain_path,
            owner,
            group,
            mode: mode?,
        })
    }
}

fn quoted_list(names: &[String]) -> String {
    if names.is_empty() {
        return "\"letsencrypt\"".to_string();
    }
    names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        assert_eq!(parse_mode("0640"), Ok(0o640));
        assert_eq!(parse_mode("600"), Ok(0o600));
        assert!(
            parse_mode("0648")
                .unwrap_err()
                .contains("not an octal mode")
        );
        assert!(parse_mode("64").is_err());
        assert!(parse_mode("rw-r-----").is_err());
        assert!(parse_mode("4755").unwrap_err().contains("setuid"));
    }

    #[test]
    fn accounts() {
        for ok in ["root", "nginx", "_acme", "www-data", "0", "33", "machine$"] {
            assert!(is_account(ok), "{ok}");
        }
        for bad in ["", "-x", "1abc", "a b", "a:b", &"x".repeat(33)] {
            assert!(!is_account(bad), "{bad}");
        }
    }
}
