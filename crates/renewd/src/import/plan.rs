//! From certbot's lineages to renewd's config, decided: which CAs, which `[http01]` and
//! `[dns01]` sections, and one `[[cert]]` per lineage with its key, challenge and deploy
//! hook. Everything that does not carry over exactly becomes a note in the config.
//!
//! renewd has one `[http01]` and one `[dns01]` section for all certificates, certbot a
//! method per lineage. A webroot wins over standalone (a web server owns port 80 then);
//! the webroot most lineages used wins over others; standalone lineages listen on every
//! address and port certbot used. certbot's DNS plugins hold credentials renewd cannot use:
//! `[dns01]` gets a placeholder hook that fails loudly until it is replaced, unless a
//! `manual` lineage's auth hook can stand in.

use std::path::Path;
use std::time::Duration;

use renewd_core::{CaName, CertName, ChallengeType, DomainName, KeyType};

use super::hooks::{HookDirs, deploy_hook, dns_hook, shell_quote};
use super::lineage::{Lineage, Method, closest_key_type};

/// The config to write, decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// One CA per distinct ACME server.
    pub cas: Vec<CaEntry>,
    /// `[http01]`, when any certificate uses http-01.
    pub http01: Option<Http01Entry>,
    /// `[dns01]`, when any certificate uses dns-01.
    pub dns01: Option<Dns01Entry>,
    /// One per lineage.
    pub certs: Vec<CertEntry>,
}

/// A `[[ca]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaEntry {
    /// Its name.
    pub name: CaName,
    /// The ACME directory URL.
    pub directory: String,
    /// Notes written above it.
    pub notes: Vec<String>,
}

/// `[http01]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Http01Entry {
    /// `listen` or `webroot`.
    pub how: Http01How,
    /// Notes written above it.
    pub notes: Vec<String>,
}

/// How http-01 is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Http01How {
    /// renewd listens on these addresses.
    Listen(Vec<String>),
    /// A web server serves this document root.
    Webroot(String),
}

/// `[dns01]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dns01Entry {
    /// `add_hook`.
    pub add_hook: Vec<String>,
    /// `remove_hook`.
    pub remove_hook: Option<Vec<String>>,
    /// Notes written above it.
    pub notes: Vec<String>,
}

/// A `[[cert]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertEntry {
    /// Its name.
    pub name: CertName,
    /// Its names, from the current certificate.
    pub domains: Vec<DomainName>,
    /// The CA it renews at.
    pub ca: CaName,
    /// Its key type.
    pub key: KeyType,
    /// Its challenge.
    pub challenge: ChallengeType,
    /// `deploy_hook`.
    pub deploy_hook: Option<Vec<String>>,
    /// `renew_before`.
    pub renew_before: Option<Duration>,
    /// Notes written above it.
    pub notes: Vec<String>,
}

/// Decides the config for `lineages`, whose certificates will live under `state_dir`.
pub fn plan(lineages: &[Lineage], state_dir: &Path, hook_dirs: &HookDirs) -> Plan {
    let mut cas: Vec<CaEntry> = Vec::new();
    let mut imported = 0;
    let mut certs = Vec::new();
    for l in lineages {
        let ca = match cas.iter().find(|c| c.directory == l.server) {
            Some(c) => c.name.clone(),
            None => {
                let name = ca_name(&l.server, &cas, &mut imported);
                cas.push(CaEntry {
                    name: name.clone(),
                    directory: l.server.clone(),
                    notes: ca_notes(&l.server),
                });
                name
            }
        };
        certs.push(cert_entry(l, ca, state_dir, hook_dirs));
    }
    Plan {
        cas,
        http01: http01(lineages),
        dns01: dns01(lineages),
        certs,
    }
}

fn cert_entry(l: &Lineage, ca: CaName, state_dir: &Path, hook_dirs: &HookDirs) -> CertEntry {
    let mut notes = vec![format!(
        "certbot lineage {:?} ({}); its files were in {}",
        l.lineage,
        l.source.display(),
        l.live_dir.display()
    )];
    let key = closest_key_type(&l.leaf);
    if l.leaf.key_type.is_none() {
        notes.push(format!(
            "NOTE: the certificate has {}, which renewd does not issue; renewd replaces it \
             with a {key} certificate at its first start",
            l.leaf.key_text
        ));
    }
    let challenge = match &l.method {
        Method::DnsPlugin { .. } | Method::Manual { dns: true, .. } => ChallengeType::Dns01,
        _ => ChallengeType::Http01,
    };
    match &l.method {
        Method::Manual {
            auth_hook: None, ..
        } => notes.push(
            "NOTE: certbot renewed this one by hand (manual, no auth hook); renewd renews \
             unattended through the challenge section below — make sure it can answer"
                .to_string(),
        ),
        Method::Manual {
            dns: false,
            auth_hook: Some(_),
            ..
        } => notes.push(
            "NOTE: certbot's manual http-01 auth hook does not carry over; renewd answers \
             http-01 through [http01]"
                .to_string(),
        ),
        Method::Other { authenticator } => notes.push(format!(
            "NOTE: certbot answered http-01 through its {authenticator:?} plugin, which \
             reconfigured the web server; renewd uses [http01]: a webroot the server serves \
             at /.well-known/acme-challenge/, or a port it proxies that path to"
        )),
        _ => {}
    }
    let live = state_dir.join("certs").join(l.name.as_str()).join("live");
    let hook = deploy_hook(&l.hooks, hook_dirs, &live, &l.leaf.domains);
    notes.extend(hook.notes);
    notes.push(format!(
        "Point your servers at {}/{{fullchain,privkey}}.pem (or add cert_path, \
         fullchain_path, key_path copies): certbot's files no longer change",
        live.display()
    ));
    CertEntry {
        name: l.name.clone(),
        domains: l.leaf.domains.clone(),
        ca,
        key,
        challenge,
        deploy_hook: hook.argv,
        renew_before: l.renew_before,
        notes,
    }
}

/// A name for the CA at `url`: the well-known ones by name, others `imported-N`.
fn ca_name(url: &str, taken: &[CaEntry], imported: &mut usize) -> CaName {
    let host = url
        .parse::<http::Uri>()
        .ok()
        .and_then(|u| u.host().map(str::to_ascii_lowercase))
        .unwrap_or_default();
    let known = match host.as_str() {
        "acme-v02.api.letsencrypt.org" => Some("letsencrypt"),
        "acme-staging-v02.api.letsencrypt.org" => Some("letsencrypt-staging"),
        "acme.zerossl.com" => Some("zerossl"),
        "api.buypass.com" => Some("buypass"),
        "api.test4.buypass.no" => Some("buypass-test"),
        "dv.acme-v02.api.pki.goog" => Some("google"),
        "dv.acme-v02.test-api.pki.goog" => Some("google-test"),
        _ => None,
    };
    let free = |n: &CaName| !taken.iter().any(|c| &c.name == n);
    if let Some(name) = known.and_then(|k| CaName::new(k).ok()).filter(free) {
        return name;
    }
    loop {
        *imported += 1;
        let name = CaName::new(format!("imported-{imported}")).expect("a valid name");
        if free(&name) {
            return name;
        }
    }
}

fn ca_notes(url: &str) -> Vec<String> {
    let mut notes = vec![
        "contact = [\"mailto:you@example.com\"]   # certbot keeps the account's e-mail at the CA only"
            .to_string(),
    ];
    if url.contains("zerossl.com") {
        notes.push(
            "NOTE: ZeroSSL requires external account binding: add eab_kid and \
             eab_hmac_key_file (from your ZeroSSL dashboard) before renewd's first order"
                .to_string(),
        );
    }
    notes
}

fn http01(lineages: &[Lineage]) -> Option<Http01Entry> {
    let http: Vec<&Lineage> = lineages
        .iter()
        .filter(|l| {
            !matches!(
                l.method,
                Method::DnsPlugin { .. } | Method::Manual { dns: true, .. }
            )
        })
        .collect();
    if http.is_empty() {
        return None;
    }
    let mut notes = Vec::new();
    // The document root most lineages used (the first met among equals).
    let mut roots: Vec<(String, usize)> = Vec::new();
    for l in &http {
        if let Method::Webroot { roots: used } = &l.method {
            for r in used {
                match roots.iter_mut().find(|(root, _)| root == r) {
                    Some((_, n)) => *n += 1,
                    None => roots.push((r.clone(), 1)),
                }
            }
        }
    }
    let best = roots
        .iter()
        .enumerate()
        .max_by_key(|(i, (_, n))| (*n, std::cmp::Reverse(*i)))
        .map(|(_, (r, _))| r.clone());
    if let Some(root) = best {
        for l in &http {
            match &l.method {
                Method::Webroot { roots } if roots.iter().all(|r| r == &root) => {}
                Method::Webroot { roots } => notes.push(format!(
                    "NOTE: {} used the webroot(s) {}; renewd has one webroot for all: make \
                     {root} serve /.well-known/acme-challenge/ for its names too",
                    l.lineage,
                    roots.join(", ")
                )),
                Method::Standalone { port, .. } => notes.push(format!(
                    "NOTE: {} used certbot's standalone server on port {port}; with a web \
                     server on port 80 renewd writes its answers into the webroot instead",
                    l.lineage
                )),
                _ => {}
            }
        }
        return Some(Http01Entry {
            how: Http01How::Webroot(root),
            notes,
        });
    }
    let mut listen: Vec<String> = Vec::new();
    for l in &http {
        if let Method::Standalone { address, port } = &l.method {
            let addr = match address {
                Some(a @ std::net::IpAddr::V6(_)) => format!("[{a}]:{port}"),
                Some(a) => format!("{a}:{port}"),
                None => format!("0.0.0.0:{port}"),
            };
            if !listen.contains(&addr) {
                listen.push(addr);
            }
        }
    }
    // 0.0.0.0:P covers every IPv4 address on P: a specific one beside it could not bind.
    let wildcard: Vec<String> = listen
        .iter()
        .filter_map(|a| a.strip_prefix("0.0.0.0:").map(str::to_string))
        .collect();
    listen.retain(|a| {
        a.starts_with("0.0.0.0:")
            || a.starts_with('[')
            || !wildcard.iter().any(|p| a.ends_with(&format!(":{p}")))
    });
    if listen.is_empty() {
        listen.push("0.0.0.0:80".to_string());
        notes.push(
            "NOTE: no lineage used certbot's standalone server or a webroot; renewd answers \
             http-01 itself on port 80 here — or set webroot = \"/var/www/html\" instead"
                .to_string(),
        );
    }
    if listen.iter().any(|a| a.starts_with("0.0.0.0:")) {
        notes.push(
            "add \"[::]:PORT\" beside 0.0.0.0:PORT when your names have AAAA records".to_string(),
        );
    }
    Some(Http01Entry {
        how: Http01How::Listen(listen),
        notes,
    })
}

fn dns01(lineages: &[Lineage]) -> Option<Dns01Entry> {
    let dns: Vec<&Lineage> = lineages
        .iter()
        .filter(|l| {
            matches!(
                l.method,
                Method::DnsPlugin { .. } | Method::Manual { dns: true, .. }
            )
        })
        .collect();
    if dns.is_empty() {
        return None;
    }
    let mut auth_hooks: Vec<(&str, Option<&str>)> = Vec::new();
    let mut plugins: Vec<String> = Vec::new();
    for l in &dns {
        match &l.method {
            Method::Manual {
                auth_hook: Some(add),
                cleanup_hook,
                ..
            } => {
                let pair = (add.as_str(), cleanup_hook.as_deref());
                if !auth_hooks.contains(&pair) {
                    auth_hooks.push(pair);
                }
            }
            Method::DnsPlugin { plugin } if !plugins.contains(plugin) => {
                plugins.push(plugin.clone());
            }
            _ => {}
        }
    }
    let names: Vec<&str> = dns.iter().map(|l| l.lineage.as_str()).collect();
    if let ([(add, remove)], true) = (auth_hooks.as_slice(), plugins.is_empty()) {
        return Some(Dns01Entry {
            add_hook: dns_hook(add),
            remove_hook: remove.map(dns_hook),
            notes: vec![format!(
                "certbot's manual auth/cleanup hooks of {}, run by /bin/sh -c with \
                 CERTBOT_DOMAIN and CERTBOT_VALIDATION set from renewd's RENEWD_DOMAIN and \
                 RENEWD_DNS_VALUE",
                names.join(", ")
            )],
        });
    }
    let what = if !plugins.is_empty() {
        format!("its {} plugin", plugins.join(", "))
    } else if auth_hooks.len() > 1 {
        "several manual auth hooks".to_string()
    } else {
        "manual validation by hand".to_string()
    };
    let message = format!(
        "renewd: [dns01] add_hook is the placeholder written by renewd import certbot; replace it with a program that publishes the TXT record RENEWD_DNS_NAME = RENEWD_DNS_VALUE ({what} did it for certbot)"
    );
    Some(Dns01Entry {
        add_hook: vec![
            "/bin/sh".to_string(),
            "-c".to_string(),
            format!("echo {} >&2; exit 1", shell_quote(&message)),
        ],
        remove_hook: None,
        notes: vec![
            format!(
                "NOTE: certbot used {what} for {}: its credentials do not carry over. REPLACE \
                 this placeholder, which fails every dns-01 attempt, with programs that \
                 publish and remove the TXT record; they get RENEWD_DNS_NAME, \
                 RENEWD_DNS_VALUE and RENEWD_DOMAIN in their environment",
                names.join(", ")
            ),
            "e.g. add_hook = [\"/usr/local/bin/dns-add\"], remove_hook = [\"/usr/local/bin/dns-del\"]"
                .to_string(),
        ],
    })
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
