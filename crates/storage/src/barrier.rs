//! The barrier: encryption at rest for everything but the seal configuration.
//!
//! Every value an engine or the core writes passes through here and is stored as
//! `[version 0x01][term: u32 BE][nonce: 12 bytes][AES-256-GCM ciphertext + tag]`, with the
//! storage key as associated data, so a ciphertext moved to another key fails to decrypt. The
//! keyring holds one data key per term; `rotate` adds a term that encrypts new writes while old
//! terms still decrypt. The keyring is stored at [`KEYRING_PATH`] encrypted with a root key; the
//! root key is stored at [`ROOT_KEY_PATH`] encrypted with the unseal key, which exists in
//! memory only while unsealing (Vault's layout: re-keying the unseal key touches one entry,
//! rotating the keyring needs no unseal key). A sealed barrier answers every
//! call with [`StorageError::Sealed`]. This module never logs keys or plaintext.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::{Op, Storage, StorageError};

/// Where the encrypted keyring lives in physical storage (encrypted with the root key).
pub const KEYRING_PATH: &str = "core/keyring";
/// Where the root key lives, encrypted with the unseal key.
pub const ROOT_KEY_PATH: &str = "core/root-key";
/// Physical keys that bypass the barrier (stored in clear by the seal itself).
pub const SEAL_CONFIG_PATH: &str = "core/seal-config";

const VERSION: u8 = 1;
const HEADER: usize = 1 + 4 + NONCE_LEN;

/// Barrier failures the seal code distinguishes.
#[derive(Debug, thiserror::Error)]
pub enum BarrierError {
    #[error("Vault is already initialized")]
    AlreadyInitialized,
    #[error("Vault is not initialized")]
    NotInitialized,
    /// The unseal key did not decrypt the keyring.
    #[error("cipher: message authentication failed")]
    InvalidKey,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

struct TermKey {
    key: LessSafeKey,
    raw: Zeroizing<Vec<u8>>,
    installed: u64,
}

struct Keyring {
    active: u32,
    terms: BTreeMap<u32, TermKey>,
    /// The root key that encrypts the keyring; in memory only while unsealed.
    root: Zeroizing<Vec<u8>>,
}

#[derive(Serialize, Deserialize)]
struct StoredTerm {
    term: u32,
    key: String,
    installed: u64,
}

#[derive(Serialize, Deserialize)]
struct StoredKeyring {
    active_term: u32,
    keys: Vec<StoredTerm>,
}

impl Drop for StoredKeyring {
    fn drop(&mut self) {
        for k in &mut self.keys {
            k.key.zeroize();
        }
    }
}

/// Status of the keyring for `sys/key-status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyStatus {
    pub term: u32,
    pub install_time: u64,
    pub encryptions: u64,
}

/// The encrypting layer over a physical backend.
pub struct Barrier {
    physical: Arc<dyn Storage>,
    keyring: RwLock<Option<Arc<Keyring>>>,
    rng: SystemRandom,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn make_key(raw: &[u8]) -> Result<LessSafeKey, StorageError> {
    UnboundKey::new(&AES_256_GCM, raw)
        .map(LessSafeKey::new)
        .map_err(|_| StorageError::Corrupt("invalid key length".into()))
}

impl Barrier {
    /// Wraps a physical backend. The barrier starts sealed.
    pub fn new(physical: Arc<dyn Storage>) -> Self {
        Barrier {
            physical,
            keyring: RwLock::new(None),
            rng: SystemRandom::new(),
        }
    }

    /// The physical backend, for the few clear-text entries (seal configuration).
    pub fn physical(&self) -> &Arc<dyn Storage> {
        &self.physical
    }

    /// The physical backend's name (`inmem`, `sqlite`).
    pub fn kind_name(&self) -> &'static str {
        self.physical.kind()
    }

    /// Whether a keyring has ever been written.
    pub async fn is_initialized(&self) -> Result<bool, StorageError> {
        Ok(self.physical.get(ROOT_KEY_PATH).await?.is_some())
    }

    /// Whether the barrier is sealed.
    pub fn is_sealed(&self) -> bool {
        self.keyring.read().map(|k| k.is_none()).unwrap_or(true)
    }

    /// Generates a fresh 32-byte key from the system CSPRNG.
    pub fn generate_key(&self) -> Result<Zeroizing<Vec<u8>>, StorageError> {
        let mut k = Zeroizing::new(vec![0u8; 32]);
        self.rng
            .fill(&mut k)
            .map_err(|_| StorageError::Backend("random number generator failed".into()))?;
        Ok(k)
    }

    /// Creates the keyring (term 1) and stores it encrypted with `unseal_key`. Leaves the
    /// barrier sealed.
    pub async fn initialize(&self, unseal_key: &[u8]) -> Result<(), BarrierError> {
        if self.is_initialized().await? {
            return Err(BarrierError::AlreadyInitialized);
        }
        let data_key = self.generate_key()?;
        let root = self.generate_key()?;
        let ring = Keyring {
            active: 1,
            terms: BTreeMap::from([(
                1,
                TermKey {
                    key: make_key(&data_key)?,
                    raw: data_key,
                    installed: now_secs(),
                },
            )]),
            root,
        };
        self.persist_keyring(&ring).await?;
        let unseal = make_key(unseal_key)?;
        let sealed_root = self.seal_value(&unseal, 0, ROOT_KEY_PATH, &ring.root)?;
        self.physical.put(ROOT_KEY_PATH, sealed_root).await?;
        Ok(())
    }

    async fn persist_keyring(&self, ring: &Keyring) -> Result<(), StorageError> {
        let stored = StoredKeyring {
            active_term: ring.active,
            keys: ring
                .terms
                .iter()
                .map(|(t, k)| StoredTerm {
                    term: *t,
                    key: base64::engine::general_purpose::STANDARD.encode(&*k.raw),
                    installed: k.installed,
                })
                .collect(),
        };
        let plain = Zeroizing::new(
            serde_json::to_vec(&stored).map_err(|e| StorageError::Corrupt(e.to_string()))?,
        );
        let key = make_key(&ring.root)?;
        let sealed = self.seal_value(&key, 0, KEYRING_PATH, &plain)?;
        self.physical.put(KEYRING_PATH, sealed).await
    }

    /// Decrypts the keyring with `unseal_key` and opens the barrier.
    pub async fn unseal(&self, unseal_key: &[u8]) -> Result<(), BarrierError> {
        let root = self.open_root(unseal_key).await?;
        let ring = self.load_keyring(root).await?;
        if let Ok(mut slot) = self.keyring.write() {
            *slot = Some(Arc::new(ring));
        }
        Ok(())
    }

    async fn open_root(&self, unseal_key: &[u8]) -> Result<Zeroizing<Vec<u8>>, BarrierError> {
        let blob = self
            .physical
            .get(ROOT_KEY_PATH)
            .await?
            .ok_or(BarrierError::NotInitialized)?;
        let key = make_key(unseal_key).map_err(|_| BarrierError::InvalidKey)?;
        Self::open_value(&key, ROOT_KEY_PATH, &blob)
            .map(Zeroizing::new)
            .map_err(|_| BarrierError::InvalidKey)
    }

    async fn load_keyring(&self, root: Zeroizing<Vec<u8>>) -> Result<Keyring, BarrierError> {
        let blob = self
            .physical
            .get(KEYRING_PATH)
            .await?
            .ok_or(BarrierError::NotInitialized)?;
        self.decode_keyring(&blob, root)
    }

    /// Re-reads the keyring (another node rotated it). No-op while sealed.
    pub async fn reload_keyring(&self) -> Result<(), BarrierError> {
        let Ok(current) = self.current() else {
            return Ok(());
        };
        let ring = self.load_keyring(current.root.clone()).await?;
        if let Ok(mut slot) = self.keyring.write() {
            *slot = Some(Arc::new(ring));
        }
        Ok(())
    }

    fn decode_keyring(
        &self,
        blob: &[u8],
        root: Zeroizing<Vec<u8>>,
    ) -> Result<Keyring, BarrierError> {
        let key = make_key(&root).map_err(|_| BarrierError::InvalidKey)?;
        let plain = Zeroizing::new(
            Self::open_value(&key, KEYRING_PATH, blob).map_err(|_| BarrierError::InvalidKey)?,
        );
        let stored: StoredKeyring = serde_json::from_slice(&plain)
            .map_err(|e| StorageError::Corrupt(format!("keyring: {e}")))?;
        let mut terms = BTreeMap::new();
        for t in &stored.keys {
            let raw = Zeroizing::new(
                base64::engine::general_purpose::STANDARD
                    .decode(&t.key)
                    .map_err(|_| StorageError::Corrupt("keyring key encoding".into()))?,
            );
            terms.insert(
                t.term,
                TermKey {
                    key: make_key(&raw)?,
                    raw,
                    installed: t.installed,
                },
            );
        }
        if !terms.contains_key(&stored.active_term) {
            return Err(StorageError::Corrupt("keyring has no active term".into()).into());
        }
        Ok(Keyring {
            active: stored.active_term,
            terms,
            root,
        })
    }

    /// Checks that `unseal_key` opens the keyring without unsealing.
    pub async fn verify_key(&self, unseal_key: &[u8]) -> Result<(), BarrierError> {
        self.open_root(unseal_key).await.map(|_| ())
    }

    /// Drops the keyring from memory.
    pub fn seal(&self) {
        if let Ok(mut slot) = self.keyring.write() {
            *slot = None;
        }
    }

    /// Adds a new term and makes it active; old terms still decrypt.
    pub async fn rotate(&self) -> Result<KeyStatus, BarrierError> {
        let current = self.current()?;
        let data_key = self.generate_key()?;
        let new_term = current.active + 1;
        let mut terms = BTreeMap::new();
        for (t, k) in &current.terms {
            terms.insert(
                *t,
                TermKey {
                    key: make_key(&k.raw)?,
                    raw: k.raw.clone(),
                    installed: k.installed,
                },
            );
        }
        let installed = now_secs();
        terms.insert(
            new_term,
            TermKey {
                key: make_key(&data_key)?,
                raw: data_key,
                installed,
            },
        );
        let ring = Keyring {
            active: new_term,
            terms,
            root: current.root.clone(),
        };
        self.persist_keyring(&ring).await?;
        if let Ok(mut slot) = self.keyring.write() {
            *slot = Some(Arc::new(ring));
        }
        Ok(KeyStatus {
            term: new_term,
            install_time: installed,
            encryptions: 0,
        })
    }

    /// The active term and when it was installed.
    pub fn key_status(&self) -> Result<KeyStatus, StorageError> {
        let ring = self.current()?;
        let installed = ring
            .terms
            .get(&ring.active)
            .map(|k| k.installed)
            .unwrap_or(0);
        Ok(KeyStatus {
            term: ring.active,
            install_time: installed,
            encryptions: 0,
        })
    }

    fn current(&self) -> Result<Arc<Keyring>, StorageError> {
        self.keyring
            .read()
            .ok()
            .and_then(|k| k.clone())
            .ok_or(StorageError::Sealed)
    }

    fn seal_value(
        &self,
        key: &LessSafeKey,
        term: u32,
        path: &str,
        plain: &[u8],
    ) -> Result<Vec<u8>, StorageError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| StorageError::Backend("random number generator failed".into()))?;
        let mut out = Vec::with_capacity(HEADER + plain.len() + AES_256_GCM.tag_len());
        out.push(VERSION);
        out.extend_from_slice(&term.to_be_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plain);
        let tag = key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(path.as_bytes()),
                &mut out[HEADER..],
            )
            .map_err(|_| StorageError::Backend("encryption failed".into()))?;
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    fn open_value(key: &LessSafeKey, path: &str, blob: &[u8]) -> Result<Vec<u8>, StorageError> {
        if blob.len() < HEADER + AES_256_GCM.tag_len() || blob[0] != VERSION {
            return Err(StorageError::Corrupt(format!(
                "entry {path:?} is malformed"
            )));
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&blob[5..HEADER]);
        let mut buf = blob[HEADER..].to_vec();
        let plain = key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(path.as_bytes()),
                &mut buf,
            )
            .map_err(|_| StorageError::Corrupt(format!("entry {path:?} failed authentication")))?;
        let len = plain.len();
        buf.truncate(len);
        Ok(buf)
    }

    /// Decrypts a stored entry, reloading the keyring once if the entry was written under a
    /// newer term (another node over the same storage rotated the key).
    async fn open_blob(
        &self,
        ring: &Keyring,
        key: &str,
        blob: &[u8],
    ) -> Result<Vec<u8>, StorageError> {
        let term = Self::term_of(blob)
            .ok_or_else(|| StorageError::Corrupt(format!("entry {key:?} is malformed")))?;
        if let Some(k) = ring.terms.get(&term) {
            return Self::open_value(&k.key, key, blob);
        }
        if term > ring.active {
            self.reload_keyring().await.map_err(|e| match e {
                BarrierError::Storage(s) => s,
                other => StorageError::Corrupt(format!("keyring: {other}")),
            })?;
            let ring = self.current()?;
            if let Some(k) = ring.terms.get(&term) {
                return Self::open_value(&k.key, key, blob);
            }
        }
        Err(StorageError::Corrupt(format!(
            "entry {key:?} uses unknown term {term}"
        )))
    }

    /// Encrypts the values of a batch under the active term.
    fn seal_ops(&self, ops: Vec<Op>) -> Result<Vec<Op>, StorageError> {
        let ring = self.current()?;
        let mut sealed = Vec::with_capacity(ops.len());
        for op in ops {
            match op {
                Op::Put(k, v) => {
                    let v = Zeroizing::new(v);
                    let c = self.encrypt(&ring, &k, &v)?;
                    sealed.push(Op::Put(k, c));
                }
                Op::Delete(k) => sealed.push(Op::Delete(k)),
            }
        }
        Ok(sealed)
    }

    fn term_of(blob: &[u8]) -> Option<u32> {
        if blob.len() < 5 {
            return None;
        }
        Some(u32::from_be_bytes([blob[1], blob[2], blob[3], blob[4]]))
    }

    fn encrypt(&self, ring: &Keyring, path: &str, plain: &[u8]) -> Result<Vec<u8>, StorageError> {
        let k = ring
            .terms
            .get(&ring.active)
            .ok_or_else(|| StorageError::Corrupt("active term missing".into()))?;
        self.seal_value(&k.key, ring.active, path, plain)
    }
}

#[async_trait]
impl Storage for Barrier {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let ring = self.current()?;
        match self.physical.get(key).await? {
            Some(blob) => self.open_blob(&ring, key, &blob).await.map(Some),
            None => Ok(None),
        }
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StorageError> {
        let ring = self.current()?;
        let blobs = self.physical.get_many(keys).await?;
        let mut out = Vec::with_capacity(blobs.len());
        for (key, blob) in keys.iter().zip(blobs) {
            out.push(match blob {
                Some(b) => Some(self.open_blob(&ring, key, &b).await?),
                None => None,
            });
        }
        Ok(out)
    }

    async fn apply(&self, ops: Vec<Op>) -> Result<(), StorageError> {
        let sealed = self.seal_ops(ops)?;
        self.physical.apply(sealed).await
    }

    async fn apply_unannounced(&self, ops: Vec<Op>) -> Result<(), StorageError> {
        let sealed = self.seal_ops(ops)?;
        self.physical.apply_unannounced(sealed).await
    }

    async fn list_page(
        &self,
        prefix: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<String>, StorageError> {
        self.current()?;
        self.physical.list_page(prefix, after, limit).await
    }

    fn kind(&self) -> &'static str {
        self.physical.kind()
    }

    async fn lock(&self, name: &str) -> Result<crate::LockGuard, StorageError> {
        self.physical.lock(name).await
    }
}
