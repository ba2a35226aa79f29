use std::net::SocketAddr;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use renewd_config::{Config, Http01Config, LoadEnv};

use super::*;
use crate::import::lineage::{Hooks, LETSENCRYPT, Leaf, Lineage, cert_name};
use crate::import::render::render;

fn lineage(name: &str, server: &str, method: Method, domains: &[&str]) -> Lineage {
    Lineage {
        source: PathBuf::from(format!("/etc/letsencrypt/renewal/{name}.conf")),
        lineage: name.to_string(),
        name: cert_name(name),
        server: server.to_string(),
        method,
        hooks: Hooks::default(),
        renew_before: None,
        leaf: Leaf {
            domains: domains
                .iter()
                .map(|d| DomainName::new(d).unwrap())
                .collect(),
            serial: "1".into(),
            not_before: DateTime::<Utc>::UNIX_EPOCH,
            not_after: DateTime::<Utc>::UNIX_EPOCH,
            key_type: Some(KeyType::EcdsaP256),
            key_text: "ECDSA 256-bit".into(),
        },
        fullchain_pem: String::new(),
        privkey_pem: String::new(),
        live_dir: PathBuf::from(format!("/etc/letsencrypt/live/{name}")),
    }
}

fn webroot(roots: &[&str]) -> Method {
    Method::Webroot {
        roots: roots.iter().map(|r| r.to_string()).collect(),
    }
}

fn standalone(address: Option<&str>, port: u16) -> Method {
    Method::Standalone {
        address: address.map(|a| a.parse().unwrap()),
        port,
    }
}

/// Plans, renders and loads the config with renewd's own validation.
fn config_of(lineages: &[Lineage]) -> (Plan, String, Config) {
    let plan = plan(lineages, Path::new("/var/lib/renewd"), &HookDirs::default());
    let text = render(
        &plan,
        Path::new("/var/lib/renewd"),
        Path::new("/etc/letsencrypt"),
    );
    let config = Config::from_str(&text, Path::new("imported.toml"), &LoadEnv::default())
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    (plan, text, config)
}

#[test]
fn cas_are_named_by_server() {
    let (_, _, config) = config_of(&[
        lineage("a", LETSENCRYPT, standalone(None, 80), &["a.example"]),
        lineage(
            "b",
            "https://acme-staging-v02.api.letsencrypt.org/directory",
            standalone(None, 80),
            &["b.example"],
        ),
        lineage(
            "c",
            "https://acme.zerossl.com/v2/DV90",
            standalone(None, 80),
            &["c.example"],
        ),
        lineage(
            "d",
            "https://ca.internal.example/acme/dir",
            standalone(None, 80),
            &["d.example"],
        ),
        lineage("e", LETSENCRYPT, standalone(None, 80), &["e.example"]),
        lineage(
            "f",
            "https://other.example/dir",
            standalone(None, 80),
            &["f.example"],
        ),
    ]);
    let names: Vec<&str> = config.cas.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "letsencrypt",
            "letsencrypt-staging",
            "zerossl",
            "imported-1",
            "imported-2"
        ]
    );
    assert_eq!(
        config.cas[3].directory.to_string(),
        "https://ca.internal.example/acme/dir"
    );
    let cas_of = |n: &str| config.cert(&cert_name(n)).unwrap().cas[0].to_string();
    assert_eq!(cas_of("e"), "letsencrypt");
    assert_eq!(cas_of("f"), "imported-2");
}

#[test]
fn the_most_used_webroot_wins_and_the_others_are_noted() {
    let (plan, text, config) = config_of(&[
        lineage("a", LETSENCRYPT, webroot(&["/srv/a"]), &["a.example"]),
        lineage(
            "b",
            LETSENCRYPT,
            webroot(&["/var/www/html"]),
            &["b.example"],
        ),
        lineage(
            "c",
            LETSENCRYPT,
            webroot(&["/var/www/html"]),
            &["c.example"],
        ),
        lineage("d", LETSENCRYPT, standalone(None, 80), &["d.example"]),
    ]);
    assert_eq!(
        config.http01,
        Some(Http01Config::Webroot {
            path: "/var/www/html".into()
        })
    );
    let notes = &plan.http01.unwrap().notes;
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(
        text.contains("# NOTE: a used the webroot(s) /srv/a"),
        "{text}"
    );
    assert!(
        text.contains("# NOTE: d used certbot's standalone server on port 80"),
        "{text}"
    );
}

#[test]
fn standalone_listens_where_certbot_did() {
    let (_, text, config) = config_of(&[
        lineage(
            "a",
            LETSENCRYPT,
            standalone(Some("127.0.0.1"), 8080),
            &["a.example"],
        ),
        lineage("b", LETSENCRYPT, standalone(None, 80), &["b.example"]),
        lineage(
            "c",
            LETSENCRYPT,
            standalone(Some("127.0.0.1"), 80),
            &["c.example"],
        ),
        lineage(
            "d",
            LETSENCRYPT,
            standalone(Some("::1"), 80),
            &["d.example"],
        ),
    ]);
    let listen: Vec<SocketAddr> = ["127.0.0.1:8080", "0.0.0.0:80", "[::1]:80"]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
    assert_eq!(config.http01, Some(Http01Config::Standalone { listen }));
    assert!(text.contains("[::]:PORT"), "{text}");
    for c in &config.certs {
        assert_eq!(c.challenge, ChallengeType::Http01);
    }
}

#[test]
fn dns_plugins_get_a_placeholder_that_fails_loudly() {
    let (plan, text, config) = config_of(&[
        lineage(
            "w",
            LETSENCRYPT,
            Method::DnsPlugin {
                plugin: "dns-cloudflare".into(),
            },
            &["*.example.org", "example.org"],
        ),
        lineage("x", LETSENCRYPT, standalone(None, 80), &["x.example"]),
    ]);
    let w = config.cert(&cert_name("w")).unwrap();
    assert_eq!(w.challenge, ChallengeType::Dns01);
    assert_eq!(w.domains[0].as_str(), "*.example.org");
    assert!(config.http01.is_some(), "x still needs http-01");
    let dns = config.dns01.unwrap();
    let argv = dns.add_hook.argv();
    assert_eq!(argv[..2], ["/bin/sh", "-c"]);
    let out = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "the placeholder fails");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("placeholder"),
        "{out:?}"
    );
    assert!(text.contains("dns-cloudflare plugin"), "{text}");
    assert!(plan.dns01.unwrap().notes[0].contains("REPLACE"));
}

#[test]
fn a_manual_dns_auth_hook_becomes_the_dns01_hooks() {
    let manual = Method::Manual {
        dns: true,
        auth_hook: Some("/usr/local/bin/auth.sh".into()),
        cleanup_hook: Some("/usr/local/bin/cleanup.sh".into()),
    };
    let (_, _, config) = config_of(&[lineage("m", LETSENCRYPT, manual, &["m.example"])]);
    assert!(config.http01.is_none());
    let dns = config.dns01.unwrap();
    assert!(dns.add_hook.argv()[2].ends_with("\n/usr/local/bin/auth.sh"));
    assert!(dns.remove_hook.unwrap().argv()[2].ends_with("\n/usr/local/bin/cleanup.sh"));
}

#[test]
fn manual_http_nginx_keys_hooks_and_renew_before() {
    let mut odd_key = lineage(
        "k",
        LETSENCRYPT,
        Method::Other {
            authenticator: "nginx".into(),
        },
        &["k.example"],
    );
    odd_key.leaf.key_type = None;
    odd_key.leaf.key_text = "RSA 8192".into();
    odd_key.renew_before = Some(std::time::Duration::from_secs(20 * 86_400));
    odd_key.hooks = Hooks {
        pre: Some("systemctl stop nginx".into()),
        deploy: Some("systemctl reload nginx".into()),
        post: None,
    };
    let by_hand = lineage(
        "h",
        LETSENCRYPT,
        Method::Manual {
            dns: false,
            auth_hook: None,
            cleanup_hook: None,
        },
        &["h.example"],
    );
    let (_, text, config) = config_of(&[odd_key, by_hand]);
    let k = config.cert(&cert_name("k")).unwrap();
    assert_eq!(k.key, KeyType::Rsa4096);
    assert_eq!(
        k.renew_before,
        Some(std::time::Duration::from_secs(20 * 86_400))
    );
    let hook = k.deploy_hook.as_ref().unwrap().argv();
    assert_eq!(hook[..2], ["/bin/sh", "-c"]);
    assert!(
        hook[2].starts_with(
            "export RENEWED_LINEAGE='/var/lib/renewd/certs/k/live' RENEWED_DOMAINS='k.example'\n"
        ),
        "{}",
        hook[2]
    );
    assert!(hook[2].ends_with("\nsystemctl reload nginx"));
    assert_eq!(
        config.http01,
        Some(Http01Config::Standalone {
            listen: vec!["0.0.0.0:80".parse().unwrap()]
        })
    );
    for expected in [
        "RSA 8192, which renewd does not issue",
        "through its \"nginx\" plugin",
        "\"systemctl stop nginx\" before renewing",
        "renewed this one by hand",
        "no lineage used certbot's standalone server or a webroot",
    ] {
        assert!(
            text.replace("\n#  ", "").contains(expected),
            "{expected:?} missing from\n{text}"
        );
    }
}

#[test]
fn manual_dns_by_hand_gets_the_placeholder() {
    let by_hand = Method::Manual {
        dns: true,
        auth_hook: None,
        cleanup_hook: None,
    };
    let (_, text, config) = config_of(&[lineage("m", LETSENCRYPT, by_hand, &["m.example"])]);
    assert_eq!(config.certs[0].challenge, ChallengeType::Dns01);
    assert!(config.dns01.unwrap().add_hook.argv()[2].contains("placeholder"));
    assert!(
        text.contains("certbot used manual validation by hand for m"),
        "{text}"
    );
}
