//! contiv-openflow's decoder on a byte stream from a switch, framed as its connection frames it.
//!
//! Holds: framing and decoding return errors, never panic, on any bytes; a message that decodes
//! encodes to bytes that decode to the same message (the codec reads what it writes).
#![no_main]

use contiv_openflow::Message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok(Some(len)) = Message::frame_len(rest) {
        if len > rest.len() {
            break;
        }
        let (frame, tail) = rest.split_at(len);
        rest = tail;
        let Ok(env) = Message::decode(frame) else {
            continue;
        };
        let bytes = env.msg.encode(env.xid);
        // The header's 16-bit length cannot say more; such a message is not sent.
        if bytes.len() > usize::from(u16::MAX) {
            continue;
        }
        let again = Message::decode(&bytes)
            .unwrap_or_else(|e| panic!("{:?} does not decode its own encoding: {e}", env.msg));
        assert_eq!(again, env, "round trip");
    }
});
