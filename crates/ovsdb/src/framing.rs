//! Splitting the byte stream into JSON texts. OVSDB (RFC 7047 §4) sends JSON-RPC objects back to
//! back with no length prefix or delimiter, so the reader must find where each object ends. This
//! scanner does that without parsing: it tracks nesting depth, strings and escapes, and hands out
//! each complete top-level object as a slice. Pure: no I/O, never panics on any input.

/// Largest JSON text accepted from a server (a full `Open_vSwitch` dump of thousands of ports is a
/// few MiB); a peer that sends more without ending an object is treated as broken.
pub const MAX_MESSAGE: usize = 64 << 20;

/// Why the stream cannot be split into JSON objects.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    #[error("expected '{{' to start a JSON-RPC message, found byte {0:#04x}")]
    NotAnObject(u8),
    #[error("JSON-RPC message larger than {MAX_MESSAGE} bytes")]
    TooLarge,
}

/// Incremental splitter: feed bytes with [`Splitter::push`], take complete objects with
/// [`Splitter::next_message`]. Scanning resumes where it stopped, so each byte is looked at once.
#[derive(Debug, Default)]
pub struct Splitter {
    buf: Vec<u8>,
    /// Bytes of `buf` already scanned as part of the current (incomplete) object.
    scanned: usize,
    depth: usize,
    in_string: bool,
    escaped: bool,
}

impl Splitter {
    pub fn new() -> Splitter {
        Splitter::default()
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes held that do not yet form a complete object (besides leading whitespace).
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// The next complete top-level object, if the buffer holds one.
    pub fn next_message(&mut self) -> Result<Option<Vec<u8>>, FramingError> {
        if self.depth == 0 {
            // Between messages: only whitespace may precede the next '{'.
            let skip = self
                .buf
                .iter()
                .take_while(|b| b.is_ascii_whitespace())
                .count();
            self.buf.drain(..skip);
            self.scanned = 0;
            match self.buf.first() {
                None => return Ok(None),
                Some(b'{') => {}
                Some(&b) => return Err(FramingError::NotAnObject(b)),
            }
        }
        while self.scanned < self.buf.len() {
            let b = self.buf[self.scanned];
            self.scanned += 1;
            if self.in_string {
                match (self.escaped, b) {
                    (true, _) => self.escaped = false,
                    (false, b'\\') => self.escaped = true,
                    (false, b'"') => self.in_string = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    // A stray closer at depth 0 cannot happen: depth 0 is only ever left by '{'.
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 0 {
                        let msg: Vec<u8> = self.buf.drain(..self.scanned).collect();
                        self.scanned = 0;
                        return Ok(Some(msg));
                    }
                }
                _ => {}
            }
        }
        if self.buf.len() > MAX_MESSAGE {
            return Err(FramingError::TooLarge);
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(s: &mut Splitter) -> Vec<String> {
        let mut out = vec![];
        while let Some(m) = s.next_message().unwrap() {
            out.push(String::from_utf8(m).unwrap());
        }
        out
    }

    #[test]
    fn splits_back_to_back_objects_with_braces_inside_strings() {
        let mut s = Splitter::new();
        s.push(br#"{"a":"}{\"}"} {"b":[1,{"c":2}]}"#);
        assert_eq!(all(&mut s), [r#"{"a":"}{\"}"}"#, r#"{"b":[1,{"c":2}]}"#]);
        assert_eq!(s.pending(), 0);
    }

    #[test]
    fn resumes_across_arbitrary_chunk_boundaries() {
        let text = br#"{"id":1,"result":["x\\"],"error":null}{"id":2,"result":{}}"#;
        for cut in 0..text.len() {
            let mut s = Splitter::new();
            s.push(&text[..cut]);
            let mut got = all(&mut s);
            s.push(&text[cut..]);
            got.extend(all(&mut s));
            assert_eq!(got.len(), 2, "cut at {cut}: {got:?}");
            assert_eq!(got.concat().as_bytes(), text);
        }
    }

    #[test]
    fn garbage_between_messages_is_an_error_not_a_panic() {
        let mut s = Splitter::new();
        s.push(b"{}x{}");
        assert_eq!(s.next_message().unwrap().as_deref(), Some(&b"{}"[..]));
        assert_eq!(s.next_message(), Err(FramingError::NotAnObject(b'x')));
        for junk in [&b"]]]"[..], b"\"", b"{\"\\", b"\xff\xfe", b"{]}"] {
            let mut s = Splitter::new();
            s.push(junk);
            let _ = s.next_message();
        }
    }
}
