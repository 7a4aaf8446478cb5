//! Shamir secret sharing over GF(2^8), used to split the unseal key into `secret_shares` parts
//! of which `secret_threshold` rebuild it.
//!
//! Each share is the secret's length plus one byte: the y values of every byte's polynomial,
//! then the x coordinate — the layout Vault uses, so a share is 33 bytes for a 32-byte key.
//! Written by hand (about a hundred lines) because the Rust crates for it are unmaintained or
//! use another share layout; field arithmetic is branch-free so timing does not depend on
//! secret bytes.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

/// Why splitting or combining failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ShamirError {
    #[error("parts cannot be less than threshold")]
    PartsLessThanThreshold,
    #[error("parts cannot exceed 255")]
    TooManyParts,
    #[error("threshold must be at least 2")]
    ThresholdTooSmall,
    #[error("threshold cannot exceed 255")]
    ThresholdTooLarge,
    #[error("cannot split an empty secret")]
    EmptySecret,
    #[error("less than two parts cannot be used to reconstruct the secret")]
    TooFewParts,
    #[error("all parts must be the same length")]
    LengthMismatch,
    #[error("parts must be at least two bytes")]
    PartTooShort,
    #[error("duplicate part detected")]
    DuplicatePart,
    #[error("random number generator failed")]
    Random,
}

/// Multiplication in GF(2^8) with the AES polynomial, without data-dependent branches.
fn mul(mut a: u8, mut b: u8) -> u8 {
    let mut p: u8 = 0;
    for _ in 0..8 {
        p ^= a & 0u8.wrapping_sub(b & 1);
        let carry = 0u8.wrapping_sub(a >> 7);
        a = (a << 1) ^ (0x1b & carry);
        b >>= 1;
    }
    p
}

/// Multiplicative inverse (a^254); inverse of 0 is 0, never used for x coordinates.
fn inv(a: u8) -> u8 {
    let mut result = 1u8;
    let mut base = a;
    let mut e = 254u8;
    while e > 0 {
        if e & 1 == 1 {
            result = mul(result, base);
        }
        base = mul(base, base);
        e >>= 1;
    }
    result
}

/// Splits `secret` into `parts` shares, any `threshold` of which rebuild it.
pub fn split(secret: &[u8], parts: usize, threshold: usize) -> Result<Vec<Vec<u8>>, ShamirError> {
    if parts < threshold {
        return Err(ShamirError::PartsLessThanThreshold);
    }
    if parts > 255 {
        return Err(ShamirError::TooManyParts);
    }
    if threshold < 2 {
        return Err(ShamirError::ThresholdTooSmall);
    }
    if threshold > 255 {
        return Err(ShamirError::ThresholdTooLarge);
    }
    if secret.is_empty() {
        return Err(ShamirError::EmptySecret);
    }
    let rng = SystemRandom::new();
    // Distinct non-zero x coordinates: a random permutation of 1..=255, first `parts` of it.
    let mut xs: Vec<u8> = (1..=255u8).collect();
    for i in (1..xs.len()).rev() {
        let mut b = [0u8; 2];
        rng.fill(&mut b).map_err(|_| ShamirError::Random)?;
        let j = (u16::from_le_bytes(b) as usize) % (i + 1);
        xs.swap(i, j);
    }
    let mut out: Vec<Vec<u8>> = xs[..parts]
        .iter()
        .map(|&x| {
            let mut v = vec![0u8; secret.len() + 1];
            v[secret.len()] = x;
            v
        })
        .collect();
    let mut coeffs = Zeroizing::new(vec![0u8; threshold]);
    for (idx, &byte) in secret.iter().enumerate() {
        coeffs[0] = byte;
        rng.fill(&mut coeffs[1..])
            .map_err(|_| ShamirError::Random)?;
        for share in out.iter_mut() {
            let x = share[secret.len()];
            // Horner evaluation of the polynomial at x.
            let mut y = 0u8;
            for c in coeffs.iter().rev() {
                y = mul(y, x) ^ c;
            }
            share[idx] = y;
        }
    }
    Ok(out)
}

/// Rebuilds the secret from shares. With fewer than the threshold, the result is garbage: the
/// caller detects that by failing to decrypt with it.
pub fn combine(parts: &[Vec<u8>]) -> Result<Zeroizing<Vec<u8>>, ShamirError> {
    if parts.len() < 2 {
        return Err(ShamirError::TooFewParts);
    }
    let len = parts[0].len();
    if len < 2 {
        return Err(ShamirError::PartTooShort);
    }
    if parts.iter().any(|p| p.len() != len) {
        return Err(ShamirError::LengthMismatch);
    }
    let xs: Vec<u8> = parts.iter().map(|p| p[len - 1]).collect();
    for i in 0..xs.len() {
        for j in (i + 1)..xs.len() {
            if xs[i] == xs[j] {
                return Err(ShamirError::DuplicatePart);
            }
        }
    }
    let mut secret = Zeroizing::new(vec![0u8; len - 1]);
    for (idx, out) in secret.iter_mut().enumerate() {
        let mut acc = 0u8;
        for (i, part) in parts.iter().enumerate() {
            // Lagrange basis at 0: prod x_j / (x_j - x_i); subtraction is xor.
            let mut basis = 1u8;
            for (j, &xj) in xs.iter().enumerate() {
                if i != j {
                    basis = mul(basis, mul(xj, inv(xj ^ xs[i])));
                }
            }
            acc ^= mul(part[idx], basis);
        }
        *out = acc;
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_inverse() {
        for a in 1..=255u8 {
            assert_eq!(mul(a, inv(a)), 1, "a={a}");
        }
    }

    #[test]
    fn split_and_combine_any_subset() {
        let secret: Vec<u8> = (0..32).collect();
        let shares = split(&secret, 5, 3).unwrap();
        assert_eq!(shares.len(), 5);
        assert!(shares.iter().all(|s| s.len() == 33));
        for a in 0..5 {
            for b in (a + 1)..5 {
                for c in (b + 1)..5 {
                    let subset = vec![shares[a].clone(), shares[b].clone(), shares[c].clone()];
                    assert_eq!(combine(&subset).unwrap().as_slice(), secret.as_slice());
                }
            }
        }
        let two = vec![shares[0].clone(), shares[1].clone()];
        assert_ne!(combine(&two).unwrap().as_slice(), secret.as_slice());
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(split(b"k", 2, 3), Err(ShamirError::PartsLessThanThreshold));
        assert_eq!(split(b"k", 3, 1), Err(ShamirError::ThresholdTooSmall));
        assert_eq!(split(b"", 3, 2), Err(ShamirError::EmptySecret));
        let shares = split(b"secret", 3, 2).unwrap();
        assert_eq!(
            combine(&[shares[0].clone(), shares[0].clone()]).err(),
            Some(ShamirError::DuplicatePart)
        );
        assert_eq!(
            combine(&[shares[0].clone(), vec![1, 2]]).err(),
            Some(ShamirError::LengthMismatch)
        );
    }
}
