//! Decoding never panics: random bytes, every truncation and random mutations of real captures
//! (the golden files) and of our own encodings. A hand-rolled xorshift keeps it seeded and
//! dependency-free.

use contiv_openflow::Message;

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn captures() -> Vec<Vec<u8>> {
    let dir = format!("{}/tests/golden", env!("CARGO_MANIFEST_DIR"));
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "golden") {
            for l in std::fs::read_to_string(&p)
                .unwrap()
                .lines()
                .filter(|l| !l.starts_with('#'))
            {
                v.push(
                    (0..l.len())
                        .step_by(2)
                        .map(|i| u8::from_str_radix(&l[i..i + 2], 16).unwrap())
                        .collect(),
                );
            }
        }
    }
    assert!(!v.is_empty());
    v
}

/// Sets the header's length field to the buffer's, so mutations reach the body decoders.
fn fix_len(b: &mut [u8]) {
    if b.len() >= 4 {
        let n = (b.len() as u16).to_be_bytes();
        b[2..4].copy_from_slice(&n);
    }
}

#[test]
fn every_truncation_is_an_error() {
    for full in captures() {
        for cut in 0..full.len() {
            let mut b = full[..cut].to_vec();
            assert!(Message::decode(&b).is_err(), "truncated to {cut} decoded");
            fix_len(&mut b);
            let _ = Message::decode(&b);
        }
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for _ in 0..200_000 {
        let len = rng.below(128);
        let mut b: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if rng.below(2) == 0 && b.len() >= 2 {
            b[0] = 4;
            b[1] = [0, 1, 2, 4, 6, 10, 13, 14, 15, 18, 19][rng.below(11)];
        }
        fix_len(&mut b);
        let _ = Message::decode(&b);
    }
}

#[test]
fn mutated_captures_never_panic_and_round_trip_when_accepted() {
    let caps = captures();
    let mut rng = XorShift(0x1234_5678_9abc_def1);
    for _ in 0..200_000 {
        let mut b = caps[rng.below(caps.len())].clone();
        for _ in 0..=rng.below(4) {
            if b.len() <= 4 {
                break;
            }
            let i = 4 + rng.below(b.len() - 4);
            match rng.below(3) {
                0 => b[i] = rng.next() as u8,
                1 => b[i] ^= 1 << rng.below(8),
                _ => b.truncate(i),
            }
        }
        fix_len(&mut b);
        if let Ok(env) = Message::decode(&b) {
            // Whatever decodes must encode without panicking and decode again to the same value.
            let again = env.msg.encode(env.xid);
            assert_eq!(Message::decode(&again).map(|e| e.msg), Ok(env.msg));
        }
    }
}
