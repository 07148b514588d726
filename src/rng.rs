//! A small seeded generator (xorshift64): the demo's households, and the random workloads of
//! the tests and benchmarks, the same on every run from the same seed. Not for secrets (a
//! seed of 0 gives only zeros).

/// The generator's state; `Rng(seed)` starts it.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number from 0 to `n - 1` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True `percent` times in a hundred.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn the_same_seed_gives_the_same_numbers_in_range() {
        let (mut a, mut b) = (Rng(11), Rng(11));
        let xs: Vec<u64> = (0..1000).map(|_| a.below(7)).collect();
        assert_eq!(xs, (0..1000).map(|_| b.below(7)).collect::<Vec<_>>());
        assert!(xs.iter().all(|x| *x < 7));
        assert!((0..7).all(|v| xs.contains(&v)), "every value comes up");
        assert_eq!(Rng(5).below(0), 0);
    }
}
