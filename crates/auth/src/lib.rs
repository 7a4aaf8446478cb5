//! signet's auth methods, one module each. Every method is a path-spec backend mounted under
//! `auth/`; a successful login returns a [`signet_core::Login`] and the core mints the token,
//! so no method ever handles token storage. Secret material a method keeps (AppRole secret
//! IDs) is stored only as keyed hashes with a per-mount salt.

pub mod approle;
pub mod azure;
pub mod cert;
mod jwt;
pub mod jwt_auth;
pub mod kubernetes;
mod outbound;
mod salt;
