//! One certbot lineage, read: its renewal configuration and its current certificate (the
//! `live/` files certbot's configuration names, symlinks into `archive/`).

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use renewd_core::{CertName, DomainName, KeyType};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::pem::Pem;
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;

use super::renewal_conf::{self, RenewalConf};

/// certbot's default ACME server when a lineage names none.
pub const LETSENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// How certbot proved control of the lineage's names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// `standalone`: certbot's own HTTP server, on `address:port`.
    Standalone {
        /// `http01_address`, when set (else every address).
        address: Option<IpAddr>,
        /// `http01_port` (default 80).
        port: u16,
    },
    /// `webroot`: files under a document root a web server serves.
    Webroot {
        /// The document roots used, in the order first met (from `[[webroot_map]]`, else
        /// `webroot_path`).
        roots: Vec<String>,
    },
    /// A `dns-*` plugin (`dns-cloudflare`, `dns-route53`, …).
    DnsPlugin {
        /// The authenticator's name.
        plugin: String,
    },
    /// `manual`: a person, or `manual_auth_hook`.
    Manual {
        /// Whether the preferred challenge was dns-01.
        dns: bool,
        /// `manual_auth_hook`, a shell string.
        auth_hook: Option<String>,
        /// `manual_cleanup_hook`, a shell string.
        cleanup_hook: Option<String>,
    },
    /// Another authenticator (`nginx`, `apache`, a third-party plugin): http-01 through a
    /// web server certbot reconfigured on the fly.
    Other {
        /// The authenticator's name.
        authenticator: String,
    },
}

/// certbot's hooks for a lineage, shell strings as the operator wrote them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hooks {
    /// `pre_hook`.
    pub pre: Option<String>,
    /// `deploy_hook` (stored as `renew_hook` by certbot 2.1).
    pub deploy: Option<String>,
    /// `post_hook`.
    pub post: Option<String>,
}

/// The current certificate's facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaf {
    /// The DNS names among its subjectAltNames, in certificate order.
    pub domains: Vec<DomainName>,
    /// Serial, lower-case hex without leading zeros.
    pub serial: String,
    /// notBefore.
    pub not_before: DateTime<Utc>,
    /// notAfter.
    pub not_after: DateTime<Utc>,
    /// Its key type, when renewd issues that type.
    pub key_type: Option<KeyType>,
    /// The key as a person would say it (`RSA 2048`, `ECDSA P-384`), for messages.
    pub key_text: String,
}

/// One lineage, read and checked.
#[derive(Debug, Clone)]
pub struct Lineage {
    /// Its `renewal/NAME.conf`.
    pub source: PathBuf,
    /// certbot's lineage name (the file's stem).
    pub lineage: String,
    /// The renewd certificate name made from it.
    pub name: CertName,
    /// The ACME directory URL it renews at.
    pub server: String,
    /// How it proved control.
    pub method: Method,
    /// Its hooks.
    pub hooks: Hooks,
    /// An explicit `renew_before_expiry`.
    pub renew_before: Option<Duration>,
    /// The current certificate.
    pub leaf: Leaf,
    /// `fullchain.pem`'s contents: the leaf, then the intermediates.
    pub fullchain_pem: String,
    /// `privkey.pem`'s contents.
    pub privkey_pem: String,
    /// The live directory certbot's files are in, for messages.
    pub live_dir: PathBuf,
}

/// Reads the lineage whose renewal configuration is `conf_path`.
pub fn read_lineage(conf_path: &Path) -> Result<Lineage, String> {
    let lineage = conf_path
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or("the file name is not UTF-8")?
        .to_string();
    let text = fs::read_to_string(conf_path).map_err(|e| format!("reading it: {e}"))?;
    let conf = renewal_conf::parse(&text)?;
    let file = |key: &str| {
        conf.top(key)
            .map(PathBuf::from)
            .ok_or_else(|| format!("it names no `{key}` file"))
    };
    let (cert_path, fullchain_path, privkey_path) =
        (file("cert")?, file("fullchain")?, file("privkey")?);
    let read =
        |path: &Path| fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()));
    let cert_pem = read(&cert_path)?;
    let fullchain_pem = read(&fullchain_path)?;
    let privkey_pem = read(&privkey_path)?;

    let leaf_der = first_certificate(&cert_pem)
        .ok_or_else(|| format!("{}: holds no PEM certificate", cert_path.display()))?;
    if first_certificate(&fullchain_pem).as_ref() != Some(&leaf_der) {
        return Err(format!(
            "{} does not start with the certificate in {}",
            fullchain_path.display(),
            cert_path.display()
        ));
    }
    let leaf = leaf_facts(&leaf_der).map_err(|e| format!("{}: {e}", cert_path.display()))?;

    Ok(Lineage {
        source: conf_path.to_path_buf(),
        name: cert_name(&lineage),
        lineage,
        server: conf
            .param("server")
            .unwrap_or_else(|| LETSENCRYPT.to_string()),
        method: method(&conf)?,
        hooks: Hooks {
            pre: conf.param("pre_hook"),
            deploy: conf
                .param("deploy_hook")
                .or_else(|| conf.param("renew_hook")),
            post: conf.param("post_hook"),
        },
        renew_before: conf
            .top("renew_before_expiry")
            .map(|v| parse_interval(&v))
            .transpose()?,
        leaf,
        fullchain_pem,
        privkey_pem,
        live_dir: cert_path
            .parent()
            .map_or_else(PathBuf::new, Path::to_path_buf),
    })
}

/// certbot's lineage name as a renewd certificate name: characters renewd does not allow
/// become `-`, a name not starting with a letter or digit gets `cert-` in front, and it is
/// cut to 64 characters.
pub fn cert_name(lineage: &str) -> CertName {
    let mut s: String = lineage
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    if !s.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        s.insert_str(0, "cert-");
    }
    s.truncate(64);
    // Only allowed characters, a good start, at most 64 of them: always valid.
    CertName::new(s).unwrap_or_else(|_| CertName::new("imported").expect("a valid name"))
}

fn method(conf: &RenewalConf) -> Result<Method, String> {
    let authenticator = conf
        .param("authenticator")
        .unwrap_or_else(|| "standalone".to_string());
    // Third-party plugins may be spelled `package:name`.
    let short = authenticator
        .rsplit(':')
        .next()
        .unwrap_or(&authenticator)
        .to_string();
    Ok(match short.as_str() {
        "standalone" => Method::Standalone {
            address: conf
                .param("http01_address")
                .map(|a| {
                    a.parse()
                        .map_err(|_| format!("http01_address {a:?} is not an IP address"))
                })
                .transpose()?,
            port: conf
                .param("http01_port")
                .map(|p| {
                    p.parse()
                        .map_err(|_| format!("http01_port {p:?} is not a port number"))
                })
                .transpose()?
                .unwrap_or(80),
        },
        "webroot" => {
            let mut roots: Vec<String> = Vec::new();
            for root in conf
                .webroot_map
                .values()
                .cloned()
                .chain(conf.param_list("webroot_path"))
            {
                if !roots.contains(&root) {
                    roots.push(root);
                }
            }
            Method::Webroot { roots }
        }
        "manual" => Method::Manual {
            dns: conf
                .param_list("pref_challs")
                .first()
                .is_some_and(|c| c.starts_with("dns")),
            auth_hook: conf.param("manual_auth_hook"),
            cleanup_hook: conf.param("manual_cleanup_hook"),
        },
        dns if dns.starts_with("dns-") => Method::DnsPlugin {
            plugin: dns.to_string(),
        },
        _ => Method::Other { authenticator },
    })
}

/// `30 days`, `2 weeks`, `12 hours`: certbot's `renew_before_expiry`.
fn parse_interval(text: &str) -> Result<Duration, String> {
    let bad =
        || format!("renew_before_expiry {text:?} is not a number and a unit such as \"30 days\"");
    let mut words = text.split_whitespace();
    let n: u64 = words.next().and_then(|n| n.parse().ok()).ok_or_else(bad)?;
    let unit = words.next().unwrap_or("days").trim_end_matches('s');
    let secs = match unit {
        "second" => 1,
        "minute" => 60,
        "hour" => 3600,
        "day" => 86_400,
        "week" => 7 * 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(secs).map(Duration::from_secs).ok_or_else(bad)
}

fn first_certificate(pem: &str) -> Option<Vec<u8>> {
    Pem::iter_from_buffer(pem.as_bytes())
        .filter_map(Result::ok)
        .find(|p| p.label == "CERTIFICATE")
        .map(|p| p.contents)
}

fn leaf_facts(der: &[u8]) -> Result<Leaf, String> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| format!("does not parse: {e}"))?;
    let mut domains = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::DNSName(d) = name {
                let d = DomainName::new(d).map_err(|e| format!("its name {d:?}: {e}"))?;
                if !domains.contains(&d) {
                    domains.push(d);
                }
            }
        }
    }
    if domains.is_empty() {
        return Err("it holds no DNS names".to_string());
    }
    let serial: String = cert
        .raw_serial()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let serial = match serial.trim_start_matches('0') {
        "" => "0".to_string(),
        s => s.to_string(),
    };
    let time = |t: i64| DateTime::from_timestamp(t, 0).ok_or("a date out of range");
    let validity = cert.validity();
    let (key_type, key_text) = key_of(&cert);
    Ok(Leaf {
        domains,
        serial,
        not_before: time(validity.not_before.timestamp())?,
        not_after: time(validity.not_after.timestamp())?,
        key_type,
        key_text,
    })
}

fn key_of(cert: &X509Certificate<'_>) -> (Option<KeyType>, String) {
    match cert.public_key().parsed() {
        Ok(PublicKey::RSA(rsa)) => {
            let bits = rsa.key_size();
            let t = match bits {
                2048 => Some(KeyType::Rsa2048),
                3072 => Some(KeyType::Rsa3072),
                4096 => Some(KeyType::Rsa4096),
                _ => None,
            };
            (t, format!("RSA {bits}"))
        }
        Ok(PublicKey::EC(ec)) => {
            let bits = ec.key_size();
            let t = match bits {
                256 => Some(KeyType::EcdsaP256),
                384 => Some(KeyType::EcdsaP384),
                _ => None,
            };
            (t, format!("ECDSA {bits}-bit"))
        }
        _ => (None, "an unknown key type".to_string()),
    }
}

/// The renewd key type closest to `leaf`'s for one renewd cannot issue: RSA of another
/// size → RSA 4096 when larger, else 2048; other curves → P-384.
pub fn closest_key_type(leaf: &Leaf) -> KeyType {
    if let Some(k) = leaf.key_type {
        return k;
    }
    let bits: u32 = leaf
        .key_text
        .split_whitespace()
        .nth(1)
        .and_then(|b| b.trim_end_matches("-bit").parse().ok())
        .unwrap_or(0);
    if leaf.key_text.starts_with("RSA") {
        if bits > 4096 {
            KeyType::Rsa4096
        } else {
            KeyType::Rsa2048
        }
    } else {
        KeyType::EcdsaP384
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lineage_names_become_cert_names() {
        assert_eq!(cert_name("www.example.com").as_str(), "www.example.com");
        assert_eq!(cert_name("example.com-0001").as_str(), "example.com-0001");
        assert_eq!(cert_name("*.example.com").as_str(), "cert--.example.com");
        assert_eq!(cert_name("_x y").as_str(), "cert-_x-y");
        assert_eq!(cert_name(&"a".repeat(100)).as_str().len(), 64);
    }

    #[test]
    fn renew_before_expiry_spellings() {
        assert_eq!(
            parse_interval("30 days"),
            Ok(Duration::from_secs(30 * 86_400))
        );
        assert_eq!(
            parse_interval("2 weeks"),
            Ok(Duration::from_secs(14 * 86_400))
        );
        assert_eq!(parse_interval("1 day"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_interval("12"), Ok(Duration::from_secs(12 * 86_400)));
        assert!(parse_interval("soon").is_err());
        assert!(parse_interval("3 fortnights").is_err());
        assert!(parse_interval(&format!("{} weeks", u64::MAX)).is_err());
    }

    #[test]
    fn methods_from_the_authenticator() {
        let m = |text: &str| method(&renewal_conf::parse(text).unwrap());
        assert_eq!(
            m(
                "[renewalparams]\nauthenticator = standalone\nhttp01_port = 8080\nhttp01_address = 127.0.0.1\n"
            ),
            Ok(Method::Standalone {
                address: Some("127.0.0.1".parse().unwrap()),
                port: 8080
            })
        );
        assert_eq!(
            m("[renewalparams]\n"),
            Ok(Method::Standalone {
                address: None,
                port: 80
            })
        );
        assert_eq!(
            m(
                "[renewalparams]\nauthenticator = webroot\nwebroot_path = /a, /b,\n[[webroot_map]]\nx.example = /b\n"
            ),
            Ok(Method::Webroot {
                roots: vec!["/b".into(), "/a".into()]
            })
        );
        assert_eq!(
            m("[renewalparams]\nauthenticator = dns-cloudflare\n"),
            Ok(Method::DnsPlugin {
                plugin: "dns-cloudflare".into()
            })
        );
        assert_eq!(
            m(
                "[renewalparams]\nauthenticator = manual\npref_challs = dns-01,\nmanual_auth_hook = /usr/local/bin/auth.sh\n"
            ),
            Ok(Method::Manual {
                dns: true,
                auth_hook: Some("/usr/local/bin/auth.sh".into()),
                cleanup_hook: None
            })
        );
        assert_eq!(
            m("[renewalparams]\nauthenticator = nginx\n"),
            Ok(Method::Other {
                authenticator: "nginx".into()
            })
        );
        assert!(m("[renewalparams]\nhttp01_port = eighty\n").is_err());
    }
}
