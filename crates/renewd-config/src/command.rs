//! A program to run, as an argv list: no shell is involved.

use std::fmt;
use std::path::Path;

/// A hook or helper program as `argv`: `argv[0]` is an absolute path to the program, the
/// rest are its arguments, passed as they are (no shell, no splitting, no globbing).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Command {
    argv: Vec<String>,
}

impl Command {
    /// Wraps `argv`, or `None` if it is empty, `argv[0]` is not an absolute path, or any
    /// element holds a NUL byte (which no program can receive).
    pub fn new(argv: Vec<String>) -> Option<Self> {
        let program = argv.first()?;
        if !Path::new(program).is_absolute() || argv.iter().any(|a| a.contains('\0')) {
            return None;
        }
        Some(Self { argv })
    }

    /// The program to execute (`argv[0]`).
    pub fn program(&self) -> &Path {
        // `new` guarantees at least one element.
        Path::new(&self.argv[0])
    }

    /// The arguments after the program.
    pub fn args(&self) -> &[String] {
        &self.argv[1..]
    }

    /// The whole argv, program first.
    pub fn argv(&self) -> &[String] {
        &self.argv
    }
}

/// Shell-like rendering for logs: words with spaces or quotes are double-quoted.
impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, arg) in self.argv.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            if !arg.is_empty()
                && arg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/._-=:,@+%".contains(c))
            {
                f.write_str(arg)?;
            } else {
                write!(f, "{arg:?}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn requires_an_absolute_program() {
        let c = Command::new(argv(&["/usr/bin/systemctl", "reload", "nginx"])).unwrap();
        assert_eq!(c.program(), Path::new("/usr/bin/systemctl"));
        assert_eq!(c.args(), ["reload", "nginx"]);
        assert_eq!(c.argv().len(), 3);
        assert!(Command::new(vec![]).is_none());
        assert!(Command::new(argv(&["systemctl", "reload"])).is_none());
        assert!(Command::new(argv(&["/bin/echo", "a\0b"])).is_none());
    }

    #[test]
    fn displays_like_a_shell_line() {
        let c = Command::new(argv(&["/bin/sh", "-c", "echo hi", ""])).unwrap();
        assert_eq!(c.to_string(), r#"/bin/sh -c "echo hi" """#);
    }
}
