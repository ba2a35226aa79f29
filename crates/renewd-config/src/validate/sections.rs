//! The global sections: `[daemon]`, `[renewal]`, `[breaker]`, `[ledger]`, the challenge
//! sections, `[hooks]` and `[metrics]`.

use std::net::SocketAddr;
use std::ops::Range;

use toml::Spanned;

use super::{Check, Checked};
use crate::defaults::{Defaults, bounds};
use crate::duration::format_duration;
use crate::model::{
    BreakerPolicy, DaemonConfig, Dns01Config, GlobalHooks, Http01Config, LedgerLimits, LogFormat,
    MetricsConfig, RenewalPolicy, TlsAlpn01Config,
};
use crate::raw::{
    Field, RawBreaker, RawConfig, RawDaemon, RawDns01, RawHooks, RawHttp01, RawLedger, RawMetrics,
    RawRenewal, RawTlsAlpn01,
};

/// Widens a non-negative, bounded `i64` (bounds are checked before this is called).
fn to<T: TryFrom<i64> + Default>(n: i64) -> T {
    T::try_from(n).unwrap_or_default()
}

impl Check<'_> {
    pub(crate) fn daemon(&mut self, raw: Option<&Spanned<RawDaemon>>) -> Checked<DaemonConfig> {
        let default = RawDaemon::default();
        let raw = raw.map_or(&default, Spanned::get_ref);
        let workers = self.int(
            &raw.workers,
            "workers",
            Defaults::WORKERS as i64,
            bounds::WORKERS,
        );
        let shutdown_grace = self.duration(
            &raw.shutdown_grace,
            "shutdown_grace",
            Defaults::SHUTDOWN_GRACE,
            bounds::SHUTDOWN_GRACE,
        );
        let log_format = self.optional(&raw.log_format, |c, v| {
            let s = v.get_ref();
            match LogFormat::ALL.iter().find(|f| f.as_str() == s) {
                Some(f) => Ok(*f),
                None => c.report(
                    v.span(),
                    format!("log_format {s:?} is not one of auto, journald, human, json"),
                ),
            }
        });
        Ok(DaemonConfig {
            workers: to(workers?),
            shutdown_grace: shutdown_grace?,
            log_format: log_format?.unwrap_or(Defaults::LOG_FORMAT),
        })
    }

    fn fraction(&mut self, field: &Field<f64>, key: &str, default: f64) -> Checked<f64> {
        let Some(v) = field else { return Ok(default) };
        let x = *v.get_ref();
        // `!(x > 0.0 && x < 1.0)` also refuses NaN.
        if !(x > 0.0 && x < 1.0) {
            return self.report(
                v.span(),
                format!("{key} is a fraction of the certificate's lifetime and must be between 0 and 1 (exclusive), such as {default}; got {x}"),
            );
        }
        Ok(x)
    }

    pub(crate) fn renewal(&mut self, raw: Option<&Spanned<RawRenewal>>) -> Checked<RenewalPolicy> {
        let default = RawRenewal::default();
        let raw = raw.map_or(&default, Spanned::get_ref);
        let urgent = self.fraction(
            &raw.urgent_remaining,
            "urgent_remaining",
            Defaults::URGENT_REMAINING,
        );
        let critical = self.fraction(
            &raw.critical_remaining,
            "critical_remaining",
            Defaults::CRITICAL_REMAINING,
        );
        if let (Ok(u), Ok(c)) = (&urgent, &critical)
            && c >= u
        {
            // Point at whichever of the two was written; critical when both were.
            let (span, message) = match (&raw.critical_remaining, &raw.urgent_remaining) {
                (Some(cv), _) => (
                    cv.span(),
                    format!(
                        "critical_remaining ({c}) must be smaller than urgent_remaining ({u}): a certificate becomes urgent first, then critical"
                    ),
                ),
                (None, Some(uv)) => (
                    uv.span(),
                    format!(
                        "urgent_remaining ({u}) must be larger than critical_remaining ({c}, the default); raise it or also set a smaller critical_remaining"
                    ),
                ),
                (None, None) => (
                    0..0,
                    "the default urgency thresholds are inconsistent".to_string(),
                ),
            };
            self.problems.push(span, message);
        }
        let max_backoff = self.duration(
            &raw.max_backoff,
            "max_backoff",
            Defaults::MAX_BACKOFF,
            bounds::MAX_BACKOFF,
        );
        Ok(RenewalPolicy {
            urgent_remaining: urgent?,
            critical_remaining: critical?,
            max_backoff: max_backoff?,
            ari: raw.ari.as_ref().map_or(Defaults::ARI, |v| *v.get_ref()),
        })
    }

    pub(crate) fn breaker(&mut self, raw: Option<&Spanned<RawBreaker>>) -> Checked<BreakerPolicy> {
        let default = RawBreaker::default();
        let raw = raw.map_or(&default, Spanned::get_ref);
        let threshold = self.int(
            &raw.failure_threshold,
            "failure_threshold",
            i64::from(Defaults::FAILURE_THRESHOLD),
            bounds::FAILURE_THRESHOLD,
        );
        let cooldown = self.duration(
            &raw.cooldown,
            "cooldown",
            Defaults::COOLDOWN,
            bounds::COOLDOWN,
        );
        let max_cooldown = self.duration(
            &raw.max_cooldown,
            "max_cooldown",
            Defaults::MAX_COOLDOWN,
            bounds::MAX_COOLDOWN,
        );
        if let (Ok(c), Ok(m)) = (&cooldown, &max_cooldown)
            && m < c
        {
            let span = raw
                .max_cooldown
                .as_ref()
                .or(raw.cooldown.as_ref())
                .map_or(0..0, Spanned::span);
            self.problems.push(
                span,
                format!(
                    "max_cooldown ({}) must not be shorter than cooldown ({}): the cool-down doubles from cooldown up to max_cooldown",
                    format_duration(*m),
                    format_duration(*c)
                ),
            );
        }
        let probe_timeout = self.duration(
            &raw.probe_timeout,
            "probe_timeout",
            Defaults::PROBE_TIMEOUT,
            bounds::PROBE_TIMEOUT,
        );
        let probe_cache = self.duration(
            &raw.probe_cache,
            "probe_cache",
            Defaults::PROBE_CACHE,
            bounds::PROBE_CACHE,
        );
        Ok(BreakerPolicy {
            failure_threshold: to(threshold?),
            cooldown: cooldown?,
            max_cooldown: max_cooldown?,
            probe_timeout: probe_timeout?,
            probe_cache: probe_cache?,
        })
    }

    pub(crate) fn ledger(&mut self, raw: Option<&Spanned<RawLedger>>) -> Checked<LedgerLimits> {
        let default = RawLedger::default();
        let raw = raw.map_or(&default, Spanned::get_ref);
        let max_age = self.duration(
            &raw.max_age,
            "max_age",
            Defaults::LEDGER_MAX_AGE,
            bounds::LEDGER_MAX_AGE,
        );
        let max_rows = self.int(
            &raw.max_rows,
            "max_rows",
            i64::try_from(Defaults::LEDGER_MAX_ROWS).unwrap_or(i64::MAX),
            bounds::LEDGER_MAX_ROWS,
        );
        Ok(LedgerLimits {
            max_age: max_age?,
            max_rows: to(max_rows?),
        })
    }

    pub(crate) fn http01(&mut self, v: &Spanned<RawHttp01>) -> Checked<Http01Config> {
        let raw = v.get_ref();
        match (&raw.listen, &raw.webroot) {
            (Some(_), Some(webroot)) => self.report(
                webroot.span(),
                "[http01] sets both listen and webroot; keep exactly one: listen (renewd answers on these addresses) or webroot (a web server you run serves the files)",
            ),
            (None, None) => self.report(
                v.span(),
                "[http01] needs either listen = [\"0.0.0.0:80\"] (renewd answers itself) or webroot = \"/var/www/html\" (a web server you run serves the files)",
            ),
            (Some(listen), None) => Ok(Http01Config::Standalone {
                listen: self.socket_addrs(listen, "listen")?,
            }),
            (None, Some(webroot)) => Ok(Http01Config::Webroot {
                path: self.abs_path(webroot, "webroot")?,
            }),
        }
    }

    pub(crate) fn dns01(&mut self, v: &Spanned<RawDns01>) -> Checked<Dns01Config> {
        let raw = v.get_ref();
        let add_hook = self
            .required(&raw.add_hook, "[dns01] add_hook", &v.span(), "add_hook = [\"/usr/local/bin/dns-add\"]; it is run with RENEWD_DNS_NAME, RENEWD_DNS_VALUE and RENEWD_DOMAIN set")
            .and_then(|h| self.command(h, "add_hook"));
        let remove_hook = self.optional(&raw.remove_hook, |c, h| c.command(h, "remove_hook"));
        let delay = self.duration(
            &raw.propagation_delay,
            "propagation_delay",
            Defaults::DNS_PROPAGATION_DELAY,
            bounds::DNS_PROPAGATION_DELAY,
        );
        let check = self.optional(&raw.propagation_check, |c, h| {
            c.command(h, "propagation_check")
        });
        let timeout = self.duration(
            &raw.propagation_timeout,
            "propagation_timeout",
            Defaults::DNS_PROPAGATION_TIMEOUT,
            bounds::DNS_PROPAGATION_TIMEOUT,
        );
        Ok(Dns01Config {
            add_hook: add_hook?,
            remove_hook: remove_hook?,
            propagation_delay: delay?,
            propagation_check: check?,
            propagation_timeout: timeout?,
        })
    }

    pub(crate) fn tls_alpn01(&mut self, v: &Spanned<RawTlsAlpn01>) -> Checked<TlsAlpn01Config> {
        let listen = self
            .required(
                &v.get_ref().listen,
                "[tls_alpn01] listen",
                &v.span(),
                "listen = [\"0.0.0.0:443\"]",
            )
            .and_then(|l| self.socket_addrs(l, "listen"));
        Ok(TlsAlpn01Config { listen: listen? })
    }

    pub(crate) fn hooks(&mut self, raw: Option<&Spanned<RawHooks>>) -> Checked<GlobalHooks> {
        let default = RawHooks::default();
        let raw = raw.map_or(&default, Spanned::get_ref);
        let deploy = self.optional(&raw.deploy, |c, h| c.command(h, "deploy"));
        let failure = self.optional(&raw.failure, |c, h| c.command(h, "failure"));
        let timeout = self.duration(
            &raw.timeout,
            "timeout",
            Defaults::HOOK_TIMEOUT,
            bounds::HOOK_TIMEOUT,
        );
        Ok(GlobalHooks {
            deploy: deploy?,
            failure: failure?,
            timeout: timeout?,
        })
    }

    pub(crate) fn metrics(&mut self, v: &Spanned<RawMetrics>) -> Checked<MetricsConfig> {
        let listen = self
            .required(
                &v.get_ref().listen,
                "[metrics] listen",
                &v.span(),
                "listen = \"127.0.0.1:9469\"",
            )
            .and_then(|l| self.socket_addr(l, "listen"));
        Ok(MetricsConfig { listen: listen? })
    }

    /// No address is bound by two of `[http01]`, `[tls_alpn01]` and `[metrics]`.
    pub(crate) fn listeners_distinct(&mut self, raw: &RawConfig) {
        let mut seen: Vec<(SocketAddr, &'static str, Range<usize>)> = Vec::new();
        let lists = [
            (
                "[http01] listen",
                raw.http01
                    .as_ref()
                    .and_then(|s| s.get_ref().listen.as_ref()),
            ),
            (
                "[tls_alpn01] listen",
                raw.tls_alpn01
                    .as_ref()
                    .and_then(|s| s.get_ref().listen.as_ref()),
            ),
        ];
        let mut entries: Vec<(&'static str, &Spanned<String>)> = lists
            .iter()
            .flat_map(|(what, list)| {
                list.iter()
                    .flat_map(|l| l.get_ref().iter())
                    .map(move |a| (*what, a))
            })
            .collect();
        if let Some(m) = raw
            .metrics
            .as_ref()
            .and_then(|m| m.get_ref().listen.as_ref())
        {
            entries.push(("[metrics] listen", m));
        }
        for (what, value) in entries {
            let Ok(addr) = value.get_ref().parse::<SocketAddr>() else {
                continue;
            };
            if let Some((_, first, span)) = seen.iter().find(|(a, w, _)| *a == addr && w != &what) {
                let message = format!(
                    "{what}: {addr} is already used by {first} on line {}; each listener needs its own address",
                    self.line_of(span.start)
                );
                self.problems.push(value.span(), message);
            } else {
                seen.push((addr, what, value.span()));
            }
        }
    }
}
