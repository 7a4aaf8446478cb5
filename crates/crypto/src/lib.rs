//! Synchronous cryptography for signet. No I/O, no async.
//!
//! Shamir secret sharing for the unseal key ([`shamir`]); key generation, CSR checks and
//! certificate building for the PKI engine ([`x509`]). CRL and OCSP building come next.

pub mod keypool;
pub mod ocsp;
pub mod shamir;
pub mod x509;
