//! Vault's listing semantics over any ordered key scan, shared by every backend.
//!
//! A backend supplies `scan(start, inclusive, batch)`: up to `batch` keys in byte order that are
//! `>= start` (or `> start`) and begin with the prefix. Listing walks it, folding every key below
//! a sub-folder into one `folder/` entry and then jumping past that subtree, so a folder with a
//! million entries costs one query, not a million.

use crate::StorageError;

const BATCH: usize = 256;

/// Returns the immediate children of `prefix` after `after`, at most `limit` of them.
pub(crate) fn list_children<F>(
    prefix: &str,
    after: &str,
    limit: usize,
    mut scan: F,
) -> Result<Vec<String>, StorageError>
where
    F: FnMut(&str, bool, usize) -> Result<Vec<String>, StorageError>,
{
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    let (mut start, mut inclusive) = if after.is_empty() {
        (prefix.to_string(), true)
    } else if let Some(folder) = after.strip_suffix('/') {
        (format!("{prefix}{folder}0"), true)
    } else {
        (format!("{prefix}{after}"), false)
    };
    loop {
        let batch = scan(&start, inclusive, BATCH)?;
        let full = batch.len() == BATCH;
        let mut jumped = false;
        for key in batch {
            let Some(rest) = key.strip_prefix(prefix) else {
                continue;
            };
            if let Some(i) = rest.find('/') {
                out.push(rest[..=i].to_string());
                start = format!("{prefix}{}0", &rest[..i]);
                inclusive = true;
                jumped = true;
            } else {
                out.push(rest.to_string());
                start = key.clone();
                inclusive = false;
            }
            if out.len() >= limit {
                return Ok(out);
            }
            if jumped {
                break;
            }
        }
        if !jumped && !full {
            return Ok(out);
        }
    }
}

/// The smallest byte string greater than every string that starts with `prefix`, or `None`
/// when there is none (empty prefix or all 0xFF).
pub(crate) fn prefix_upper_bound(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut upper = prefix.to_vec();
    while let Some(last) = upper.pop() {
        if last < 0xFF {
            upper.push(last + 1);
            return Some(upper);
        }
    }
    None
}
