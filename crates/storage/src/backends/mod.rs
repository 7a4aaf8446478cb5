//! Storage backends. Each passes [`crate::testkit::battery`].

pub mod inmem;
pub mod postgres;
pub mod sqlite;
