//! The decoder's error type: every malformed input ends here, never in a panic.

/// Why a byte sequence is not a valid OpenFlow 1.3 message (or part of one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("truncated {what}: need {need} bytes, have {have}")]
    Truncated {
        what: &'static str,
        need: usize,
        have: usize,
    },
    #[error("bad length {len} in {what}")]
    BadLength { what: &'static str, len: usize },
    #[error("unsupported openflow version {0:#04x} (only 1.3 = 0x04)")]
    Version(u8),
    #[error("bad value {value} for {what}")]
    BadValue { what: &'static str, value: u64 },
}
