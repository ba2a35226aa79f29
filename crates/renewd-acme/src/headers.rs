//! Reading response headers and bodies: `Retry-After`, `Link`, `Location`, and the short
//! body snippet errors keep.

use chrono::{DateTime, TimeDelta, Utc};
use http::HeaderMap;

/// How many characters of a response body an error keeps.
pub(crate) const SNIPPET_CHARS: usize = 200;

/// The longest delay a `Retry-After` in seconds is believed for (a year); larger values are
/// clamped rather than overflowing.
const MAX_RETRY_AFTER_SECS: i64 = 365 * 24 * 3600;

/// Parses a `Retry-After` value (RFC 9110 §10.2.3): delay-seconds or an HTTP-date. Returns
/// the absolute time, or `None` for anything else.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        let secs = value
            .parse::<i64>()
            .unwrap_or(MAX_RETRY_AFTER_SECS)
            .min(MAX_RETRY_AFTER_SECS);
        return Some(now + TimeDelta::seconds(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(DateTime::<Utc>::from(at))
}

/// The `Retry-After` of a response as an absolute time.
pub(crate) fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let value = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(value, now)
}

/// The targets of every `Link` header with relation `rel` (RFC 8288), resolved against
/// `base` when relative. Malformed entries are skipped.
pub fn parse_links(headers: &HeaderMap, rel: &str, base: &str) -> Vec<String> {
    headers
        .get_all(http::header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(split_link_values)
        .filter(|(_, rels)| {
            rels.split_ascii_whitespace()
                .any(|r| r.eq_ignore_ascii_case(rel))
        })
        .map(|(target, _)| resolve(base, &target))
        .collect()
}

/// Splits one `Link` header value into (target, rel) pairs.
fn split_link_values(value: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(open) = rest.find('<') {
        let Some(close) = rest[open..].find('>') else {
            break;
        };
        let target = rest[open + 1..open + close].trim().to_string();
        rest = &rest[open + close + 1..];
        // Parameters run to the next ',' that is outside quotes.
        let mut in_quotes = false;
        let end = rest
            .char_indices()
            .find(|&(_, c)| {
                if c == '"' {
                    in_quotes = !in_quotes;
                }
                c == ',' && !in_quotes
            })
            .map(|(i, _)| i)
            .unwrap_or(rest.len());
        let params = &rest[..end];
        rest = &rest[end..];
        let rel = params
            .split(';')
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("rel"))
            .map(|(_, v)| v.trim().trim_matches('"').to_string())
            .unwrap_or_default();
        out.push((target, rel));
    }
    out
}

/// Resolves a possibly relative reference against an absolute base URL (enough for the
/// absolute and absolute-path references ACME servers send).
pub(crate) fn resolve(base: &str, target: &str) -> String {
    if target.contains("://") {
        return target.to_string();
    }
    let Some(scheme_end) = base.find("://") else {
        return target.to_string();
    };
    let authority_end = base[scheme_end + 3..]
        .find('/')
        .map(|i| scheme_end + 3 + i)
        .unwrap_or(base.len());
    if target.starts_with('/') {
        format!("{}{}", &base[..authority_end], target)
    } else {
        let dir_end = base
            .rfind('/')
            .filter(|&i| i >= authority_end)
            .unwrap_or(authority_end);
        format!("{}/{}", &base[..dir_end], target)
    }
}

/// The `Location` header, resolved against the request URL.
pub(crate) fn location(headers: &HeaderMap, base: &str) -> Option<String> {
    let value = headers.get(http::header::LOCATION)?.to_str().ok()?;
    Some(resolve(base, value.trim()))
}

/// A short, single-line, human-readable excerpt of a body: lossy UTF-8, whitespace runs
/// collapsed, at most 200 characters (cut on a character boundary, with `…`).
pub fn body_snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out = String::new();
    let mut count = 0;
    let mut pending_space = false;
    for ch in text.chars() {
        if ch.is_whitespace() || ch.is_control() {
            pending_space = !out.is_empty();
            continue;
        }
        let needed = 1 + usize::from(pending_space);
        if count + needed > SNIPPET_CHARS {
            out.push('…');
            return out;
        }
        if pending_space {
            out.push(' ');
            count += 1;
            pending_space = false;
        }
        out.push(ch);
        count += 1;
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    #[test]
    fn retry_after_seconds_date_and_garbage() {
        assert_eq!(
            parse_retry_after("120", now()),
            Some(now() + TimeDelta::seconds(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now()), Some(now()));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now()),
            Some(
                DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z")
                    .unwrap()
                    .to_utc()
            )
        );
        let huge = parse_retry_after("99999999999999999999999", now()).unwrap();
        assert_eq!(huge, now() + TimeDelta::seconds(MAX_RETRY_AFTER_SECS));
        for garbage in ["", "-5", "1.5", "soon", "Wed, 99 Foo 2015", "12 s"] {
            assert_eq!(parse_retry_after(garbage, now()), None, "{garbage:?}");
        }
    }

    #[test]
    fn link_headers() {
        let mut h = HeaderMap::new();
        h.append(
            http::header::LINK,
            HeaderValue::from_static(
                r#"<https://ca/cert/1/1>;rel="alternate", <https://ca/dir>;rel="index""#,
            ),
        );
        h.append(
            http::header::LINK,
            HeaderValue::from_static(r#"</cert/1/2>; title="a,b"; rel=alternate"#),
        );
        h.append(http::header::LINK, HeaderValue::from_static("<broken"));
        let alt = parse_links(&h, "alternate", "https://ca:14000/cert/1");
        assert_eq!(
            alt,
            vec!["https://ca/cert/1/1", "https://ca:14000/cert/1/2"]
        );
        assert_eq!(
            parse_links(&h, "index", "https://ca/x"),
            vec!["https://ca/dir"]
        );
        assert!(parse_links(&h, "up", "https://ca/x").is_empty());
    }

    #[test]
    fn resolves_relative_references() {
        assert_eq!(resolve("https://a:1/x/y", "/z"), "https://a:1/z");
        assert_eq!(resolve("https://a:1/x/y", "z"), "https://a:1/x/z");
        assert_eq!(resolve("https://a", "z"), "https://a/z");
        assert_eq!(resolve("https://a/x", "http://b/c"), "http://b/c");
    }

    #[test]
    fn snippet_truncates_on_char_boundaries() {
        let html = "<html>\n  <head><title>502 Bad Gateway</title></head>\n</html>";
        assert_eq!(
            body_snippet(html.as_bytes()),
            "<html> <head><title>502 Bad Gateway</title></head> </html>"
        );
        let long = "é".repeat(500);
        let s = body_snippet(long.as_bytes());
        assert_eq!(s.chars().count(), SNIPPET_CHARS + 1);
        assert!(s.ends_with('…'));
        let emoji = "🙂".repeat(SNIPPET_CHARS);
        assert_eq!(body_snippet(emoji.as_bytes()), emoji);
        let cut = &"€uro".as_bytes()[..2]; // half a multi-byte character
        assert_eq!(body_snippet(cut), "\u{fffd}");
        assert_eq!(body_snippet(b""), "");
    }
}
