//! The GCRA step shared by both backends (the Redis script mirrors it in Lua).

use crate::policy::Policy;

/// What one request does to a key whose theoretical arrival time is `tat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Admit and store `new_tat`; `ahead = new_tat - now`.
    Admit { new_tat: u64, ahead: u64 },
    /// Refuse; one request fits again after `wait`, the bucket is full after `drain`.
    Refuse { wait: u64, drain: u64 },
}

/// One GCRA step at `now` (all in nanoseconds). `tat = 0` means a fresh key.
pub(crate) fn step(policy: &Policy, tat: u64, now: u64) -> Step {
    let base = tat.max(now);
    let new_tat = base.saturating_add(policy.interval_nanos());
    let ahead = new_tat - now;
    if ahead > policy.tolerance_nanos() {
        Step::Refuse {
            wait: ahead - policy.tolerance_nanos(),
            drain: base - now,
        }
    } else {
        Step::Admit { new_tat, ahead }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn run(policy: &Policy, arrivals: &[u64]) -> u64 {
        let mut tat = 0;
        let mut admitted = 0;
        for &now in arrivals {
            if let Step::Admit { new_tat, .. } = step(policy, tat, now) {
                tat = new_tat;
                admitted += 1;
            }
        }
        admitted
    }

    #[test]
    fn exact_at_the_boundary() {
        for burst in [1u32, 2, 5, 200] {
            let p = Policy::parse("p", "ip", "10/s", burst, true).unwrap();
            let now = 5_000_000_000;
            assert_eq!(run(&p, &vec![now; burst as usize + 3]), u64::from(burst));
        }
    }

    proptest! {
        // Over any span of time, GCRA admits at most burst + span / interval requests.
        #[test]
        fn never_over_admits(
            burst in 1u32..50,
            count in 1u32..1000,
            gaps in proptest::collection::vec(0u64..50_000_000, 1..400),
        ) {
            let rate = crate::Rate::new(std::num::NonZeroU32::new(count).unwrap(), crate::Period::Second);
            let p = Policy::new("p", crate::KeyKind::Ip, rate, burst, true).unwrap();
            let mut now = 1_000_000_000u64;
            let mut arrivals = Vec::new();
            for g in gaps { now += g; arrivals.push(now); }
            let span = arrivals[arrivals.len() - 1] - arrivals[0];
            let bound = u64::from(burst) + span / p.interval_nanos();
            prop_assert!(run(&p, &arrivals) <= bound);
        }
    }
}
