//! JWT verification shared by the Kubernetes, JWT/OIDC and Azure methods (jsonwebtoken with
//! aws-lc-rs). `alg: none` never verifies: the algorithm must be one the key supports and the
//! method allows. Key sets fetched from a JWKS URL are cached and re-fetched when a token names
//! a key id the cache does not hold.

use std::collections::HashSet;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use signet_core::{CoreError, CoreResult};

/// A verification key with the algorithms it may verify.
pub struct Key {
    pub kid: Option<String>,
    pub key: DecodingKey,
    pub algs: Vec<Algorithm>,
}

fn algs_for(family: &str) -> Vec<Algorithm> {
    match family {
        "RSA" => vec![
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
        ],
        "EC" => vec![Algorithm::ES256, Algorithm::ES384],
        "OKP" => vec![Algorithm::EdDSA],
        _ => vec![],
    }
}

/// Parses PEM public keys (RSA, EC or Ed25519; SubjectPublicKeyInfo or PKCS#1).
pub fn pem_keys(pems: &[String]) -> CoreResult<Vec<Key>> {
    let mut out = Vec::new();
    for pem in pems {
        let b = pem.as_bytes();
        let parsed = DecodingKey::from_rsa_pem(b)
            .map(|k| (k, "RSA"))
            .or_else(|_| DecodingKey::from_ec_pem(b).map(|k| (k, "EC")))
            .or_else(|_| DecodingKey::from_ed_pem(b).map(|k| (k, "OKP")))
            .map_err(|_| {
                CoreError::bad("error parsing public key: not an RSA, EC or Ed25519 PEM public key")
            })?;
        out.push(Key {
            kid: None,
            key: parsed.0,
            algs: algs_for(parsed.1),
        });
    }
    Ok(out)
}

/// Keys of a JWK set.
pub fn jwks_keys(set: &JwkSet) -> Vec<Key> {
    set.keys
        .iter()
        .filter_map(|jwk| {
            let key = DecodingKey::from_jwk(jwk).ok()?;
            let family = match &jwk.algorithm {
                jsonwebtoken::jwk::AlgorithmParameters::RSA(_) => "RSA",
                jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_) => "EC",
                jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(_) => "OKP",
                _ => return None,
            };
            Some(Key {
                kid: jwk.common.key_id.clone(),
                key,
                algs: algs_for(family),
            })
        })
        .collect()
}

/// Decodes the claims without verifying anything (after a TokenReview vouched for the token).
pub fn claims_unverified(token: &str) -> CoreResult<Map<String, Value>> {
    let payload = token
        .split('.')
        .nth(1)
        .ok_or_else(|| CoreError::bad("invalid JWT: not a compact JWS"))?;
    let bytes = base64::Engine::decode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        payload.trim_end_matches('='),
    )
    .map_err(|_| CoreError::bad("invalid JWT: payload is not base64url"))?;
    serde_json::from_slice(&bytes)
        .map_err(|_| CoreError::bad("invalid JWT: payload is not a JSON object"))
}

/// Leeways, in seconds.
#[derive(Debug, Clone, Copy)]
pub struct Leeway {
    pub clock_skew: u64,
    pub expiration: u64,
    pub not_before: u64,
}

impl Default for Leeway {
    fn default() -> Self {
        Leeway {
            clock_skew: 60,
            expiration: 150,
            not_before: 150,
        }
    }
}

/// Why a token did not verify (the text is safe to return: it never contains the token).
pub type VerifyError = String;

/// Verifies `token` with the first key that fits its `kid` and algorithm.
pub fn verify(
    token: &str,
    keys: &[Key],
    allowed: &[Algorithm],
    leeway: Leeway,
) -> Result<Map<String, Value>, VerifyError> {
    let header =
        jsonwebtoken::decode_header(token).map_err(|e| format!("invalid JWT header: {e}"))?;
    if !allowed.is_empty() && !allowed.contains(&header.alg) {
        return Err(format!(
            "token signed with unsupported algorithm {:?}",
            header.alg
        ));
    }
    let candidates: Vec<&Key> = keys
        .iter()
        .filter(|k| k.algs.contains(&header.alg))
        .filter(|k| match (&header.kid, &k.kid) {
            (Some(want), Some(have)) => want == have,
            _ => true,
        })
        .collect();
    if candidates.is_empty() {
        return Err("no known key matches the token's key id and algorithm".into());
    }
    let mut validation = Validation::new(header.alg);
    validation.algorithms = vec![header.alg];
    validation.validate_aud = false;
    validation.required_spec_claims = HashSet::new();
    validation.leeway = leeway
        .clock_skew
        .max(leeway.expiration)
        .max(leeway.not_before);
    validation.validate_nbf = true;
    let mut last = String::new();
    for k in candidates {
        match jsonwebtoken::decode::<Map<String, Value>>(token, &k.key, &validation) {
            Ok(data) => return Ok(data.claims),
            Err(e) => last = e.to_string(),
        }
    }
    Err(format!("failed to verify token: {last}"))
}

/// A JWKS cache for one mount.
#[derive(Default)]
pub struct JwksCache {
    inner: RwLock<Option<(String, JwkSet, Instant)>>,
}

impl JwksCache {
    /// The key set at `url`, fetched when absent, older than an hour, or missing `kid`.
    pub async fn keys(&self, url: &str, ca_pem: &str, kid: Option<&str>) -> CoreResult<Vec<Key>> {
        let cached = self.inner.read().ok().and_then(|c| c.clone());
        if let Some((u, set, at)) = cached {
            let fresh = u == url && at.elapsed() < Duration::from_secs(3600);
            let has_kid = kid.is_none_or(|k| {
                set.keys
                    .iter()
                    .any(|j| j.common.key_id.as_deref() == Some(k))
            });
            if fresh && has_kid {
                return Ok(jwks_keys(&set));
            }
        }
        let client = crate::outbound::client(ca_pem)?;
        let set: JwkSet = client
            .get(url)
            .send()
            .await
            .map_err(|e| CoreError::bad(format!("error fetching JWKS from {url}: {e}")))?
            .error_for_status()
            .map_err(|e| CoreError::bad(format!("error fetching JWKS from {url}: {e}")))?
            .json()
            .await
            .map_err(|e| CoreError::bad(format!("invalid JWKS at {url}: {e}")))?;
        let keys = jwks_keys(&set);
        if let Ok(mut c) = self.inner.write() {
            *c = Some((url.to_string(), set, Instant::now()));
        }
        Ok(keys)
    }

    /// Forgets the cached set (config changed).
    pub fn clear(&self) {
        if let Ok(mut c) = self.inner.write() {
            *c = None;
        }
    }
}

/// Parses algorithm names (`RS256`, ...).
pub fn parse_algs(names: &[String]) -> CoreResult<Vec<Algorithm>> {
    names
        .iter()
        .map(|n| {
            n.parse::<Algorithm>()
                .map_err(|_| CoreError::bad(format!("invalid algorithm {n:?}")))
        })
        .collect()
}
