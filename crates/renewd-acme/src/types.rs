//! Wire types: the JSON objects of RFC 8555, RFC 9773 (ARI) and the profiles draft.
//!
//! Deserialisation is lenient where servers differ (unknown fields are ignored, unknown
//! statuses become `Unknown`), strict where a missing field makes the object useless.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

/// The ACME problem-type prefix (RFC 8555 §6.7).
pub const ACME_ERROR_PREFIX: &str = "urn:ietf:params:acme:error:";

/// The directory object (§7.1.1), with the ARI `renewalInfo` resource (RFC 9773).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Directory {
    /// `newNonce`.
    pub new_nonce: String,
    /// `newAccount`.
    pub new_account: String,
    /// `newOrder`.
    pub new_order: String,
    /// `revokeCert`.
    pub revoke_cert: String,
    /// `keyChange`.
    pub key_change: String,
    /// `newAuthz` (pre-authorization), when offered.
    #[serde(default)]
    pub new_authz: Option<String>,
    /// `renewalInfo` (RFC 9773), when offered.
    #[serde(default)]
    pub renewal_info: Option<String>,
    /// `meta`.
    #[serde(default)]
    pub meta: DirectoryMeta,
}

/// The directory's `meta` object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryMeta {
    /// `termsOfService`.
    #[serde(default)]
    pub terms_of_service: Option<String>,
    /// `website`.
    #[serde(default)]
    pub website: Option<String>,
    /// `caaIdentities`.
    #[serde(default)]
    pub caa_identities: Vec<String>,
    /// `externalAccountRequired`: newAccount needs an EAB.
    #[serde(default)]
    pub external_account_required: bool,
    /// `profiles`: name → description (draft-ietf-acme-profiles). Descriptions that are not
    /// strings are kept as their JSON text.
    #[serde(default, deserialize_with = "lenient_profiles")]
    pub profiles: BTreeMap<String, String>,
}

fn lenient_profiles<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let raw = Option::<BTreeMap<String, serde_json::Value>>::deserialize(d)?;
    Ok(raw
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => (k, s),
            other => (k, other.to_string()),
        })
        .collect())
}

/// An identifier (§9.7.7): `dns` or `ip`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Identifier {
    /// `type`: `dns` or `ip`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `value`: the name (a wildcard keeps its `*.`) or the address.
    pub value: String,
}

impl Identifier {
    /// A `dns` identifier.
    pub fn dns(name: impl Into<String>) -> Identifier {
        Identifier {
            kind: "dns".to_string(),
            value: name.into(),
        }
    }

    /// An `ip` identifier.
    pub fn ip(addr: std::net::IpAddr) -> Identifier {
        Identifier {
            kind: "ip".to_string(),
            value: addr.to_string(),
        }
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

/// A problem document (RFC 7807, §6.7). Parsed leniently: any JSON object is a problem,
/// fields of the wrong type are dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// `type`, e.g. `urn:ietf:params:acme:error:badNonce`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub problem_type: Option<String>,
    /// `detail`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// `status`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// `subproblems` (§6.7.1).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subproblems: Vec<Subproblem>,
}

/// One entry of a problem's `subproblems`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Subproblem {
    /// `type`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub problem_type: Option<String>,
    /// `detail`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// `identifier`, when it names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identifier: Option<Identifier>,
}

impl Problem {
    /// Parses a problem from a response body; `None` unless it is a JSON object.
    pub fn from_json(body: &[u8]) -> Option<Problem> {
        let value: serde_json::Value = serde_json::from_slice(body).ok()?;
        Problem::from_value(&value)
    }

    /// Reads a problem out of a JSON value; `None` unless it is an object.
    pub fn from_value(value: &serde_json::Value) -> Option<Problem> {
        let obj = value.as_object()?;
        let text = |key: &str| obj.get(key).and_then(|v| v.as_str()).map(str::to_string);
        let subproblems = obj
            .get("subproblems")
            .and_then(|v| v.as_array())
            .map(|items| {
                items
                    .iter()
                    .filter_map(|item| {
                        let sub = item.as_object()?;
                        let text =
                            |key: &str| sub.get(key).and_then(|v| v.as_str()).map(str::to_string);
                        Some(Subproblem {
                            problem_type: text("type"),
                            detail: text("detail"),
                            identifier: sub
                                .get("identifier")
                                .and_then(|v| serde_json::from_value(v.clone()).ok()),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(Problem {
            problem_type: text("type"),
            detail: text("detail"),
            status: obj
                .get("status")
                .and_then(|v| v.as_u64())
                .and_then(|s| u16::try_from(s).ok()),
            subproblems,
        })
    }

    /// The ACME error name without the URN prefix (`badNonce`), or the whole type when it
    /// is not an ACME error.
    pub fn short_type(&self) -> Option<&str> {
        let t = self.problem_type.as_deref()?;
        Some(t.strip_prefix(ACME_ERROR_PREFIX).unwrap_or(t))
    }

    /// Whether this is the ACME error `name` (e.g. `"badNonce"`).
    pub fn is(&self, name: &str) -> bool {
        self.short_type() == Some(name)
    }
}

impl<'de> Deserialize<'de> for Problem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        Ok(Problem::from_value(&value).unwrap_or_default())
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.short_type(), &self.detail) {
            (Some(t), Some(d)) => write!(f, "{t}: {d}")?,
            (Some(t), None) => f.write_str(t)?,
            (None, Some(d)) => f.write_str(d)?,
            (None, None) => f.write_str("problem without type or detail")?,
        }
        for sub in &self.subproblems {
            let who = sub
                .identifier
                .as_ref()
                .map(|i| i.value.as_str())
                .unwrap_or("?");
            let t = sub.problem_type.as_deref().unwrap_or("?");
            let t = t.strip_prefix(ACME_ERROR_PREFIX).unwrap_or(t);
            write!(f, "; {who}: {t}")?;
            if let Some(d) = &sub.detail {
                write!(f, " ({d})")?;
            }
        }
        Ok(())
    }
}

macro_rules! status_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $var:ident => $label:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "camelCase")]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vdoc])* $var,)+
            /// A status this client does not know.
            #[serde(other)]
            Unknown,
        }

        impl $name {
            /// The wire spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$var => $label,)+
                    $name::Unknown => "unknown",
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

status_enum!(
    /// An order's status (§7.1.6).
    OrderStatus {
        /// Authorizations are not all valid yet.
        Pending => "pending",
        /// Ready to finalize.
        Ready => "ready",
        /// Finalize accepted; the CA is issuing.
        Processing => "processing",
        /// Issued: `certificate` holds the download URL.
        Valid => "valid",
        /// Failed: `error` says why.
        Invalid => "invalid",
    }
);

status_enum!(
    /// An authorization's status (§7.1.6).
    AuthorizationStatus {
        /// Waiting for a challenge.
        Pending => "pending",
        /// Validated.
        Valid => "valid",
        /// Validation failed.
        Invalid => "invalid",
        /// Deactivated by the client.
        Deactivated => "deactivated",
        /// Expired.
        Expired => "expired",
        /// Revoked by the server.
        Revoked => "revoked",
    }
);

status_enum!(
    /// A challenge's status (§7.1.6).
    ChallengeStatus {
        /// Not yet answered.
        Pending => "pending",
        /// The CA is validating.
        Processing => "processing",
        /// Validated.
        Valid => "valid",
        /// Failed: `error` says why.
        Invalid => "invalid",
    }
);

/// An order object (§7.1.3), with `profile` and `replaces` where the server echoes them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    /// `status`.
    pub status: OrderStatus,
    /// `expires`, as sent.
    #[serde(default)]
    pub expires: Option<String>,
    /// `identifiers`.
    #[serde(default)]
    pub identifiers: Vec<Identifier>,
    /// `authorizations` URLs.
    #[serde(default)]
    pub authorizations: Vec<String>,
    /// `finalize` URL.
    pub finalize: String,
    /// `certificate` URL, once valid.
    #[serde(default)]
    pub certificate: Option<String>,
    /// `error`, for an invalid order.
    #[serde(default)]
    pub error: Option<Problem>,
    /// `profile`, when the server echoes it.
    #[serde(default)]
    pub profile: Option<String>,
    /// `replaces` (ARI), when the server echoes it.
    #[serde(default)]
    pub replaces: Option<String>,
}

/// An authorization object (§7.1.4).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Authorization {
    /// `identifier` (a wildcard's base domain, with `wildcard: true`).
    pub identifier: Identifier,
    /// `status`.
    pub status: AuthorizationStatus,
    /// `expires`, as sent.
    #[serde(default)]
    pub expires: Option<String>,
    /// `challenges`.
    #[serde(default)]
    pub challenges: Vec<Challenge>,
    /// `wildcard`.
    #[serde(default)]
    pub wildcard: bool,
}

/// A challenge object (§8).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Challenge {
    /// `type`, e.g. `http-01`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `url`.
    pub url: String,
    /// `status`.
    pub status: ChallengeStatus,
    /// `token`.
    #[serde(default)]
    pub token: Option<String>,
    /// `error`, for an invalid challenge.
    #[serde(default)]
    pub error: Option<Problem>,
    /// `validated`, as sent.
    #[serde(default)]
    pub validated: Option<String>,
}

/// An account object (§7.1.2).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountResource {
    /// `status`: `valid`, `deactivated` or `revoked`.
    #[serde(default)]
    pub status: Option<String>,
    /// `contact`.
    #[serde(default)]
    pub contact: Vec<String>,
    /// `orders` URL.
    #[serde(default)]
    pub orders: Option<String>,
}

/// The renewalInfo answer (RFC 9773 §4.2), wire form.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RenewalInfoWire {
    pub suggested_window: SuggestedWindowWire,
    #[serde(default, rename = "explanationURL")]
    pub explanation_url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct SuggestedWindowWire {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn problem_parsing_survives_garbage() {
        for body in [
            &b""[..],
            b"<html><body>502 Bad Gateway</body></html>",
            b"[1,2,3]",
            b"\"string\"",
            b"{",
            &[0xff, 0xfe, 0x00][..],
        ] {
            assert_eq!(Problem::from_json(body), None, "{body:?}");
        }
        let odd = Problem::from_json(
            br#"{"type": 5, "detail": ["x"], "status": "500", "subproblems": "no"}"#,
        )
        .unwrap();
        assert_eq!(odd, Problem::default());
        let p = Problem::from_json(
            br#"{"type":"urn:ietf:params:acme:error:rejectedIdentifier","detail":"no","status":400,
                "subproblems":[{"type":"urn:ietf:params:acme:error:caa","detail":"CAA forbids",
                "identifier":{"type":"dns","value":"a.test"}}, 7]}"#,
        )
        .unwrap();
        assert!(p.is("rejectedIdentifier"));
        assert_eq!(p.status, Some(400));
        assert_eq!(p.subproblems.len(), 1);
        assert_eq!(
            p.to_string(),
            "rejectedIdentifier: no; a.test: caa (CAA forbids)"
        );
    }

    #[test]
    fn directory_with_meta_profiles_and_ari() {
        let d: Directory = serde_json::from_str(
            r#"{"newNonce":"n","newAccount":"a","newOrder":"o","revokeCert":"r","keyChange":"k",
                "renewalInfo":"ri","meta":{"termsOfService":"tos","externalAccountRequired":true,
                "profiles":{"classic":"The default","shortlived":{"x":1}}}}"#,
        )
        .unwrap();
        assert_eq!(d.renewal_info.as_deref(), Some("ri"));
        assert!(d.meta.external_account_required);
        assert_eq!(d.meta.profiles["classic"], "The default");
        assert_eq!(d.meta.profiles["shortlived"], r#"{"x":1}"#);
    }

    #[test]
    fn unknown_status_is_kept_as_unknown() {
        let o: Order = serde_json::from_str(r#"{"status":"weird","finalize":"f"}"#).unwrap();
        assert_eq!(o.status, OrderStatus::Unknown);
        let o: Order =
            serde_json::from_str(r#"{"status":"invalid","finalize":"f","error":"not an object"}"#)
                .unwrap();
        assert_eq!(o.error, Some(Problem::default()));
    }
}
