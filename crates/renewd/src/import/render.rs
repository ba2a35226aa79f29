//! A [`Plan`] as renewd's TOML config, with its notes as comments.

use std::fmt::Write as _;
use std::path::Path;

use renewd_config::format_duration;

use super::plan::{Http01How, Plan};

/// The config text for `plan`, with `state_dir` and a header naming `source`.
pub fn render(plan: &Plan, state_dir: &Path, source: &Path) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "# renewd's configuration, imported from certbot's {} by `renewd import certbot`.",
        source.display()
    );
    t.push_str(
        "# Read every NOTE below, then check it with `renewd --config FILE check`.\n\
         # The migration guide (MIGRATING.md) says what maps to what.\n\n",
    );
    let _ = writeln!(t, "state_dir = {}", string(&state_dir.to_string_lossy()));

    for ca in &plan.cas {
        t.push_str("\n[[ca]]\n");
        let _ = writeln!(t, "name = {}", string(ca.name.as_str()));
        let _ = writeln!(t, "directory = {}", string(&ca.directory));
        comments(&mut t, &ca.notes);
    }

    if let Some(h) = &plan.http01 {
        t.push('\n');
        comments(&mut t, &h.notes);
        t.push_str("[http01]\n");
        match &h.how {
            Http01How::Listen(addrs) => {
                let _ = writeln!(t, "listen = {}", array(addrs));
            }
            Http01How::Webroot(root) => {
                let _ = writeln!(t, "webroot = {}", string(root));
            }
        }
    }

    if let Some(d) = &plan.dns01 {
        t.push('\n');
        comments(&mut t, &d.notes);
        t.push_str("[dns01]\n");
        let _ = writeln!(t, "add_hook = {}", array(&d.add_hook));
        if let Some(remove) = &d.remove_hook {
            let _ = writeln!(t, "remove_hook = {}", array(remove));
        }
    }

    for c in &plan.certs {
        t.push('\n');
        comments(&mut t, &c.notes);
        t.push_str("[[cert]]\n");
        let _ = writeln!(t, "name = {}", string(c.name.as_str()));
        let domains: Vec<&str> = c.domains.iter().map(|d| d.as_str()).collect();
        let _ = writeln!(t, "domains = {}", array(&domains));
        let _ = writeln!(t, "cas = {}", array(&[c.ca.as_str()]));
        let _ = writeln!(t, "key = {}", string(c.key.as_str()));
        let _ = writeln!(t, "challenge = {}", string(c.challenge.as_str()));
        if let Some(before) = c.renew_before {
            let _ = writeln!(
                t,
                "renew_before = {}   # certbot's renew_before_expiry",
                string(&format_duration(before))
            );
        }
        if let Some(hook) = &c.deploy_hook {
            let _ = writeln!(t, "deploy_hook = {}", array(hook));
        }
    }
    t
}

/// Notes as `# ` comment lines, wrapped at about 90 columns.
fn comments(t: &mut String, notes: &[String]) {
    for note in notes {
        let mut line = String::from("#");
        for word in note.split_whitespace() {
            if line.len() + 1 + word.len() > 92 && line.len() > 2 {
                t.push_str(&line);
                t.push('\n');
                line = String::from("#  ");
            }
            line.push(' ');
            line.push_str(word);
        }
        t.push_str(&line);
        t.push('\n');
    }
}

/// A TOML string, quoted and escaped by the toml crate.
fn string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn array<S: AsRef<str>>(items: &[S]) -> String {
    let items: Vec<String> = items.iter().map(|s| string(s.as_ref())).collect();
    format!("[{}]", items.join(", "))
}
