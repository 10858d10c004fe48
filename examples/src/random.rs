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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_differ_and_are_never_zero() {
        let a = random_u64().expect("randomness");
        let b = random_u64().expect("randomness");
        assert_ne!(a, 0);
        assert_ne!(a, b, "two draws of 64 bits agreeing is a broken source");
        assert_ne!(random_seed(), random_seed());
    }
}
