//! The `[metrics]` endpoint of the real binary: scraped, parsed, moved by a reload.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};

use crate::harness::{Daemon, Scene, free_port, has, http_get, value};

/// One sample of the Prometheus text format.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the text exposition format strictly enough to catch a malformed line: comments
/// are `# HELP name text` or `# TYPE name type`, samples `name{k="v",...} value`.
fn parse(text: &str) -> (Vec<Sample>, BTreeMap<String, String>) {
    let mut samples = Vec::new();
    let mut types = BTreeMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(comment) = line.strip_prefix("# ") {
            let mut parts = comment.splitn(3, ' ');
            let (kind, name, rest) = (parts.next(), parts.next(), parts.next());
            match kind {
                Some("HELP") => assert!(name.is_some() && rest.is_some(), "{line}"),
                Some("TYPE") => {
                    let t = rest.unwrap();
                    assert!(["counter", "gauge", "histogram"].contains(&t), "{line}");
                    types.insert(name.unwrap().to_string(), t.to_string());
                }
                _ => panic!("unexpected comment {line:?}"),
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        let (name, labels) = match series.split_once('{') {
            None => (series, BTreeMap::new()),
            Some((name, rest)) => {
                let inner = rest.strip_suffix('}').unwrap();
                let labels = inner
                    .split(',')
                    .map(|kv| {
                        let (k, v) = kv.split_once('=').unwrap();
                        let v = v.strip_prefix('"').unwrap().strip_suffix('"').unwrap();
                        (k.to_string(), v.to_string())
                    })
                    .collect();
                (name, labels)
            }
        };
        assert!(
            name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "{line}"
        );
        samples.push(Sample {
            name: name.to_string(),
            labels,
            value: value.parse().unwrap_or_else(|e| panic!("{line}: {e}")),
        });
    }
    (samples, types)
}

fn metrics_config(port: u16) -> String {
    format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n")
}

#[test]
fn metrics_and_healthz_are_served_and_parse() {
    let scene = Scene::new();
    let port = free_port();
    scene.write_config(1, &metrics_config(port));
    let mut socket = scene.notify_socket();
    let _daemon = Daemon::start(&scene, &socket, &[]);
    socket.expect("READY=1", |m| has(m, "READY=1"));
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();

    let (status, body) = http_get(addr, "/metrics").unwrap();
    assert_eq!(status, 200, "{body}");
    let (samples, types) = parse(&body);
    let get = |name: &str| {
        samples
            .iter()
            .find(|s| s.name == name && s.labels.is_empty())
    };
    assert_eq!(get("renewd_up").unwrap().value, 1.0);
    assert_eq!(
        get("renewd_config_last_reload_successful").unwrap().value,
        1.0
    );
    // Families without series (no certificate scanned, no request made: this build has no
    // engine) are not printed; the unit tests of `Metrics` cover their names and labels.
    for (family, kind) in [
        ("renewd_up", "gauge"),
        ("renewd_config_last_reload_successful", "gauge"),
    ] {
        assert_eq!(
            types.get(family).map(String::as_str),
            Some(kind),
            "{family}: {body}"
        );
    }
    assert!(
        samples.iter().all(|s| s.name.starts_with("renewd_")),
        "{body}"
    );

    let (status, body) = http_get(addr, "/healthz").unwrap();
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let (status, _) = http_get(addr, "/nope").unwrap();
    assert_eq!(status, 404);
}

#[test]
fn a_reload_moves_the_endpoint_and_reports_refusals() {
    let scene = Scene::new();
    let first = free_port();
    scene.write_config(1, &metrics_config(first));
    let mut socket = scene.notify_socket();
    let daemon = Daemon::start(&scene, &socket, &[]);
    socket.expect("READY=1", |m| has(m, "READY=1"));
    let first_addr: SocketAddr = ([127, 0, 0, 1], first).into();
    assert_eq!(http_get(first_addr, "/healthz").unwrap().0, 200);

    let second = free_port();
    scene.write_config(1, &metrics_config(second));
    daemon.signal("HUP");
    socket.expect("RELOADING=1", |m| has(m, "RELOADING=1"));
    let ready = socket.expect("READY=1", |m| has(m, "READY=1"));
    assert!(
        !value(&ready, "STATUS").unwrap().contains("refused"),
        "{ready}"
    );
    let second_addr: SocketAddr = ([127, 0, 0, 1], second).into();
    assert_eq!(http_get(second_addr, "/healthz").unwrap().0, 200);
    // The old endpoint was stopped (the daemon's stop is prompt but asynchronous).
    daemon.expect_stderr("the old endpoint stopping", |l| {
        l.contains(&format!("metrics endpoint on 127.0.0.1:{first} stopped"))
    });
    assert!(http_get(first_addr, "/healthz").is_err());

    // A taken port refuses the whole reload; the endpoint stays where it was.
    let blocker = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = blocker.local_addr().unwrap().port();
    scene.write_config(2, &metrics_config(taken));
    daemon.signal("HUP");
    socket.expect("RELOADING=1", |m| has(m, "RELOADING=1"));
    let ready = socket.expect("READY=1", |m| has(m, "READY=1"));
    let status = value(&ready, "STATUS").unwrap();
    assert!(
        status.contains(&format!("cannot listen on 127.0.0.1:{taken}")),
        "{status}"
    );
    assert!(status.contains("1 certificate:"), "{status}");
    let (code, body) = http_get(second_addr, "/metrics").unwrap();
    assert_eq!(code, 200);
    let (samples, _) = parse(&body);
    let ok = samples
        .iter()
        .find(|s| s.name == "renewd_config_last_reload_successful")
        .unwrap();
    assert_eq!(ok.value, 0.0);
}

#[test]
fn a_taken_metrics_port_at_start_is_an_error_before_ready() {
    let scene = Scene::new();
    let blocker = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = blocker.local_addr().unwrap().port();
    scene.write_config(1, &metrics_config(port));
    let mut socket = scene.notify_socket();
    let mut daemon = Daemon::start(&scene, &socket, &[]);
    assert_eq!(daemon.wait_exit().0.code(), Some(1));
    daemon.expect_stderr("the bind error", |l| {
        l.contains(&format!("cannot listen on 127.0.0.1:{port} for [metrics]"))
    });
    socket.drain();
    assert!(!socket.seen.iter().any(|m| has(m, "READY=1")));
}
