//! Synchronous cryptography for signet. No I/O, no async.
//!
//! Today: Shamir secret sharing for the unseal key ([`shamir`]). The PKI engine adds key
//! generation, CSR checks and X.509/CRL/OCSP building here.

pub mod shamir;
