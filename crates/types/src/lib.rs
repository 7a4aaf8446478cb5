//! Wire types shared by every signet crate.
//!
//! This crate holds what travels on the wire and what every layer agrees on: the Vault response
//! envelope and error body, the coercions Vault applies to request fields (durations as `"72h"`
//! or seconds, lists as arrays or comma strings, booleans as strings), and [`Secret`], the
//! wrapper every key, token and secret ID lives in, and a line-aware HCL walker. It does no
//! I/O beyond reading a named configuration file.

pub mod coerce;
pub mod duration;
pub mod envelope;
pub mod hcl;
pub mod secret;

pub use coerce::{coerce, FieldType};
pub use duration::{format_go_duration, parse_duration};
pub use envelope::{Envelope, ErrorBody};
pub use secret::Secret;
