//! Errors that point at a place in the config file: `PATH:LINE:COL: message`.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem in a config file, located at the offending key or value.
///
/// `line` and `column` are 1-based; the column counts characters, not bytes, so an editor's
/// "go to line:column" lands on the spot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The config file, as it was named to the loader.
    pub path: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What is wrong and what would be right.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.path.display(),
            self.line,
            self.column,
            self.message
        )
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in one config file, ordered by position. Never empty.
///
/// Retrying cannot help: the file must be edited. Display prints one error per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// The errors, in file order.
    pub fn errors(&self) -> &[ConfigError] {
        &self.0
    }

    /// How many problems were found.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false for errors the loader returns; here for completeness.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl IntoIterator for ConfigErrors {
    type Item = ConfigError;
    type IntoIter = std::vec::IntoIter<ConfigError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// Why [`Config::load`](crate::Config::load) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The config file itself could not be read (missing, a directory, no permission, not
    /// UTF-8). Retrying helps only once the file is there and readable.
    #[error("{}: cannot read the config file: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The file was read but is not a valid config; every problem is listed. Retrying cannot
    /// help until the file is edited.
    #[error("{0}")]
    Invalid(ConfigErrors),
}

/// Problems collected during one load, by byte span; turned into [`ConfigErrors`] at the end.
/// Warnings (what the load could not vouch for, such as a credential it may not read here)
/// are kept apart: they never make a load fail.
#[derive(Debug, Default)]
pub(crate) struct Problems {
    found: Vec<(Range<usize>, String)>,
    warnings: Vec<(Range<usize>, String)>,
}

impl Problems {
    /// Records a problem at `span` (byte offsets into the config text).
    pub(crate) fn push(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.found.push((span, message.into()));
    }

    /// Records a warning at `span`.
    pub(crate) fn warn(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.warnings.push((span, message.into()));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    /// Locates every problem in `text` and orders them by position (stable, so problems at
    /// one spot keep the order they were found in).
    pub(crate) fn into_errors(self, path: &Path, text: &str) -> ConfigErrors {
        ConfigErrors(locate_all(self.found, path, text))
    }

    /// The warnings, located and ordered like errors.
    pub(crate) fn take_warnings(&mut self, path: &Path, text: &str) -> Vec<ConfigError> {
        locate_all(std::mem::take(&mut self.warnings), path, text)
    }
}

fn locate_all(mut found: Vec<(Range<usize>, String)>, path: &Path, text: &str) -> Vec<ConfigError> {
    let index = LineIndex::new(text);
    found.sort_by_key(|(span, _)| span.start);
    found.dedup();
    found
        .into_iter()
        .map(|(span, message)| {
            let (line, column) = index.locate(span.start);
            ConfigError {
                path: path.to_path_buf(),
                line,
                column,
                message,
            }
        })
        .collect()
}

/// Maps byte offsets to 1-based line and character column.
struct LineIndex<'t> {
    text: &'t str,
    /// Byte offset at which each line starts.
    starts: Vec<usize>,
}

impl<'t> LineIndex<'t> {
    fn new(text: &'t str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self { text, starts }
    }

    fn locate(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        // The last line start at or before `offset`; `starts[0] == 0` so there always is one.
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts[line - 1];
        let column = self.text[start..offset].chars().count() + 1;
        (line, column)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_lines_and_character_columns() {
        let text = "a = 1\nbé = \"x\"\n\nlast";
        let index = LineIndex::new(text);
        assert_eq!(index.locate(0), (1, 1));
        assert_eq!(index.locate(4), (1, 5));
        assert_eq!(index.locate(5), (1, 6)); // the newline itself
        assert_eq!(index.locate(6), (2, 1));
        // "bé = " is 6 bytes but 5 characters: the quote is column 6.
        let quote = text.find('"').unwrap();
        assert_eq!(index.locate(quote), (2, 6));
        assert_eq!(index.locate(text.find("last").unwrap()), (4, 1));
        // Past the end and inside a multi-byte character do not panic.
        assert_eq!(index.locate(10_000), (4, 5));
        assert_eq!(index.locate(8), (2, 2));
    }

    #[test]
    fn errors_are_sorted_and_displayed() {
        let mut p = Problems::default();
        p.push(6..7, "second");
        p.push(0..1, "first");
        let errs = p.into_errors(Path::new("/etc/renewd/renewd.toml"), "a = 1\nb = 2\n");
        assert_eq!(
            errs.to_string(),
            "/etc/renewd/renewd.toml:1:1: first\n/etc/renewd/renewd.toml:2:1: second"
        );
    }
}
