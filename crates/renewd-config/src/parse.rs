//! Text → [`RawConfig`], reporting every syntax and type error rather than the first.
//!
//! Serde stops at the first error it meets. To report them all, a document that fails is
//! taken apart: each top-level key, each key of each section and each key of each `[[ca]]`
//! / `[[cert]]` entry is put alone into a small document of its own (keeping its original
//! spans) and deserialized as a [`RawConfig`]. Because every raw key is optional, such a
//! one-key document fails only for a problem of that key. No schema is repeated here: the
//! serde types remain the one description of the file.

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeArray, DeString, DeTable, DeValue};

use crate::error::Problems;
use crate::raw::RawConfig;

/// Parses `text`; on failure every problem found is in `problems` and `None` is returned.
pub(crate) fn parse_raw(text: &str, problems: &mut Problems) -> Option<RawConfig> {
    let (root, syntax_errors) = DeTable::parse_recoverable(text);
    if !syntax_errors.is_empty() {
        // A document that does not parse cannot be checked further: what the parser
        // recovered may lack keys that are in fact there.
        for e in syntax_errors {
            push_toml_error(problems, text, &e);
        }
        return None;
    }
    let whole = match deserialize(root.clone()) {
        Ok(raw) => return Some(raw),
        Err(e) => e,
    };
    let mut found_any = false;
    for doc in one_key_documents(&root) {
        if let Err(e) = deserialize(doc) {
            push_toml_error(problems, text, &e);
            found_any = true;
        }
    }
    if !found_any {
        // Not expected (every key is optional), but never lose the error.
        push_toml_error(problems, text, &whole);
    }
    None
}

fn deserialize(doc: Spanned<DeTable<'_>>) -> Result<RawConfig, toml::de::Error> {
    RawConfig::deserialize(toml::de::Deserializer::from(doc))
}

type Key<'i> = Spanned<DeString<'i>>;
type Value<'i> = Spanned<DeValue<'i>>;

/// Every document holding exactly one leaf key of `root`, nested as in `root`.
fn one_key_documents<'i>(root: &Spanned<DeTable<'i>>) -> Vec<Spanned<DeTable<'i>>> {
    let doc = |key: &Key<'i>, value: Value<'i>| Spanned::new(root.span(), single(key, value));
    let mut docs = Vec::new();
    for (key, value) in root.get_ref().iter() {
        match value.get_ref() {
            DeValue::Table(section) if !section.is_empty() => {
                for (k, v) in section.iter() {
                    let one = Spanned::new(value.span(), DeValue::Table(single(k, v.clone())));
                    docs.push(doc(key, one));
                }
            }
            DeValue::Array(entries) if !entries.is_empty() => {
                for entry in entries.iter() {
                    for piece in entry_pieces(entry) {
                        let mut array = DeArray::new();
                        array.push(piece);
                        docs.push(doc(key, Spanned::new(value.span(), DeValue::Array(array))));
                    }
                }
            }
            _ => docs.push(doc(key, value.clone())),
        }
    }
    docs
}

/// A `[[ca]]`/`[[cert]]` entry split into one-key tables; anything else stays whole.
fn entry_pieces<'i>(entry: &Value<'i>) -> Vec<Value<'i>> {
    match entry.get_ref() {
        DeValue::Table(t) if !t.is_empty() => t
            .iter()
            .map(|(k, v)| Spanned::new(entry.span(), DeValue::Table(single(k, v.clone()))))
            .collect(),
        _ => vec![entry.clone()],
    }
}

fn single<'i>(key: &Key<'i>, value: Value<'i>) -> DeTable<'i> {
    let mut t = DeTable::new();
    t.insert(key.clone(), value);
    t
}

fn push_toml_error(problems: &mut Problems, text: &str, e: &toml::de::Error) {
    let span = e.span().unwrap_or(0..0);
    let message = friendlier(e.message(), text.get(span.clone()).unwrap_or(""));
    problems.push(span, message);
}

/// Rewrites serde's Rust-flavoured words into TOML's.
fn friendlier(message: &str, at: &str) -> String {
    if message == "duplicate key" {
        return format!("duplicate key `{at}`: it is already set above; keep one of them");
    }
    let mut m = message.to_string();
    for (rust, toml) in [
        ("expected i64", "expected an integer"),
        ("expected f64", "expected a number"),
        ("expected a sequence", "expected an array"),
        ("invalid type: sequence", "invalid type: array"),
        ("invalid type: map", "invalid type: table"),
        (" as i128,", ","),
    ] {
        m = m.replace(rust, toml);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<(usize, String)> {
        let mut p = Problems::default();
        assert!(parse_raw(text, &mut p).is_none());
        p.into_errors(std::path::Path::new("t.toml"), text)
            .into_iter()
            .map(|e| (e.line, e.message))
            .collect()
    }

    #[test]
    fn a_valid_document_parses() {
        let mut p = Problems::default();
        let raw = parse_raw("state_dir = \"/x\"\n[[cert]]\nname = \"a\"\n", &mut p).unwrap();
        assert_eq!(raw.cert.len(), 1);
        assert!(p.is_empty());
    }

    #[test]
    fn reports_every_type_and_key_error() {
        let text = "\
state_dir = 5
bogus = 1
[daemon]
workers = \"four\"
log = \"json\"
[[cert]]
name = \"a\"
domain = [\"x\"]
[[cert]]
name = \"b\"
cas = \"zerossl\"
";
        let errs = errors(text);
        let lines: Vec<usize> = errs.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, vec![1, 2, 4, 5, 8, 11], "{errs:?}");
        assert!(errs[0].1.contains("expected a string"));
        assert!(errs[1].1.contains("unknown field `bogus`"));
        assert!(errs[2].1.contains("expected an integer"), "{}", errs[2].1);
        assert!(errs[3].1.contains("unknown field `log`"));
        assert!(errs[4].1.contains("unknown field `domain`"));
        assert!(errs[5].1.contains("expected an array"), "{}", errs[5].1);
    }

    #[test]
    fn reports_syntax_errors_and_stops() {
        let errs = errors("a = \nb = 1\n[daemon]\nworkers = 'x\n");
        assert!(errs.len() >= 2, "{errs:?}");
        assert_eq!(errs[0].0, 1);
        assert!(errs.iter().any(|(l, _)| *l == 4));
    }

    #[test]
    fn names_the_duplicate_key() {
        let errs = errors("[daemon]\nworkers = 1\nworkers = 2\n");
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].0, 3);
        assert!(
            errs[0].1.contains("duplicate key `workers`"),
            "{}",
            errs[0].1
        );
    }
}
