//! Login throttling: failed logins are counted per account and client address, and per
//! address alone. Past a few failures, each further attempt must wait twice as long as the
//! one before (1 s, 2 s, 4 s … up to a ceiling); an attempt sooner is refused before its
//! password is looked at (429 with `Retry-After`). A correct password from another address
//! is never held back, so an attacker cannot keep a canvasser out; unknown usernames are
//! counted like known ones, so the answers tell nothing of which exist. Counts live in the
//! process's memory: each process of a deployment counts apart, and a restart forgets them.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The limits (settings `login_*`, docs/SECURITY.md).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Failures of one account from one address before attempts are spaced out.
    pub free_failures: u32,
    /// Failures from one address, whatever the accounts, before attempts are spaced out.
    pub address_failures: u32,
    /// The longest wait between attempts.
    pub max_delay: Duration,
    /// A count is forgotten this long after its last failure.
    pub window: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Count {
    failures: u32,
    last: Instant,
    until: Instant,
}

impl Count {
    fn new(now: Instant) -> Count {
        Count {
            failures: 0,
            last: now,
            until: now,
        }
    }

    /// One more failure at `now`: past `free` failures, no attempt before the doubled wait.
    fn fail(&mut self, now: Instant, free: u32, max: Duration) {
        self.failures += 1;
        self.last = now;
        if self.failures > free {
            let doublings = (self.failures - free - 1).min(20);
            self.until = now + Duration::from_secs(1u64 << doublings).min(max);
        }
    }
}

/// Most counts held; past it, those whose window has passed are dropped first.
const MAX_COUNTS: usize = 100_000;

pub struct LoginThrottle {
    limits: Limits,
    counts: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    accounts: HashMap<(String, IpAddr), Count>,
    addresses: HashMap<IpAddr, Count>,
}

/// How an account is named in the counts: as the login finds it (case and spaces aside).
fn account(username: &str) -> String {
    username.trim().to_lowercase()
}

impl LoginThrottle {
    pub fn new(limits: Limits) -> LoginThrottle {
        LoginThrottle {
            limits,
            counts: Mutex::new(Counts::default()),
        }
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        // A panic while holding it left plain counters: still usable.
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `Err(wait)` if an attempt for this account from this address must wait.
    pub fn check(&self, username: &str, from: IpAddr, now: Instant) -> Result<(), Duration> {
        let counts = self.counts();
        let live = |c: &Count| now.duration_since(c.last) < self.limits.window && c.until > now;
        let waits = [
            counts.accounts.get(&(account(username), from)),
            counts.addresses.get(&from),
        ];
        match waits
            .into_iter()
            .flatten()
            .filter(|c| live(c))
            .map(|c| c.until - now)
            .max()
        {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    /// A wrong username or password.
    pub fn failed(&self, username: &str, from: IpAddr, now: Instant) {
        let l = self.limits;
        let mut counts = self.counts();
        if counts.accounts.len() + counts.addresses.len() >= MAX_COUNTS {
            counts
                .accounts
                .retain(|_, c| now.duration_since(c.last) < l.window);
            counts
                .addresses
                .retain(|_, c| now.duration_since(c.last) < l.window);
            if counts.accounts.len() >= MAX_COUNTS / 2 {
                tracing::warn!("login throttle: too many accounts counted, forgetting them");
                counts.accounts.clear();
            }
        }
        let fresh = |c: &mut Count| {
            if now.duration_since(c.last) >= l.window {
                *c = Count::new(now);
            }
        };
        let c = counts
            .accounts
            .entry((account(username), from))
            .or_insert_with(|| Count::new(now));
        fresh(c);
        c.fail(now, l.free_failures, l.max_delay);
        let c = counts
            .addresses
            .entry(from)
            .or_insert_with(|| Count::new(now));
        fresh(c);
        c.fail(now, l.address_failures, l.max_delay);
    }

    /// A login that succeeded: the account's count from this address starts over (the
    /// address's own does not, or one valid account would reset a spray of guesses).
    pub fn succeeded(&self, username: &str, from: IpAddr) {
        self.counts().accounts.remove(&(account(username), from));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> LoginThrottle {
        LoginThrottle::new(Limits {
            free_failures: 3,
            address_failures: 10,
            max_delay: Duration::from_secs(60),
            window: Duration::from_secs(900),
        })
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn failures_past_the_free_ones_double_the_wait_up_to_the_ceiling() {
        let t = throttle();
        let (a, t0) = (ip("203.0.113.5"), Instant::now());
        for _ in 0..3 {
            assert_eq!(t.check("canbo", a, t0), Ok(()));
            t.failed("canbo", a, t0);
        }
        assert_eq!(t.check("canbo", a, t0), Ok(()));
        let mut now = t0;
        for wait in [1, 2, 4, 8, 16, 32, 60, 60] {
            t.failed("CanBo ", a, now);
            assert_eq!(t.check("canbo", a, now), Err(Duration::from_secs(wait)));
            now += Duration::from_secs(wait);
            assert_eq!(t.check("canbo", a, now), Ok(()));
        }
        // The real user elsewhere is not held back; nor is another account from here.
        assert_eq!(t.check("canbo", ip("198.51.100.7"), now), Ok(()));
        assert_eq!(t.check("xa", a, now), Ok(()));
    }

    #[test]
    fn an_address_spraying_many_accounts_is_spaced_out_and_counts_are_forgotten() {
        let t = throttle();
        let (a, now) = (ip("2001:db8::1"), Instant::now());
        for i in 0..10 {
            t.failed(&format!("user{i}"), a, now);
        }
        assert_eq!(t.check("someone", a, now), Ok(()));
        t.failed("user10", a, now);
        assert_eq!(t.check("someone", a, now), Err(Duration::from_secs(1)));
        // A success resets the account's count, not the address's.
        t.succeeded("user10", a);
        assert!(t.check("user10", a, now).is_err());
        // Past the window from the last failure, everything is forgotten.
        let later = now + Duration::from_secs(901);
        assert_eq!(t.check("someone", a, later), Ok(()));
        t.failed("someone", a, later);
        assert_eq!(t.check("someone", a, later), Ok(()));
    }
}
