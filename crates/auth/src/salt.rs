//! A per-mount HMAC key, created on first use and kept in the mount's (encrypted) storage.

use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use signet_core::{CoreError, CoreResult};
use signet_storage::{Storage, StorageView};

const KEY: &str = "salt";

/// Loads (or creates) the mount's salt.
pub async fn load(view: &StorageView) -> CoreResult<hmac::Key> {
    let raw = match view.get(KEY).await? {
        Some(r) => r,
        None => {
            let mut b = vec![0u8; 32];
            SystemRandom::new()
                .fill(&mut b)
                .map_err(|_| CoreError::Internal("random number generator failed".into()))?;
            view.put(KEY, b.clone()).await?;
            b
        }
    };
    Ok(hmac::Key::new(hmac::HMAC_SHA256, &raw))
}

/// Hex HMAC of a value.
pub fn hash(key: &hmac::Key, value: &str) -> String {
    hex::encode(hmac::sign(key, value.as_bytes()).as_ref())
}
