//! Randomness from the kernel (getrandom(2)): request nonces and the keys of the server's
//! client table. Where the kernel has none to give (a seccomp filter, a very old kernel),
//! callers get `None` and must not fall back to a guessable value.

/// A random 64-bit value, never zero (a zero transmit timestamp would match a zero
/// origin); `None` when the kernel gives no randomness.
pub fn random_u64() -> Option<u64> {
    getrandom::u64().ok().map(|v| v.max(1))
}

/// 16 random bytes, to key a table; `None` when the kernel gives no randomness.
pub fn random_seed() -> Option<[u8; 16]> {
    let mut seed = [0u8; 16];
    getrandom::fill(&mut seed).ok()?;
    Some(seed)
}

/// Randomness from the kernel drawn 4 KiB at a time and handed out in pieces: one
/// getrandom(2) call for many NTS answers' nonces instead of one each (the call, not the
/// bytes, is what costs). Each byte is given out once.
pub struct BufferedRandom {
    buf: Box<[u8; 4096]>,
    at: usize,
}

impl Default for BufferedRandom {
    fn default() -> Self {
        Self::new()
    }
}

impl BufferedRandom {
    /// Empty: the first draw fills it.
    pub fn new() -> Self {
        Self {
            buf: Box::new([0u8; 4096]),
            at: 4096,
        }
    }

    /// Fills `out` with fresh random bytes; `false` when the kernel gives none (the
    /// caller must then not use `out`).
    pub fn fill(&mut self, out: &mut [u8]) -> bool {
        if out.len() > self.buf.len() {
            return getrandom::fill(out).is_ok();
        }
        if self.buf.len() - self.at < out.len() {
            if getrandom::fill(&mut self.buf[..]).is_err() {
                return false;
            }
            self.at = 0;
        }
        out.copy_from_slice(&self.buf[self.at..self.at + out.len()]);
        // Never handed out twice.
        self.buf[self.at..self.at + out.len()].fill(0);
        self.at += out.len();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffered_randomness_is_never_repeated() {
        let mut r = BufferedRandom::new();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..2000 {
            let mut nonce = [0u8; 16];
            assert!(r.fill(&mut nonce));
            assert!(seen.insert(nonce), "a nonce came twice");
        }
        let mut big = [0u8; 5000];
        assert!(r.fill(&mut big));
        assert!(big.iter().any(|b| *b != 0));
    }

    #[test]
    fn values_differ_and_are_never_zero() {
        let a = random_u64().expect("randomness");
        let b = random_u64().expect("randomness");
        assert_ne!(a, 0);
        assert_ne!(a, b, "two draws of 64 bits agreeing is a broken source");
        assert_ne!(random_seed(), random_seed());
    }
}
