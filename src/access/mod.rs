//! Personal links: random tokens, stored only as hashes, and the limiter against guessing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// A new personal-link token: 192 random bits, as 48 hex characters.
pub fn new_token() -> String {
    hex::encode(rand::random::<[u8; 24]>())
}

/// Tokens carry 192 bits of entropy, so a fast hash is enough to make a leaked table useless.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Whether a string has the shape of a token (checked before any database look-up).
pub fn looks_like_token(token: &str) -> bool {
    token.len() == 48 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Counts failed attempts per client address in a sliding window.
pub struct FailureLimiter {
    max_failures: u32,
    window: Duration,
    state: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl FailureLimiter {
    pub fn new(max_failures: u32, window: Duration) -> Self {
        FailureLimiter {
            max_failures,
            window,
            state: Mutex::new(HashMap::new()),
        }
    }

    /// True when this address has failed too often recently.
    pub fn is_blocked(&self, ip: IpAddr) -> bool {
        let Ok(state) = self.state.lock() else {
            return true;
        };
        state
            .get(&ip)
            .is_some_and(|(start, n)| start.elapsed() < self.window && *n >= self.max_failures)
    }

    pub fn record_failure(&self, ip: IpAddr) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        if state.len() > 100_000 {
            let window = self.window;
            state.retain(|_, (start, _)| start.elapsed() < window);
        }
        let entry = state.entry(ip).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= self.window {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_hashed() {
        let a = new_token();
        assert!(looks_like_token(&a));
        assert_ne!(a, new_token());
        assert_eq!(hash_token(&a).len(), 64);
        assert_ne!(hash_token(&a), a);
    }

    #[test]
    fn limiter_blocks_after_failures() {
        let l = FailureLimiter::new(3, Duration::from_secs(60));
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..3 {
            assert!(!l.is_blocked(ip));
            l.record_failure(ip);
        }
        assert!(l.is_blocked(ip));
    }
}
