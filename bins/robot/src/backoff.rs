//! Waits between retries while the server is unreachable: doubling from half a second to half
//! a minute, with a little jitter so a fleet of robots does not return to a restarted server in
//! one burst.

use std::time::{Duration, SystemTime};

const FIRST: Duration = Duration::from_millis(500);
const MAX: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { next: FIRST }
    }
}

impl Backoff {
    /// The wait before the next attempt; each call doubles the one after.
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(MAX);
        // Up to a quarter more, from the clock's nanoseconds: no random-number crate needed
        // for spreading retries.
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        wait + wait.mul_f64(f64::from(nanos % 1000) / 4000.0)
    }

    pub fn reset(&mut self) {
        self.next = FIRST;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::default();
        let first = b.next_wait();
        assert!(first >= FIRST && first <= FIRST.mul_f64(1.25));
        let second = b.next_wait();
        assert!(second >= FIRST * 2);
        for _ in 0..20 {
            assert!(b.next_wait() <= MAX.mul_f64(1.25));
        }
        b.reset();
        assert!(b.next_wait() <= FIRST.mul_f64(1.25));
    }
}
