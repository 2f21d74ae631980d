//! Bounds-checked big-endian reading and padding helpers shared by every codec module.

use crate::DecodeError;

/// A cursor over a byte slice whose every read is checked; `what` names the structure for errors.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader { buf, pos: 0, what }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::Truncated {
                what: self.what,
                need: n,
                have: self.remaining(),
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.bytes(N)?);
        Ok(a)
    }

    pub(crate) fn skip(&mut self, n: usize) -> Result<(), DecodeError> {
        self.bytes(n).map(|_| ())
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.bytes(1)?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// Everything not read yet.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let s = &self.buf[self.pos..];
        self.pos = self.buf.len();
        s
    }

    /// Splits off a sub-structure whose total length `len` (header included) was read from the
    /// `hdr` bytes already consumed; checks `len >= hdr` and that it fits.
    pub(crate) fn sub(
        &mut self,
        len: usize,
        hdr: usize,
        what: &'static str,
    ) -> Result<Reader<'a>, DecodeError> {
        if len < hdr {
            return Err(DecodeError::BadLength { what, len });
        }
        Ok(Reader::new(self.bytes(len - hdr)?, what))
    }
}

/// Bytes needed to pad `len` to a multiple of 8.
pub(crate) fn pad8(len: usize) -> usize {
    (8 - len % 8) % 8
}

/// Appends zeros so that `out.len() - start` is a multiple of 8.
pub(crate) fn pad_to_8(out: &mut Vec<u8>, start: usize) {
    let n = pad8(out.len() - start);
    out.extend(std::iter::repeat_n(0, n));
}

/// Writes `len` (as u16) at `at`, for length fields known only after the body is written.
pub(crate) fn patch_len(out: &mut [u8], at: usize, len: usize) {
    out[at..at + 2].copy_from_slice(&(len as u16).to_be_bytes());
}
