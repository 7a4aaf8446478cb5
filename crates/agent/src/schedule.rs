//! When to renew: pure functions of the certificate's validity, the configured point and a
//! jitter draw, so the scheduler is tested on an injected clock (no sleeping in tests).

/// Where in a certificate's life to renew.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RenewPoint {
    /// A fraction of the lifetime (`renew_at = "66%"` is 0.66).
    Fraction(f64),
    /// A fixed time before expiry (`renew_before = "2m"`), in seconds.
    Before(i64),
}

impl Default for RenewPoint {
    fn default() -> Self {
        RenewPoint::Fraction(2.0 / 3.0)
    }
}

/// Parses `renew_at` ("66%", "0.66") or `renew_before` (a Go duration).
pub fn parse_renew_at(s: &str) -> Result<RenewPoint, String> {
    let t = s.trim();
    let f = if let Some(p) = t.strip_suffix('%') {
        p.trim().parse::<f64>().map(|v| v / 100.0)
    } else {
        t.parse::<f64>()
    }
    .map_err(|_| format!("invalid renew_at {s:?}: use a percentage like \"66%\""))?;
    if !(0.05..=0.95).contains(&f) {
        return Err(format!(
            "renew_at {s:?} must be between 5% and 95% of the lifetime"
        ));
    }
    Ok(RenewPoint::Fraction(f))
}

/// The renewal time (epoch seconds) of a certificate valid from `not_before` to `not_after`.
/// `jitter` in [-1, 1] moves a fractional point by up to 5% of the lifetime, so a fleet does
/// not renew in lockstep (a fraction stays within 5%..95% of the lifetime); `renew_before` is
/// taken as given. The result is never before `not_before` nor at or past `not_after`.
pub fn renew_time(not_before: i64, not_after: i64, point: RenewPoint, jitter: f64) -> i64 {
    let life = (not_after - not_before).max(1);
    let jitter = jitter.clamp(-1.0, 1.0);
    let at = match point {
        RenewPoint::Fraction(f) => {
            let f = (f + 0.05 * jitter).clamp(0.05, 0.95);
            not_before + (life as f64 * f) as i64
        }
        RenewPoint::Before(secs) => not_after - secs,
    };
    at.clamp(not_before, (not_after - 1).max(not_before))
}

/// Exponential backoff with jitter for retries: `min * 2^attempt`, capped at `max`, then
/// scaled by a factor in [0.5, 1.0] drawn from `jitter` in [0, 1].
pub fn backoff(attempt: u32, min: f64, max: f64, jitter: f64) -> f64 {
    let base = (min * 2f64.powi(attempt.min(30) as i32)).min(max);
    base * (0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

/// A token's renewal time: two thirds of its lease.
pub fn token_renew_in(lease_secs: u64) -> u64 {
    (lease_secs * 2 / 3).max(1)
}

/// A random draw in [0, 1) from the system's CSPRNG (good enough for jitter; never fails
/// silently to a constant: on an RNG error the midpoint is used).
pub fn draw() -> f64 {
    let mut b = [0u8; 8];
    if aws_lc_rs::rand::SecureRandom::fill(&aws_lc_rs::rand::SystemRandom::new(), &mut b).is_err() {
        return 0.5;
    }
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fraction_of_lifetime_with_jitter() {
        // A 30 s certificate renewed at 66%.
        assert_eq!(
            renew_time(1000, 1030, RenewPoint::Fraction(0.66), 0.0),
            1019
        );
        // Jitter moves it by at most 5% of the lifetime either way.
        assert_eq!(
            renew_time(1000, 1100, RenewPoint::Fraction(0.66), 1.0),
            1071
        );
        assert_eq!(
            renew_time(1000, 1100, RenewPoint::Fraction(0.66), -1.0),
            1061
        );
        // Never past 95%, never before the start.
        assert_eq!(
            renew_time(1000, 1100, RenewPoint::Fraction(0.95), 1.0),
            1095
        );
        assert_eq!(renew_time(1000, 1100, RenewPoint::Before(500), 0.0), 1000);
    }

    #[test]
    fn fixed_time_before_expiry() {
        assert_eq!(renew_time(0, 3600, RenewPoint::Before(120), 0.7), 3480);
        // Never at or past the end.
        assert_eq!(renew_time(0, 100, RenewPoint::Before(0), 0.0), 99);
    }

    #[test]
    fn parsing_renew_at() {
        assert_eq!(
            parse_renew_at("66%").unwrap_or_default(),
            RenewPoint::Fraction(0.66)
        );
        assert_eq!(
            parse_renew_at("0.5").unwrap_or_default(),
            RenewPoint::Fraction(0.5)
        );
        assert!(parse_renew_at("120%").is_err());
        assert!(parse_renew_at("soon").is_err());
    }

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff(0, 1.0, 300.0, 1.0), 1.0);
        assert_eq!(backoff(3, 1.0, 300.0, 1.0), 8.0);
        assert_eq!(backoff(20, 1.0, 300.0, 1.0), 300.0);
        assert_eq!(backoff(3, 1.0, 300.0, 0.0), 4.0);
        assert_eq!(token_renew_in(3600), 2400);
    }

    #[test]
    fn draws_are_in_range() {
        for _ in 0..100 {
            let d = draw();
            assert!((0.0..1.0).contains(&d));
        }
    }
}
