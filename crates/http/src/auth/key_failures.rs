//! The addresses whose wrong keys this server counted lately, so that a valid API key from one
//! of them forgives those failures without a database write on every valid request.
//!
//! Integrators present their key on every request: clearing the address's key failures each
//! time would be a write per request on the hottest routes. The failures are cleared only when
//! this server counted one for the address within the window, which is when there can be
//! something to clear. Failures counted only by another server are forgiven when the address's
//! valid key reaches that server; until then they still count, which errs towards the ban.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// When this server last counted a key failure of each address.
pub struct KeyFailures {
    window: Duration,
    seen: Mutex<HashMap<IpAddr, Instant>>,
}

impl KeyFailures {
    /// Beyond this many addresses, those whose window is over are forgotten (and all, if none
    /// is): forgetting one only leaves its failures counted until their window ends.
    const MAX_REMEMBERED: usize = 100_000;

    /// `window` is the brute-force window: older failures no longer count anyway.
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Notes that a key failure of `ip` was counted just now.
    pub fn counted(&self, ip: IpAddr) {
        // A poisoned lock only loses the memo: the failures stay counted in the database.
        let Ok(mut seen) = self.seen.lock() else {
            return;
        };
        if seen.len() >= Self::MAX_REMEMBERED {
            seen.retain(|_, at| at.elapsed() < self.window);
            if seen.len() >= Self::MAX_REMEMBERED {
                seen.clear();
            }
        }
        seen.insert(ip, Instant::now());
    }

    /// Whether `ip` may have key failures to forgive; forgets it, since they are about to be.
    pub fn take(&self, ip: IpAddr) -> bool {
        let Ok(mut seen) = self.seen.lock() else {
            return false;
        };
        if seen.is_empty() {
            return false;
        }
        seen.remove(&ip)
            .is_some_and(|at| at.elapsed() < self.window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_taken_once_and_only_within_the_window() {
        let ip: IpAddr = [192, 0, 2, 1].into();
        let other: IpAddr = [192, 0, 2, 2].into();
        let memo = KeyFailures::new(Duration::from_secs(60));
        assert!(!memo.take(ip));
        memo.counted(ip);
        assert!(!memo.take(other));
        assert!(memo.take(ip));
        assert!(!memo.take(ip), "forgiven once");

        let expired = KeyFailures::new(Duration::ZERO);
        expired.counted(ip);
        assert!(
            !expired.take(ip),
            "a failure out of the window has nothing to forgive"
        );
    }
}
