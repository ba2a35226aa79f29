//! The validated `Config` as the rest of renewd sees it.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use renewd_config::{
    Config, ConfigDiff, Defaults, Http01Config, LoadEnv, LoadError, LogFormat, RawConfig,
    SecretSource,
};
use renewd_core::{CaName, CertName, ChallengeType, KeyType};

use crate::fixture::{Fixture, MAC_KEY_B64URL};

const MINIMAL: &str = r#"
[[ca]]
name = "letsencrypt"
directory = "https://acme-v02.api.letsencrypt.org/directory"

[http01]
listen = ["127.0.0.1:5002"]

[[cert]]
name = "www"
domains = ["www.example.com", "example.com"]
cas = ["letsencrypt"]
"#;

fn load(text: &str, env: &LoadEnv) -> Config {
    Config::from_str(text, Path::new("renewd.toml"), env).unwrap_or_else(|e| panic!("{e}"))
}

fn errors(text: &str, env: &LoadEnv) -> Vec<(usize, usize, String)> {
    match Config::from_str(text, Path::new("renewd.toml"), env) {
        Ok(_) => panic!("loaded without error"),
        Err(e) => e
            .into_iter()
            .map(|e| (e.line, e.column, e.message))
            .collect(),
    }
}

#[test]
fn absent_keys_take_the_documented_defaults() {
    let c = load(MINIMAL, &LoadEnv::default());
    assert_eq!(c.state_dir, Path::new(Defaults::STATE_DIR));
    assert_eq!(c.daemon.workers, Defaults::WORKERS);
    assert_eq!(c.daemon.shutdown_grace, Duration::from_secs(30));
    assert_eq!(c.daemon.log_format, LogFormat::Auto);
    assert_eq!(c.renewal.urgent_remaining, 0.16);
    assert_eq!(c.renewal.critical_remaining, 0.07);
    assert_eq!(c.renewal.max_backoff, Duration::from_secs(6 * 3600));
    assert!(c.renewal.ari);
    assert_eq!(c.breaker.failure_threshold, 3);
    assert_eq!(c.breaker.cooldown, Duration::from_secs(60));
    assert_eq!(c.breaker.max_cooldown, Duration::from_secs(3600));
    assert_eq!(c.breaker.probe_timeout, Duration::from_secs(5));
    assert_eq!(c.breaker.probe_cache, Duration::from_secs(30));
    assert_eq!(c.ledger.max_age, Duration::from_secs(90 * 86_400));
    assert_eq!(c.ledger.max_rows, 100_000);
    assert_eq!(c.hooks.timeout, Duration::from_secs(120));
    assert!(c.hooks.deploy.is_none() && c.hooks.failure.is_none());
    assert!(c.dns01.is_none() && c.tls_alpn01.is_none() && c.metrics.is_none());
    let ca = &c.cas[0];
    assert_eq!(ca.max_concurrent_orders, 4);
    assert_eq!(ca.requests_per_second, 20);
    assert_eq!(ca.timeout, Duration::from_secs(30));
    assert_eq!(ca.order_timeout, Duration::from_secs(600));
    assert!(ca.terms_agreed);
    assert!(ca.eab.is_none() && ca.contact.is_empty() && ca.trust_roots.is_empty());
    let cert = &c.certs[0];
    assert_eq!(cert.key, KeyType::EcdsaP256);
    assert_eq!(cert.challenge, ChallengeType::Http01);
    assert!(cert.copy_out.is_empty() && cert.verify_served.is_empty());
    assert!(cert.renew_before.is_none() && cert.deploy_hook.is_none());
    // The Default impls agree with the loader.
    assert_eq!(c.daemon, Default::default());
    assert_eq!(c.renewal, Default::default());
    assert_eq!(c.breaker, Default::default());
    assert_eq!(c.ledger, Default::default());
    assert_eq!(c.hooks, Default::default());
}

#[test]
fn every_key_reaches_its_typed_field() {
    let fx = Fixture::new();
    let text = fx.subst(
        r#"
state_dir = "/srv/renewd"

[daemon]
workers = 16
shutdown_grace = "1m30s"
log_format = "json"

[renewal]
urgent_remaining = 0.3
critical_remaining = 0.1
max_backoff = "2h"
ari = false

[breaker]
failure_threshold = 5
cooldown = "30s"
max_cooldown = "2h"
probe_timeout = "500ms"
probe_cache = 10

[ledger]
max_age = "30d"
max_rows = 5000

[[ca]]
name = "zerossl"
directory = "https://acme.example/directory"
contact = ["mailto:ops@example.com", "mailto:oncall@example.com"]
trust_roots = ["@TMP@/root.pem"]
eab_kid = "kid-1"
eab_hmac_key_file = "@TMP@/good.eab"
profile = "shortlived"
preferred_chain = "ISRG Root X1"
max_concurrent_orders = 2
requests_per_second = 5
timeout = "45s"
order_timeout = "90s"
terms_agreed = false

[[ca]]
name = "pebble"
directory = "https://127.0.0.1:14000/dir"
eab_kid = "kid-2"
eab_hmac_key_credential = "zerossl.eab"

[dns01]
add_hook = ["/usr/local/bin/dns-add", "--zone", "example.com"]
remove_hook = ["/usr/local/bin/dns-del"]
propagation_delay = "0s"
propagation_check = ["/usr/local/bin/dns-check"]
propagation_timeout = "5m"

[tls_alpn01]
listen = ["127.0.0.1:5001", "[::1]:5001"]

[http01]
webroot = "/var/www/html"

[hooks]
deploy = ["/usr/bin/systemctl", "reload", "nginx"]
failure = ["/usr/local/bin/page-oncall"]
timeout = "2m"

[metrics]
listen = "127.0.0.1:9469"

[[cert]]
name = "www"
domains = ["www.example.com", "example.com"]
cas = ["zerossl", "pebble"]
key = "rsa-3072"
challenge = "tls-alpn-01"
deploy_hook = ["/usr/bin/systemctl", "reload", "nginx"]
failure_hook = ["/usr/local/bin/alert", "www failed"]
renew_before = "30d"
profile = "tlsserver"
cert_path = "/etc/nginx/tls/www.crt"
key_path = "/etc/nginx/tls/www.key"
fullchain_path = "/etc/nginx/tls/www.fullchain"
chain_path = "/etc/nginx/tls/www.chain"
owner = "root"
group = "nginx"
mode = "0640"
verify_served = ["127.0.0.1:443"]

[[cert]]
name = "wild"
domains = ["*.example.com"]
cas = ["pebble"]
challenge = "dns-01"
"#,
    );
    let c = load(&text, &fx.env());
    assert_eq!(c.state_dir, Path::new("/srv/renewd"));
    assert_eq!(c.daemon.workers, 16);
    assert_eq!(c.daemon.shutdown_grace, Duration::from_secs(90));
    assert_eq!(c.daemon.log_format, LogFormat::Json);
    assert_eq!(
        (c.renewal.urgent_remaining, c.renewal.critical_remaining),
        (0.3, 0.1)
    );
    assert_eq!(c.renewal.max_backoff, Duration::from_secs(7200));
    assert!(!c.renewal.ari);
    assert_eq!(c.breaker.failure_threshold, 5);
    assert_eq!(c.breaker.probe_timeout, Duration::from_millis(500));
    assert_eq!(c.breaker.probe_cache, Duration::from_secs(10));
    assert_eq!(c.ledger.max_rows, 5000);

    let zerossl = c.ca(&CaName::new("zerossl").unwrap()).unwrap();
    assert_eq!(zerossl.directory.host(), Some("acme.example"));
    assert_eq!(zerossl.contact.len(), 2);
    assert_eq!(zerossl.trust_roots[0].certs.len(), 1);
    assert_eq!(
        format!("{:?}", zerossl.trust_roots[0]),
        format!("TrustRoot {{ path: {:?}, certs: 1 }}", fx.path("root.pem"))
    );
    let eab = zerossl.eab.as_ref().unwrap();
    assert_eq!(eab.kid, "kid-1");
    assert_eq!(
        eab.hmac_key.as_ref().unwrap().expose(),
        b"secret-mac-key-for-tests-only?\xfb".as_slice()
    );
    assert_eq!(eab.source, SecretSource::File(fx.path("good.eab")));
    assert_eq!(zerossl.profile.as_deref(), Some("shortlived"));
    assert_eq!(zerossl.preferred_chain.as_deref(), Some("ISRG Root X1"));
    assert_eq!(
        (zerossl.max_concurrent_orders, zerossl.requests_per_second),
        (2, 5)
    );
    assert_eq!(zerossl.timeout, Duration::from_secs(45));
    assert_eq!(zerossl.order_timeout, Duration::from_secs(90));
    assert!(!zerossl.terms_agreed);
    let pebble = c.ca(&CaName::new("pebble").unwrap()).unwrap();
    assert!(matches!(
        &pebble.eab.as_ref().unwrap().source,
        SecretSource::Credential { name, path } if name == "zerossl.eab" && path.as_deref() == Some(fx.path("creds/zerossl.eab").as_path())
    ));

    let dns = c.dns01.as_ref().unwrap();
    assert_eq!(dns.add_hook.args(), ["--zone", "example.com"]);
    assert_eq!(dns.propagation_delay, Duration::ZERO);
    assert_eq!(c.tls_alpn01.as_ref().unwrap().listen.len(), 2);
    assert_eq!(
        c.http01,
        Some(Http01Config::Webroot {
            path: "/var/www/html".into()
        })
    );
    assert_eq!(
        c.hooks.deploy.as_ref().unwrap().to_string(),
        "/usr/bin/systemctl reload nginx"
    );
    assert_eq!(
        c.metrics.as_ref().unwrap().listen,
        "127.0.0.1:9469".parse::<SocketAddr>().unwrap()
    );

    let www = c.cert(&CertName::new("www").unwrap()).unwrap();
    assert_eq!(www.domains[0].as_str(), "www.example.com");
    assert_eq!(www.key, KeyType::Rsa3072);
    assert_eq!(www.challenge, ChallengeType::TlsAlpn01);
    assert_eq!(www.failure_hook.as_ref().unwrap().args(), ["www failed"]);
    assert_eq!(www.renew_before, Some(Duration::from_secs(30 * 86_400)));
    assert_eq!(www.profile_at(zerossl), Some("tlsserver"));
    assert_eq!(www.preferred_chain_at(zerossl), Some("ISRG Root X1"));
    assert_eq!(www.preferred_chain_at(pebble), None);
    assert_eq!(www.copy_out.mode, Some(0o640));
    assert_eq!(www.copy_out.owner.as_deref(), Some("root"));
    assert_eq!(
        www.copy_out.chain_path.as_deref(),
        Some(Path::new("/etc/nginx/tls/www.chain"))
    );
    assert_eq!(
        www.verify_served,
        ["127.0.0.1:443".parse::<SocketAddr>().unwrap()]
    );
    let order: Vec<&str> = c.cas_of(www).map(|ca| ca.name.as_str()).collect();
    assert_eq!(order, ["zerossl", "pebble"]);
    let wild = c.cert(&CertName::new("wild").unwrap()).unwrap();
    assert_eq!(wild.profile_at(zerossl), Some("shortlived"));
    assert!(c.cert(&CertName::new("nope").unwrap()).is_none());
}

#[test]
fn secrets_never_appear_in_debug_output() {
    let fx = Fixture::new();
    let text = fx.subst(
        r#"
[[ca]]
name = "a"
directory = "https://acme.example/directory"
eab_kid = "kid-1"
eab_hmac_key_file = "@TMP@/good.eab"

[[ca]]
name = "b"
directory = "https://acme.example/directory"
eab_kid = "kid-2"
eab_hmac_key_credential = "zerossl.eab"

[http01]
listen = ["127.0.0.1:5002"]

[[cert]]
name = "www"
domains = ["example.com"]
cas = ["a", "b"]
"#,
    );
    let c = load(&text, &fx.env());
    let key = c.cas[0]
        .eab
        .as_ref()
        .unwrap()
        .hmac_key
        .as_ref()
        .unwrap()
        .expose()
        .to_vec();
    assert!(!key.is_empty());
    for shown in [format!("{c:?}"), format!("{c:#?}")] {
        assert!(!shown.contains(MAC_KEY_B64URL));
        // Neither the decoded bytes (as Debug prints a byte list) nor as text.
        assert!(!shown.contains(&format!("{key:?}")[1..20]));
        assert!(!shown.contains("secret-mac-key"));
        assert_eq!(shown.matches("[redacted]").count(), 2, "{shown}");
    }
}

#[test]
fn positions_count_characters_and_survive_crlf_and_tabs() {
    // "ü" is two bytes; the column must count it once.
    let text = "[[ca]]\r\nname = \"le\"\r\ndirectory = \"https://acme.example/d\"\r\n[http01]\r\nlisten = [\"127.0.0.1:80\"]\r\n[[cert]]\r\nname = \"www\"\r\ndomains = [\"bücher.example\",\t\"a b\"]\r\ncas = [\"le\"]\r\n";
    let errs = errors(text, &LoadEnv::default());
    assert_eq!(errs.len(), 2, "{errs:?}");
    // `domains = ["bücher.example",<TAB>"a b"]`: "bücher" is not ASCII (IDNs go in xn-- form).
    assert_eq!((errs[0].0, errs[0].1), (8, 12));
    assert!(
        errs[0].2.contains("'ü' is not allowed in a DNS name"),
        "{}",
        errs[0].2
    );
    assert_eq!((errs[1].0, errs[1].1), (8, 30));
    assert!(errs[1].2.contains("' ' is not allowed"));
}

#[test]
fn serde_and_validation_errors_carry_key_positions() {
    // An unknown key is reported at the key, a wrong type at the value.
    let errs = errors(
        "[daemon]\n  workerz = 4\n[breaker]\ncooldown = [1]\n",
        &LoadEnv::default(),
    );
    assert_eq!((errs[0].0, errs[0].1), (2, 3));
    assert_eq!((errs[1].0, errs[1].1), (4, 12));
}

#[test]
fn loopback_directories_may_use_plain_http() {
    for dir in [
        "http://127.0.0.1:14000/dir",
        "http://localhost/dir",
        "http://[::1]:4001/dir",
    ] {
        let text = MINIMAL.replace("https://acme-v02.api.letsencrypt.org/directory", dir);
        let c = load(&text, &LoadEnv::default());
        assert_eq!(c.cas[0].directory.to_string(), dir);
    }
}

#[test]
fn integer_durations_are_seconds() {
    let text = format!("[daemon]\nshutdown_grace = 45\n{MINIMAL}");
    assert_eq!(
        load(&text, &LoadEnv::default()).daemon.shutdown_grace,
        Duration::from_secs(45)
    );
}

#[test]
fn load_reads_the_file_and_names_it_in_errors() {
    let fx = Fixture::new();
    let good = fx.write("renewd.toml", MINIMAL, 0o644);
    assert_eq!(Config::load(&good).unwrap().certs.len(), 1);

    let bad = fx.write(
        "bad.toml",
        &MINIMAL.replace("127.0.0.1:5002", "nowhere"),
        0o644,
    );
    match Config::load(&bad) {
        Err(LoadError::Invalid(errs)) => {
            let line = errs.to_string();
            assert!(
                line.starts_with(&format!("{}:7:11: listen:", bad.display())),
                "{line}"
            );
        }
        other => panic!("{other:?}"),
    }
    match Config::load(&fx.path("absent.toml")) {
        Err(e @ LoadError::Read { .. }) => {
            assert!(e.to_string().contains("cannot read the config file"))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn raw_config_keeps_spans() {
    let raw = RawConfig::parse(MINIMAL, Path::new("x.toml")).unwrap();
    let name = raw.cert[0].get_ref().name.as_ref().unwrap();
    assert_eq!(&MINIMAL[name.span()], "\"www\"");
    assert!(RawConfig::parse("bogus = 1", Path::new("x.toml")).is_err());
}

#[test]
fn diff_names_what_a_reload_changes() {
    let env = LoadEnv::default();
    let old = load(MINIMAL, &env);
    assert!(old.diff(&old).is_empty());
    assert_eq!(old.diff(&old).to_string(), "no changes");

    let new_text = MINIMAL.replace("\"example.com\"]", "\"example.com\", \"m.example.com\"]")
        + r#"
[[ca]]
name = "zerossl"
directory = "https://acme.zerossl.example/directory"

[[cert]]
name = "api"
domains = ["api.example.com"]
cas = ["zerossl"]

[daemon]
workers = 2
"#;
    let new = load(&new_text, &env);
    let d: ConfigDiff = old.diff(&new);
    assert_eq!(d.cas_added, [CaName::new("zerossl").unwrap()]);
    assert_eq!(d.certs_added, [CertName::new("api").unwrap()]);
    assert_eq!(d.certs_changed, [CertName::new("www").unwrap()]);
    assert!(d.cas_removed.is_empty() && d.cas_changed.is_empty() && d.certs_removed.is_empty());
    assert_eq!(d.settings_changed, ["[daemon]"]);
    assert_eq!(
        d.to_string(),
        "CAs +zerossl; certs +api ~www; settings [daemon]"
    );

    let back = new.diff(&old);
    assert_eq!(
        back.to_string(),
        "CAs -zerossl; certs -api ~www; settings [daemon]"
    );
}

#[test]
fn a_changed_secret_changes_the_ca_without_showing_it() {
    let fx = Fixture::new();
    let text = fx.subst(
        "[[ca]]\nname = \"z\"\ndirectory = \"https://a.example/d\"\neab_kid = \"k\"\neab_hmac_key_file = \"@TMP@/good.eab\"\n",
    );
    let before = load(&text, &LoadEnv::default());
    fx.write("good.eab", "b3RoZXIta2V5", 0o600);
    let after = load(&text, &LoadEnv::default());
    let d = before.diff(&after);
    assert_eq!(d.cas_changed, [CaName::new("z").unwrap()]);
    assert_eq!(d.to_string(), "CAs ~z");
}

/// The keys serde accepts in a table, read from its "unknown field" message.
fn accepted_keys(table_header: &str) -> Vec<String> {
    let text = format!("{table_header}\nzz_not_a_key = 1\n");
    let errs = RawConfig::parse(&text, Path::new("x.toml")).unwrap_err();
    let message = &errs.errors()[0].message;
    let (_, list) = message.split_once("expected").unwrap();
    list.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

#[test]
fn the_reference_documents_every_key() {
    let doc_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/CONFIGURATION.md");
    let doc = std::fs::read_to_string(doc_path).unwrap();
    let mut missing = Vec::new();
    for section in [
        "daemon",
        "renewal",
        "breaker",
        "ledger",
        "http01",
        "dns01",
        "tls_alpn01",
        "hooks",
        "metrics",
    ] {
        let keys = accepted_keys(&format!("[{section}]"));
        assert!(!keys.is_empty());
        for key in keys {
            if !doc.contains(&format!("`[{section}] {key}`")) {
                missing.push(format!("[{section}] {key}"));
            }
        }
    }
    for table in ["[[ca]]", "[[cert]]"] {
        let keys = accepted_keys(table);
        assert!(keys.len() >= 13, "{table}: {keys:?}");
        for key in keys {
            if !doc.contains(&format!("`{key}`")) {
                missing.push(format!("{table} {key}"));
            }
        }
    }
    assert!(doc.contains("`state_dir`"));
    assert!(
        missing.is_empty(),
        "docs/CONFIGURATION.md lacks: {missing:?}"
    );
}
