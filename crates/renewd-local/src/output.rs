//! The captured end of a hook's stdout or stderr: the last [`OUTPUT_TAIL_BYTES`] bytes.

use std::fmt;

use tokio::io::{AsyncRead, AsyncReadExt};

/// How much of each of a hook's output streams is kept (the end of it).
pub const OUTPUT_TAIL_BYTES: usize = 64 * 1024;

/// The end of one output stream of a hook.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct OutputTail {
    /// The last [`OUTPUT_TAIL_BYTES`] bytes at most, as text (invalid UTF-8 replaced).
    pub text: String,
    /// How many bytes the stream carried in all.
    pub total_bytes: u64,
}

impl OutputTail {
    /// Whether the beginning of the stream was dropped.
    pub fn truncated(&self) -> bool {
        self.total_bytes > self.text.len() as u64
    }
}

impl fmt::Debug for OutputTail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutputTail")
            .field("total_bytes", &self.total_bytes)
            .field("text", &crate::env::one_line(&self.text, 200))
            .finish()
    }
}

/// Collects the tail of a stream while it is being read.
#[derive(Debug, Default)]
pub(crate) struct TailBuffer {
    buf: Vec<u8>,
    total: u64,
}

impl TailBuffer {
    pub(crate) fn push(&mut self, chunk: &[u8]) {
        self.total += chunk.len() as u64;
        self.buf.extend_from_slice(chunk);
        // Drop the front in batches, not on every chunk.
        if self.buf.len() > 2 * OUTPUT_TAIL_BYTES {
            let excess = self.buf.len() - OUTPUT_TAIL_BYTES;
            self.buf.drain(..excess);
        }
    }

    pub(crate) fn finish(mut self) -> OutputTail {
        if self.buf.len() > OUTPUT_TAIL_BYTES {
            let excess = self.buf.len() - OUTPUT_TAIL_BYTES;
            self.buf.drain(..excess);
        }
        // Do not start in the middle of a UTF-8 sequence when the front was cut.
        let mut start = 0;
        if self.total > self.buf.len() as u64 {
            while start < self.buf.len().min(3) && self.buf[start] & 0xC0 == 0x80 {
                start += 1;
            }
        }
        OutputTail {
            text: String::from_utf8_lossy(&self.buf[start..]).into_owned(),
            total_bytes: self.total,
        }
    }
}

/// Reads `stream` to its end into `tail` (shared, so a reader abandoned early still leaves
/// what it read).
pub(crate) async fn read_tail(
    mut stream: impl AsyncRead + Unpin,
    tail: std::sync::Arc<std::sync::Mutex<TailBuffer>>,
) {
    let mut chunk = vec![0u8; 8192];
    loop {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if let Ok(mut tail) = tail.lock() {
                    tail.push(&chunk[..n]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_end() {
        let mut t = TailBuffer::default();
        for i in 0..100u32 {
            t.push(format!("line {i:05}\n").repeat(200).as_bytes());
        }
        let tail = t.finish();
        assert!(tail.truncated());
        assert_eq!(tail.total_bytes, 100 * 200 * 11);
        assert_eq!(tail.text.len(), OUTPUT_TAIL_BYTES);
        assert!(tail.text.ends_with("line 00099\n"));
    }

    #[test]
    fn short_output_is_whole_and_cut_utf8_is_not_garbled() {
        let mut t = TailBuffer::default();
        t.push(b"hello\n");
        let tail = t.finish();
        assert_eq!(tail.text, "hello\n");
        assert!(!tail.truncated());

        let mut t = TailBuffer::default();
        // 'é' is two bytes: an odd total cuts one in half at the front.
        t.push("é".repeat(OUTPUT_TAIL_BYTES / 2 + 1).as_bytes());
        t.push(b"x");
        let tail = t.finish();
        assert!(!tail.text.contains('\u{FFFD}'));
        assert!(tail.text.ends_with("éx"));
    }
}
