//! certbot's `renewal/NAME.conf`: configobj's INI dialect as certbot writes it.
//!
//! ```text
//! # renew_before_expiry = 30 days
//! version = 2.1.0
//! cert = /etc/letsencrypt/live/NAME/cert.pem
//! ...
//! [renewalparams]
//! authenticator = webroot
//! webroot_path = /var/www/html,
//! [[webroot_map]]
//! www.example.com = /var/www/html
//! ```
//!
//! Keys before the first section are the lineage's files; `[renewalparams]` holds the
//! options certbot renews with; `[[webroot_map]]` (a sub-section) maps domains to document
//! roots. Values may be quoted (`"…"`, `'…'`); an unquoted value with a comma is a list
//! (`a, b,`); `#` starts a comment outside quotes. A commented `renew_before_expiry` is
//! certbot's default, an uncommented one the operator's choice.

use std::collections::BTreeMap;

/// A parsed renewal configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RenewalConf {
    /// Keys before any section (`version`, `archive_dir`, `cert`, `privkey`, `chain`,
    /// `fullchain`, `renew_before_expiry`).
    pub top: BTreeMap<String, String>,
    /// `[renewalparams]`.
    pub params: BTreeMap<String, String>,
    /// `[[webroot_map]]`: domain → document root.
    pub webroot_map: BTreeMap<String, String>,
}

impl RenewalConf {
    /// A top-level key's value, unquoted.
    pub fn top(&self, key: &str) -> Option<String> {
        self.top.get(key).map(|v| scalar(v))
    }

    /// A `[renewalparams]` value, unquoted; `None` when absent, empty or `None` (certbot
    /// writes Python's `None` for unset options).
    pub fn param(&self, key: &str) -> Option<String> {
        self.params
            .get(key)
            .map(|v| scalar(v))
            .filter(|v| !v.is_empty() && v != "None")
    }

    /// A `[renewalparams]` list value (`a, b,`), each element unquoted, empty ones dropped.
    pub fn param_list(&self, key: &str) -> Vec<String> {
        self.params.get(key).map_or_else(Vec::new, |v| list(v))
    }
}

/// Parses `text`; `Err` names the line that is not `key = value` or a section header.
pub fn parse(text: &str) -> Result<RenewalConf, String> {
    #[derive(PartialEq)]
    enum Section {
        Top,
        Params,
        WebrootMap,
        Other,
    }
    let mut conf = RenewalConf::default();
    let mut section = Section::Top;
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('[') {
            let name = line.trim_matches(|c| c == '[' || c == ']').trim();
            let depth = line.chars().take_while(|c| *c == '[').count();
            section = match (depth, name) {
                (1, "renewalparams") => Section::Params,
                (2, "webroot_map") if matches!(section, Section::Params | Section::WebrootMap) => {
                    Section::WebrootMap
                }
                _ => Section::Other,
            };
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!(
                "line {}: expected `key = value` or a [section], found {line:?}",
                index + 1
            ));
        };
        let (key, value) = (key.trim().to_string(), value.trim().to_string());
        match section {
            Section::Top => conf.top.insert(key, value),
            Section::Params => conf.params.insert(key, value),
            Section::WebrootMap => conf.webroot_map.insert(key, scalar(&value)),
            Section::Other => None,
        };
    }
    Ok(conf)
}

/// A raw value as one string: quotes removed, a trailing comment dropped. An unquoted list
/// (`a, b`) stays as written, minus a trailing comma.
fn scalar(raw: &str) -> String {
    let raw = raw.trim();
    if let Some((quoted, _rest)) = quoted(raw) {
        return quoted;
    }
    let value = strip_comment(raw).trim();
    value.strip_suffix(',').unwrap_or(value).trim().to_string()
}

/// A raw value as a list: elements split at commas outside quotes, unquoted, empty ones
/// dropped.
fn list(raw: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = raw.trim();
    while !rest.is_empty() {
        let (item, after) = match quoted(rest) {
            Some((item, after)) => (item, after),
            None => {
                let end = rest.find([',', '#']).unwrap_or(rest.len());
                (rest[..end].trim().to_string(), &rest[end..])
            }
        };
        if !item.is_empty() {
            out.push(item);
        }
        let after = after.trim_start();
        match after.strip_prefix(',') {
            Some(next) => rest = next.trim_start(),
            None => break,
        }
    }
    out
}

/// `"text" rest` or `'text' rest` → (text, rest); `None` when `s` does not start with a
/// quote or the quote is not closed.
fn quoted(s: &str) -> Option<(String, &str)> {
    let quote = s.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let triple: String = std::iter::repeat_n(quote, 3).collect();
    if let Some(body) = s.strip_prefix(&triple) {
        let end = body.find(&triple)?;
        return Some((body[..end].to_string(), &body[end + 3..]));
    }
    let body = &s[1..];
    let end = body.find(quote)?;
    Some((body[..end].to_string(), &body[end + 1..]))
}

fn strip_comment(s: &str) -> &str {
    // configobj needs whitespace before an inline comment's `#`.
    match s.find(" #") {
        Some(i) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEBROOT: &str = "\
# renew_before_expiry = 30 days
version = 2.1.0
archive_dir = /etc/letsencrypt/archive/w.example
cert = /etc/letsencrypt/live/w.example/cert.pem
privkey = /etc/letsencrypt/live/w.example/privkey.pem

# Options used in the renewal process
[renewalparams]
account = d514e19f3d39452e3bfc1661a57b615c
key_type = ecdsa
elliptic_curve = secp384r1
pref_challs = http-01,
post_hook = systemctl reload nginx
deploy_hook = \"cp -f $RENEWED_LINEAGE/fullchain.pem /etc/x, then reload\"
pre_hook = None
server = https://acme-v02.api.letsencrypt.org/directory
authenticator = webroot
webroot_path = /var/www/a, '/var/www/b c',
[[webroot_map]]
w.example = /var/www/a
x.example = '/var/www/b c'
";

    #[test]
    fn reads_what_certbot_writes() {
        let conf = parse(WEBROOT).unwrap();
        assert_eq!(
            conf.top("cert").as_deref(),
            Some("/etc/letsencrypt/live/w.example/cert.pem")
        );
        assert_eq!(conf.top("renew_before_expiry"), None, "commented out");
        assert_eq!(conf.param("authenticator").as_deref(), Some("webroot"));
        assert_eq!(conf.param("pref_challs").as_deref(), Some("http-01"));
        assert_eq!(conf.param_list("pref_challs"), ["http-01"]);
        assert_eq!(
            conf.param("post_hook").as_deref(),
            Some("systemctl reload nginx")
        );
        assert_eq!(
            conf.param("deploy_hook").as_deref(),
            Some("cp -f $RENEWED_LINEAGE/fullchain.pem /etc/x, then reload")
        );
        assert_eq!(conf.param("pre_hook"), None);
        assert_eq!(conf.param("missing"), None);
        assert_eq!(
            conf.param_list("webroot_path"),
            ["/var/www/a", "/var/www/b c"]
        );
        assert_eq!(conf.webroot_map["x.example"], "/var/www/b c");
        assert_eq!(conf.webroot_map.len(), 2);
    }

    #[test]
    fn an_uncommented_renew_before_expiry_and_comments() {
        let conf =
            parse("renew_before_expiry = 20 days  # mine\n[renewalparams]\nhttp01_port = 8080\n")
                .unwrap();
        assert_eq!(conf.top("renew_before_expiry").as_deref(), Some("20 days"));
        assert_eq!(conf.param("http01_port").as_deref(), Some("8080"));
    }

    #[test]
    fn unknown_sections_are_skipped_and_garbage_is_an_error() {
        let conf = parse("[other]\nx = 1\n[[webroot_map]]\na = b\n").unwrap();
        assert!(conf.params.is_empty() && conf.webroot_map.is_empty());
        let err = parse("cert = a\nthis is not ini\n").unwrap_err();
        assert!(err.starts_with("line 2: "), "{err}");
        // Unclosed quotes and odd lists do not panic.
        let conf = parse("[renewalparams]\na = \"open\nb = ,,'x\n").unwrap();
        assert_eq!(conf.param("a").as_deref(), Some("\"open"));
        assert_eq!(conf.param_list("b"), ["'x"]);
    }
}
