//! ACME Renewal Information (RFC 9773): CertIDs, suggested windows and their overrides.
//!
//! Every issued certificate has a renewal window: by default the last third of its
//! lifetime (a revoked certificate: the hour from its revocation on). Tests move windows
//! with [`AriOverride`]s, for one certificate (by serial or CertID) or for all; the most
//! specific, most recent override wins.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, SecondsFormat, Utc};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use x509_parser::extensions::ParsedExtension;

use crate::ca::Ca;
use crate::fault_toml::ceil_secs;
use crate::issuance::normalize_serial;
use crate::response::{Problem, Reply};
use crate::state::CertRecord;

/// The CertID of RFC 9773 §4.1 from its parts: base64url(AKI keyIdentifier) "."
/// base64url(serial DER content bytes), unpadded.
pub fn cert_id(authority_key_id: &[u8], serial_der_content: &[u8]) -> String {
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(authority_key_id),
        URL_SAFE_NO_PAD.encode(serial_der_content)
    )
}

/// The CertID of a DER certificate and its serial's content bytes; `None` when it does not
/// parse or has no authority key identifier.
pub fn cert_id_of(der: &[u8]) -> Option<(String, Vec<u8>)> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let aki = cert
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(aki) => aki.key_identifier.as_ref(),
            _ => None,
        })?;
    let serial = cert.tbs_certificate.raw_serial();
    Some((cert_id(aki.0, serial), serial.to_vec()))
}

/// A suggested renewal window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuggestedWindow {
    /// Renew no earlier than this.
    pub start: DateTime<Utc>,
    /// Renew no later than this.
    pub end: DateTime<Utc>,
}

impl SuggestedWindow {
    /// The window from `start` to `end`.
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Self {
        SuggestedWindow { start, end }
    }

    /// A window that opened `ago` and stays open for `length` from now: "renew now".
    pub fn open_now(ago: Duration, length: Duration) -> Self {
        let now = Utc::now();
        let delta = |d: Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
        SuggestedWindow {
            start: now
                .checked_sub_signed(delta(ago))
                .unwrap_or(DateTime::<Utc>::MIN_UTC),
            end: now
                .checked_add_signed(delta(length))
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        }
    }

    /// The default: the last third of a certificate's lifetime.
    pub fn last_third(not_before: DateTime<Utc>, not_after: DateTime<Utc>) -> Self {
        let lifetime = not_after - not_before;
        SuggestedWindow {
            start: not_before + lifetime * 2 / 3,
            end: not_after,
        }
    }
}

/// Which certificates an override covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AriTarget {
    /// Every certificate.
    All,
    /// One certificate by serial (hex; colons and leading zeros ignored).
    Serial(String),
    /// One certificate by ARI CertID.
    CertId(String),
}

/// A test's say over ARI answers. JSON (management `POST /ari`):
/// `{"target": "all" | {"serial": "…"} | {"cert_id": "…"}, "window": {"start": "…",
/// "end": "…"}, "retry_after_secs": 60, "explanation_url": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AriOverride {
    /// The certificates covered.
    pub target: AriTarget,
    /// The window to suggest (`None`: keep the default window).
    #[serde(default)]
    pub window: Option<SuggestedWindow>,
    /// `Retry-After` in seconds (`None`: the CA's default).
    #[serde(default)]
    pub retry_after_secs: Option<u64>,
    /// `explanationURL` (`None`: the CA's default).
    #[serde(default)]
    pub explanation_url: Option<String>,
}

impl AriOverride {
    /// Suggest `window` for `target`.
    pub fn new(target: AriTarget, window: SuggestedWindow) -> Self {
        AriOverride {
            target,
            window: Some(window),
            retry_after_secs: None,
            explanation_url: None,
        }
    }

    /// With this `Retry-After`.
    pub fn retry_after(mut self, delay: Duration) -> Self {
        self.retry_after_secs = Some(ceil_secs(delay));
        self
    }

    /// With this `explanationURL`.
    pub fn explanation_url(mut self, url: &str) -> Self {
        self.explanation_url = Some(url.to_owned());
        self
    }

    fn covers(&self, cert: &CertRecord) -> bool {
        match &self.target {
            AriTarget::All => true,
            AriTarget::Serial(s) => normalize_serial(s) == cert.issued.serial_hex,
            AriTarget::CertId(id) => id.trim_end_matches('=') == cert.issued.cert_id,
        }
    }
}

/// The answer for one certificate: window, Retry-After (seconds), explanation URL.
pub(crate) fn answer_for(ca: &Ca, cert: &CertRecord) -> (SuggestedWindow, u64, Option<String>) {
    let mut window = match cert.revoked {
        Some((at, _)) => SuggestedWindow::new(at, at + chrono::Duration::hours(1)),
        None => SuggestedWindow::last_third(cert.issued.not_before, cert.issued.not_after),
    };
    let mut retry_after = ceil_secs(ca.config.ari_retry_after);
    let mut explanation = ca.config.ari_explanation_url.clone();
    let overrides = ca.ari_overrides();
    let general = overrides.iter().rev().find(|o| o.target == AriTarget::All);
    let specific = overrides
        .iter()
        .rev()
        .find(|o| o.target != AriTarget::All && o.covers(cert));
    for o in [general, specific].into_iter().flatten() {
        if let Some(w) = o.window {
            window = w;
        }
        if let Some(r) = o.retry_after_secs {
            retry_after = r;
        }
        if let Some(u) = &o.explanation_url {
            explanation = Some(u.clone());
        }
    }
    (window, retry_after, explanation)
}

/// `GET renewalInfo/{certID}`.
pub(crate) fn renewal_info(ca: &Ca, cert_id: &str) -> Result<Reply, Problem> {
    let cert = {
        let state = ca.state();
        state
            .cert_by_cert_id
            .get(cert_id.trim_end_matches('='))
            .and_then(|id| state.certs.get(id))
            .cloned()
    };
    let cert = cert.ok_or_else(|| Problem::not_found(format!("no certificate {cert_id}")))?;
    let (window, retry_after, explanation) = answer_for(ca, &cert);
    let mut body = json!({
        "suggestedWindow": {
            "start": window.start.to_rfc3339_opts(SecondsFormat::Secs, true),
            "end": window.end.to_rfc3339_opts(SecondsFormat::Secs, true),
        }
    });
    if let Some(url) = explanation {
        body["explanationURL"] = json!(url);
    }
    Ok(Reply::json(StatusCode::OK, &body).retry_after(retry_after))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cert_id_matches_the_rfc_9773_example() {
        // RFC 9773 Appendix A: keyIdentifier 69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:
        // DE:01:C8:D4, serial 0x0087654321 (DER content bytes keep the leading 00).
        let aki = [
            0x69, 0x88, 0x5b, 0x6b, 0x87, 0x46, 0x40, 0x41, 0xe1, 0xb3, 0x7b, 0x84, 0x7b, 0xa0,
            0xae, 0x2c, 0xde, 0x01, 0xc8, 0xd4,
        ];
        let serial = [0x00, 0x87, 0x65, 0x43, 0x21];
        assert_eq!(
            cert_id(&aki, &serial),
            "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"
        );
    }

    #[test]
    fn default_window_is_the_last_third() {
        let nb = DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z")
            .expect("date")
            .with_timezone(&Utc);
        let na = nb + chrono::Duration::days(90);
        let w = SuggestedWindow::last_third(nb, na);
        assert_eq!(w.start, nb + chrono::Duration::days(60));
        assert_eq!(w.end, na);
    }

    #[test]
    fn override_json_shape() {
        let o: AriOverride = serde_json::from_str(
            r#"{"target":{"serial":"0A:BC"},"window":{"start":"2025-01-01T00:00:00Z",
               "end":"2025-01-02T00:00:00Z"},"retry_after_secs":60}"#,
        )
        .expect("parses");
        assert_eq!(o.target, AriTarget::Serial("0A:BC".into()));
        assert_eq!(normalize_serial("0A:BC"), "0abc");
        let all: AriOverride = serde_json::from_str(r#"{"target":"all"}"#).expect("parses");
        assert_eq!(all.target, AriTarget::All);
        assert_eq!(all.window, None);
    }
}
