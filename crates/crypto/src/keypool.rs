//! A bounded pool of pre-generated RSA keys, so issuing an RSA certificate does not wait for
//! key generation (tens of milliseconds for RSA-2048; EC and Ed25519 keys take microseconds
//! and are not pooled).
//!
//! One background thread fills the pool, only for the sizes that have been asked for (a
//! server that never issues RSA keys never spends a cycle on them), up to a fixed number per
//! size. A key leaves the pool by being popped from its queue under the lock, so no key is
//! ever handed out twice; keys are held as PKCS#8 DER in `Zeroizing` buffers, so whatever the
//! pool still holds, or discards, is wiped when dropped. When the pool is empty the caller
//! generates its own key (the pool never blocks a request waiting for the filler).

use std::collections::{HashMap, VecDeque};
use std::sync::{Condvar, Mutex, OnceLock};

use rcgen::KeyPair;
use zeroize::Zeroizing;

use crate::x509::{self, KeyType, X509Error};

/// How many keys are kept ready per RSA size.
fn capacity(bits: u32) -> usize {
    match bits {
        0..=2048 => 64,
        2049..=3072 => 16,
        _ => 8,
    }
}

#[derive(Default)]
struct State {
    ready: HashMap<u32, VecDeque<Zeroizing<Vec<u8>>>>,
    filler_started: bool,
}

/// The pool (one per process, see [`global`]).
#[derive(Default)]
pub struct KeyPool {
    state: Mutex<State>,
    wake: Condvar,
}

static GLOBAL: OnceLock<&'static KeyPool> = OnceLock::new();

/// The process-wide pool.
pub fn global() -> &'static KeyPool {
    GLOBAL.get_or_init(|| Box::leak(Box::new(KeyPool::default())))
}

impl KeyPool {
    /// A pooled key of this type, if one is ready; asking registers the size, so the filler
    /// keeps it stocked from now on. Always None for non-RSA keys.
    pub fn try_take(&'static self, kt: KeyType) -> Option<Result<KeyPair, X509Error>> {
        let KeyType::Rsa(bits) = kt else {
            return None;
        };
        let der = {
            let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let popped = st.ready.entry(bits).or_default().pop_front();
            if !st.filler_started {
                st.filler_started = true;
                let spawned = std::thread::Builder::new()
                    .name("signet-keypool".into())
                    .spawn(move || self.fill());
                if spawned.is_err() {
                    st.filler_started = false;
                }
            }
            popped
        };
        self.wake.notify_one();
        let der = der?;
        Some(
            KeyPair::from_pkcs8_der_and_sign_algo(
                &rustls_pki_types::PrivatePkcs8KeyDer::from(der.as_slice()),
                kt.alg(),
            )
            .map_err(|e| X509Error::Build(format!("pooled key: {e}"))),
        )
    }

    /// A key of this type: from the pool when one is ready, else generated now.
    pub fn take(&'static self, kt: KeyType) -> Result<KeyPair, X509Error> {
        match self.try_take(kt) {
            Some(k) => k,
            None => x509::generate_key(kt),
        }
    }

    /// How many keys of an RSA size are ready.
    pub fn ready(&self, bits: u32) -> usize {
        let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.ready.get(&bits).map_or(0, VecDeque::len)
    }

    /// The filler: tops up every requested size, then sleeps until a key is taken.
    fn fill(&self) {
        loop {
            let want = {
                let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
                loop {
                    let short = st
                        .ready
                        .iter()
                        .filter(|(bits, q)| q.len() < capacity(**bits))
                        .map(|(bits, q)| (q.len(), *bits))
                        .min();
                    match short {
                        Some((_, bits)) => break bits,
                        None => st = self.wake.wait(st).unwrap_or_else(|p| p.into_inner()),
                    }
                }
            };
            let der = match x509::generate_key(KeyType::Rsa(want)) {
                Ok(k) => Zeroizing::new(k.serialize_der()),
                Err(_) => {
                    std::thread::sleep(std::time::Duration::from_secs(1));
                    continue;
                }
            };
            let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let q = st.ready.entry(want).or_default();
            if q.len() < capacity(want) {
                q.push_back(der);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn pool_fills_and_never_hands_out_a_key_twice() {
        let pool = global();
        let kt = KeyType::Rsa(2048);
        // The first ask registers the size; the filler stocks it.
        let _ = pool.take(kt).unwrap();
        let start = std::time::Instant::now();
        while pool.ready(2048) < 4 && start.elapsed().as_secs() < 60 {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(pool.ready(2048) >= 4);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..4 {
            let k = pool.try_take(kt).expect("ready").unwrap();
            assert!(seen.insert(x509::spki_of(&k)), "a key was handed out twice");
        }
        // Non-RSA keys are never pooled.
        assert!(pool.try_take(KeyType::Ed25519).is_none());
        assert!(pool.take(KeyType::Ed25519).is_ok());
    }
}
