//! Validated names: certificate names, CA names and DNS names.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a name was refused. Retrying cannot help: the input itself is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The name is empty.
    #[error("the name is empty")]
    Empty,
    /// The name is longer than allowed.
    #[error("the name is {len} characters long; at most {max} are allowed")]
    TooLong {
        /// Length of the rejected name.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The name holds a character that is not allowed.
    #[error("{ch:?} is not allowed in {what}; use {allowed}")]
    BadChar {
        /// The offending character.
        ch: char,
        /// What kind of name was checked.
        what: &'static str,
        /// The allowed characters, in words.
        allowed: &'static str,
    },
    /// A DNS label is malformed (empty, too long, or starts/ends with '-').
    #[error("label {label:?} is not a valid DNS label: {reason}")]
    BadLabel {
        /// The label.
        label: String,
        /// Why.
        reason: &'static str,
    },
    /// A wildcard appears anywhere but as the whole first label.
    #[error("a wildcard is only allowed as the whole first label, as in *.example.com")]
    BadWildcard,
    /// The name starts with a character that is not allowed first.
    #[error("the name must start with a letter or digit")]
    BadStart,
}

const SIMPLE_MAX: usize = 64;

/// Checks a simple identifier: ASCII letters, digits, `.`, `_` and `-`; starts with a letter
/// or digit; at most 64 characters. Such a name is safe as a path component and a metric label.
fn check_simple(s: &str, what: &'static str) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(NameError::Empty);
    }
    if s.len() > SIMPLE_MAX {
        return Err(NameError::TooLong {
            len: s.len(),
            max: SIMPLE_MAX,
        });
    }
    if let Some(ch) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(NameError::BadChar {
            ch,
            what,
            allowed: "ASCII letters, digits, '.', '_' and '-'",
        });
    }
    if !s.as_bytes()[0].is_ascii_alphanumeric() {
        return Err(NameError::BadStart);
    }
    Ok(())
}

macro_rules! simple_name {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps `s`.
            pub fn new(s: impl Into<String>) -> Result<Self, NameError> {
                let s = s.into();
                check_simple(&s, $what)?;
                Ok(Self(s))
            }

            /// The name as written.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, NameError> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = NameError;
            fn try_from(s: String) -> Result<Self, NameError> {
                Self::new(s)
            }
        }

        impl From<$name> for String {
            fn from(n: $name) -> String {
                n.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

simple_name!(
    /// The name of a managed certificate (`[[cert]] name`); also its directory under
    /// `STATE/certs/`.
    CertName,
    "a certificate name"
);
simple_name!(
    /// The name of a configured CA (`[[ca]] name`).
    CaName,
    "a CA name"
);

/// A DNS name to put in a certificate: lower-cased, without a trailing dot, each label
/// 1–63 characters of letters, digits and inner hyphens, at most 253 characters in all, and
/// optionally `*.` in front (a wildcard).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DomainName(String);

impl DomainName {
    /// Validates and normalises `s` (lower case, trailing dot removed).
    pub fn new(s: impl AsRef<str>) -> Result<Self, NameError> {
        let s = s.as_ref();
        let s = s.strip_suffix('.').unwrap_or(s).to_ascii_lowercase();
        if s.is_empty() {
            return Err(NameError::Empty);
        }
        if s.len() > 253 {
            return Err(NameError::TooLong {
                len: s.len(),
                max: 253,
            });
        }
        let rest = s.strip_prefix("*.").unwrap_or(&s);
        if rest.contains('*') {
            return Err(NameError::BadWildcard);
        }
        let labels: Vec<&str> = rest.split('.').collect();
        for label in &labels {
            check_label(label)?;
        }
        Ok(Self(s))
    }

    /// The normalised name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is a wildcard name (`*.example.com`).
    pub fn is_wildcard(&self) -> bool {
        self.0.starts_with("*.")
    }

    /// The name without a leading `*.`: where a dns-01 record goes.
    pub fn base(&self) -> &str {
        self.0.strip_prefix("*.").unwrap_or(&self.0)
    }
}

fn check_label(label: &str) -> Result<(), NameError> {
    let bad = |reason| NameError::BadLabel {
        label: label.to_string(),
        reason,
    };
    if label.is_empty() {
        return Err(bad("it is empty (two dots in a row, or a leading dot)"));
    }
    if label.len() > 63 {
        return Err(bad("it is longer than 63 characters"));
    }
    if let Some(ch) = label
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
    {
        return Err(NameError::BadChar {
            ch,
            what: "a DNS name",
            allowed: "letters, digits and '-' (IDNs in their xn-- form)",
        });
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err(bad("it starts or ends with '-'"));
    }
    Ok(())
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for DomainName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        Self::new(s)
    }
}

impl TryFrom<String> for DomainName {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, NameError> {
        Self::new(s)
    }
}

impl From<DomainName> for String {
    fn from(n: DomainName) -> String {
        n.0
    }
}

impl AsRef<str> for DomainName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_names() {
        assert!(CertName::new("www").is_ok());
        assert!(CertName::new("www.example-1_a").is_ok());
        assert_eq!(CertName::new(""), Err(NameError::Empty));
        assert_eq!(CertName::new("-x"), Err(NameError::BadStart));
        assert!(matches!(
            CertName::new("a/b"),
            Err(NameError::BadChar { ch: '/', .. })
        ));
        assert!(matches!(
            CaName::new("x".repeat(65)),
            Err(NameError::TooLong { len: 65, .. })
        ));
    }

    #[test]
    fn domain_names() {
        let d = DomainName::new("WWW.Example.COM.").unwrap();
        assert_eq!(d.as_str(), "www.example.com");
        assert!(!d.is_wildcard());
        let w = DomainName::new("*.example.com").unwrap();
        assert!(w.is_wildcard());
        assert_eq!(w.base(), "example.com");
        assert_eq!(DomainName::new("a.*.com"), Err(NameError::BadWildcard));
        assert_eq!(DomainName::new("*"), Err(NameError::BadWildcard));
        assert!(matches!(
            DomainName::new("a..b"),
            Err(NameError::BadLabel { .. })
        ));
        assert!(matches!(
            DomainName::new("-a.b"),
            Err(NameError::BadLabel { .. })
        ));
        assert!(matches!(
            DomainName::new("a b.c"),
            Err(NameError::BadChar { ch: ' ', .. })
        ));
        assert!(DomainName::new(format!("{}.com", "a".repeat(64))).is_err());
        assert!(DomainName::new("xn--bcher-kva.example").is_ok());
        assert!(DomainName::new("localhost").is_ok());
    }

    #[test]
    fn serde_validates() {
        let ok: CertName = serde_json::from_str("\"www\"").unwrap();
        assert_eq!(ok.as_str(), "www");
        assert!(serde_json::from_str::<CertName>("\"a b\"").is_err());
        assert!(serde_json::from_str::<DomainName>("\"a..b\"").is_err());
    }
}
