//! Answers: a [`Reply`] (status, headers, body) and the ACME [`Problem`] documents.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderName, LINK, LOCATION, RETRY_AFTER};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde::Serialize;
use serde_json::json;

/// The URN prefix of ACME problem types (RFC 8555 §6.7).
pub(crate) const ACME_ERROR: &str = "urn:ietf:params:acme:error:";

/// One HTTP answer before the server adds its common headers.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Whether the CA itself answered: such answers carry `Replay-Nonce`, `Link: rel=index`
    /// and `Cache-Control`. Gateway pages injected by a fault do not.
    pub from_ca: bool,
}

impl Reply {
    /// A bare answer from the CA.
    pub fn new(status: StatusCode, content_type: Option<&'static str>, body: Bytes) -> Reply {
        let mut headers = HeaderMap::new();
        if let Some(ct) = content_type {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
        }
        Reply {
            status,
            headers,
            body,
            from_ca: true,
        }
    }

    /// A JSON answer from the CA.
    pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Reply {
        match serde_json::to_vec(value) {
            Ok(body) => Reply::new(status, Some("application/json"), Bytes::from(body)),
            Err(e) => Problem::server_internal(format!("cannot encode answer: {e}")).into_reply(),
        }
    }

    /// Adds a header; a value that is not a valid header value is left out (values come
    /// from our own URLs, which are checked when the request's host is read).
    pub fn header(mut self, name: HeaderName, value: &str) -> Reply {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.append(name, v);
        }
        self
    }

    /// `Location: url`.
    pub fn location(self, url: &str) -> Reply {
        self.header(LOCATION, url)
    }

    /// `Link: <url>;rel="rel"`.
    pub fn link(self, url: &str, rel: &str) -> Reply {
        self.header(LINK, &format!("<{url}>;rel=\"{rel}\""))
    }

    /// `Retry-After: secs`.
    pub fn retry_after(self, secs: u64) -> Reply {
        self.header(RETRY_AFTER, &secs.to_string())
    }
}

/// An ACME problem document (RFC 7807 / RFC 8555 §6.7) with its HTTP status.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Problem {
    pub status: StatusCode,
    /// The short type (`badNonce`), or a full URN when it holds a colon.
    pub kind: String,
    pub detail: String,
    pub retry_after: Option<u64>,
    pub location: Option<String>,
}

impl Problem {
    pub fn new(status: StatusCode, kind: &str, detail: impl Into<String>) -> Problem {
        Problem {
            status,
            kind: kind.to_owned(),
            detail: detail.into(),
            retry_after: None,
            location: None,
        }
    }

    pub fn malformed(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, "malformed", detail)
    }
    pub fn not_found(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, "malformed", detail)
    }
    pub fn unauthorized(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::FORBIDDEN, "unauthorized", detail)
    }
    pub fn bad_nonce(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, "badNonce", detail)
    }
    pub fn bad_signature_algorithm(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, "badSignatureAlgorithm", detail)
    }
    pub fn account_does_not_exist(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, "accountDoesNotExist", detail)
    }
    pub fn bad_csr(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, "badCSR", detail)
    }
    pub fn order_not_ready(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::FORBIDDEN, "orderNotReady", detail)
    }
    pub fn invalid_profile(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, "invalidProfile", detail)
    }
    pub fn already_replaced(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::CONFLICT, "alreadyReplaced", detail)
    }
    pub fn already_revoked(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, "alreadyRevoked", detail)
    }
    pub fn rejected_identifier(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, "rejectedIdentifier", detail)
    }
    pub fn unsupported_identifier(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, "unsupportedIdentifier", detail)
    }
    pub fn external_account_required(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::UNAUTHORIZED, "externalAccountRequired", detail)
    }
    pub fn server_internal(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "serverInternal", detail)
    }
    pub fn rate_limited(detail: impl Into<String>, retry_after: u64) -> Problem {
        Problem {
            retry_after: Some(retry_after),
            ..Problem::new(StatusCode::TOO_MANY_REQUESTS, "rateLimited", detail)
        }
    }

    /// The full `type` URN.
    pub fn type_uri(&self) -> String {
        if self.kind.contains(':') {
            self.kind.clone()
        } else {
            format!("{ACME_ERROR}{}", self.kind)
        }
    }

    /// The document as JSON (also embedded in orders and challenges as `error`).
    pub fn to_json(&self) -> serde_json::Value {
        let mut doc = json!({
            "type": self.type_uri(),
            "detail": self.detail,
            "status": self.status.as_u16(),
        });
        if self.kind == "badSignatureAlgorithm" {
            doc["algorithms"] = json!(crate::jwk::ALGORITHMS);
        }
        doc
    }

    pub fn into_reply(self) -> Reply {
        let body = serde_json::to_vec(&self.to_json()).unwrap_or_default();
        let mut reply = Reply::new(
            self.status,
            Some("application/problem+json"),
            Bytes::from(body),
        );
        if let Some(secs) = self.retry_after {
            reply = reply.retry_after(secs);
        }
        if let Some(url) = &self.location {
            reply = reply.location(url);
        }
        reply
    }
}

impl From<Problem> for Reply {
    fn from(p: Problem) -> Reply {
        p.into_reply()
    }
}
