//! `certs/search` — what OpenBao lacks: find certificates by name (exact or glob, CN or DNS
//! SAN), role, state (valid, expired, revoked) and expiry window, answered from the inventory's
//! indexes (`storage::IDX_*`) rather than by reading every certificate.
//!
//! The most selective index available drives the scan — a name without a leading wildcard or
//! with a `*.` prefix is a prefix scan of reversed DNS labels; then a role; then the expiry
//! window — and only the candidates' records are read to apply the remaining filters.

use std::sync::Arc;

use serde_json::{json, Map};
use signet_core::framework::{handler, Ctx, Field, PathSpec};
use signet_core::token::now_secs;
use signet_core::{CoreError, CoreResult, Operation, Response};
use signet_storage::Storage;
use signet_types::FieldType;

use crate::storage::{reverse_name, CertRecord, CERTS_PREFIX, IDX_EXP, IDX_NAME, IDX_ROLE};
use crate::Pki;

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;
/// Index keys examined per request at most (a bound on the cost of unselective queries).
const MAX_SCAN: usize = 200_000;

pub fn specs() -> Vec<PathSpec<Pki>> {
    vec![PathSpec::new("certs/search")
        .field(Field::new(
            "name",
            FieldType::String,
            "CN or DNS SAN; `*` globs allowed (`*.example.com`, `web-*`).",
        ))
        .field(Field::new(
            "role",
            FieldType::String,
            "Role the certificate was issued under.",
        ))
        .field(Field::new(
            "issuer",
            FieldType::String,
            "Issuer that signed it: id, name or default.",
        ))
        .field(Field::new(
            "state",
            FieldType::String,
            "valid, expired or revoked.",
        ))
        .field(Field::new(
            "expires_after",
            FieldType::Int,
            "Only certificates whose notAfter is at or after this Unix time.",
        ))
        .field(Field::new(
            "expires_before",
            FieldType::Int,
            "Only certificates whose notAfter is before this Unix time.",
        ))
        .field(Field::new(
            "limit",
            FieldType::Int,
            "Most results (100; at most 1000).",
        ))
        .op(
            Operation::Read,
            "Search the certificate inventory.",
            handler(search),
        )
        .op(
            Operation::Update,
            "Search the certificate inventory.",
            handler(search),
        )
        .help(
            "Search stored certificates by name, role, state and expiry.",
            "",
        )]
}

fn glob(pattern: &str, value: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == value;
    }
    let mut rest = value;
    for (i, p) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(p) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(p);
        } else {
            let Some(pos) = rest.find(p) else {
                return false;
            };
            rest = &rest[pos + p.len()..];
        }
    }
    true
}

/// Serials under an index prefix, each as its storage key (`aa-bb`), paging until `stop`
/// says so or the scan budget is spent.
async fn scan<F>(
    c: &Ctx,
    prefix: &str,
    mut keep: F,
    want: usize,
    budget: &mut usize,
) -> CoreResult<Vec<String>>
where
    F: FnMut(&str) -> Option<bool>,
{
    // keep(child) -> Some(true) take, Some(false) skip, None stop.
    let mut out = Vec::new();
    let mut after = String::new();
    loop {
        let page = c.storage.list_page(prefix, &after, 1000).await?;
        let Some(last) = page.last().cloned() else {
            return Ok(out);
        };
        for child in page {
            if *budget == 0 {
                return Ok(out);
            }
            *budget -= 1;
            match keep(&child) {
                Some(true) => out.push(child),
                Some(false) => {}
                None => return Ok(out),
            }
            if out.len() >= want {
                return Ok(out);
            }
        }
        after = last;
    }
}

async fn search(pki: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    let f = &c.fields;
    let issuer_id = match f.str("issuer") {
        r if r.is_empty() => None,
        r => Some(
            crate::issuers::resolve_issuer(&pki, &c, &r)
                .await?
                .issuer_id,
        ),
    };
    let name = f.str("name").to_lowercase();
    let role = f.str("role");
    let state = f.str("state");
    if !matches!(state.as_str(), "" | "valid" | "expired" | "revoked") {
        return Err(CoreError::bad("state must be valid, expired or revoked"));
    }
    let after = f.is_set("expires_after").then(|| f.i64("expires_after"));
    let before = f.is_set("expires_before").then(|| f.i64("expires_before"));
    let limit = match f.i64("limit") {
        n if n > 0 => (n as usize).min(MAX_LIMIT),
        _ => DEFAULT_LIMIT,
    };
    if name.is_empty()
        && role.is_empty()
        && after.is_none()
        && before.is_none()
        && state.is_empty()
        && issuer_id.is_none()
    {
        return Err(CoreError::bad(
            "give at least one of name, role, issuer, state, expires_after, expires_before",
        ));
    }
    let mut budget = MAX_SCAN;
    // Candidates to collect: exactly `limit` when the driving index is the only filter,
    // otherwise as many as the budget allows (later filters drop some).
    let only_name = role.is_empty()
        && state.is_empty()
        && after.is_none()
        && before.is_none()
        && issuer_id.is_none();
    let only_window =
        name.is_empty() && role.is_empty() && state != "revoked" && issuer_id.is_none();
    let cap_name = if only_name { limit } else { MAX_SCAN };
    let cap_window = if only_window { limit } else { MAX_SCAN };
    // Candidates, as serial storage keys.
    let candidates: Vec<String> = if !name.is_empty() {
        // `idx/name/<reversed name>|<issued>_<serial>`: an exact name is the prefix
        // `<reversed>|`; a glob scans from the reversed pattern's literal part before its
        // first `*` (`*.example.com` scans `com.example.`, `svc-99*.fleet.example.com` scans
        // `com.example.fleet.svc-99`) and checks each entry's name against the glob.
        let reversed = reverse_name(&name);
        let (literal, exact) = if !name.contains('*') {
            (format!("{reversed}|"), true)
        } else {
            match (name.strip_prefix("*."), reversed.find('*')) {
                (Some(rest), _) if !rest.contains('*') => {
                    (format!("{}.", reverse_name(rest)), false)
                }
                (_, Some(i)) => (reversed[..i].to_string(), false),
                (_, None) => (reversed.clone(), false),
            }
        };
        let base = format!("{IDX_NAME}{literal}");
        let mut out = Vec::new();
        let mut after = String::new();
        'names: loop {
            let page = c.storage.list_page(&base, &after, 1000).await?;
            let Some(last) = page.last().cloned() else {
                break;
            };
            for key in page {
                if budget == 0 || out.len() >= cap_name {
                    break 'names;
                }
                budget -= 1;
                let Some((head, tail)) = key
                    .split_once('|')
                    .or_else(|| Some(("", key.as_str())).filter(|_| exact))
                else {
                    continue;
                };
                if exact || glob(&name, &reverse_name(&format!("{literal}{head}"))) {
                    out.push(crate::storage::index_serial(tail).to_string());
                }
            }
            after = last;
        }
        out
    } else if !role.is_empty() {
        let only_role =
            state.is_empty() && after.is_none() && before.is_none() && issuer_id.is_none();
        scan(
            &c,
            &format!("{IDX_ROLE}{role}/"),
            |_| Some(true),
            if only_role { limit } else { MAX_SCAN },
            &mut budget,
        )
        .await?
    } else {
        let lo = after.unwrap_or(0).max(0);
        let hi = before.unwrap_or(i64::MAX);
        let now = now_secs() as i64;
        let (lo, hi) = match state.as_str() {
            "expired" => (lo, hi.min(now)),
            "valid" => (lo.max(now), hi),
            _ => (lo, hi),
        };
        // One range scan of `idx/exp/<notAfter>_<serial>` from the window's start.
        let mut out = Vec::new();
        let mut after_key = if lo > 0 {
            format!("{lo:012}")
        } else {
            String::new()
        };
        'outer: loop {
            let page = c.storage.list_page(IDX_EXP, &after_key, 1000).await?;
            let Some(last) = page.last().cloned() else {
                break;
            };
            for key in page {
                let t: i64 = key
                    .split_once('_')
                    .and_then(|(t, _)| t.parse().ok())
                    .unwrap_or(0);
                if t >= hi || budget == 0 || out.len() >= cap_window {
                    break 'outer;
                }
                budget -= 1;
                if t >= lo {
                    if let Some((_, serial)) = key.split_once('_') {
                        out.push(serial.to_string());
                    }
                }
            }
            after_key = last;
        }
        out
    };
    let now = now_secs() as i64;
    let mut keys = Vec::new();
    let mut info = Map::new();
    let mut seen = std::collections::BTreeSet::new();
    let serials: Vec<String> = candidates
        .iter()
        .map(|k| crate::storage::index_serial(k).to_string())
        .filter(|k| seen.insert(k.clone()))
        .collect();
    // Candidates' records are read in batches (one round trip each on a networked backend),
    // each batch as large as the results still missing, within bounds.
    let mut records: std::collections::VecDeque<(String, Option<CertRecord>)> = Default::default();
    let mut next = 0;
    loop {
        if keys.len() >= limit {
            break;
        }
        if records.is_empty() {
            if next >= serials.len() {
                break;
            }
            let n = (limit - keys.len())
                .clamp(16, 500)
                .min(serials.len() - next);
            let batch = &serials[next..next + n];
            next += n;
            let wanted: Vec<String> = batch.iter().map(|k| format!("{CERTS_PREFIX}{k}")).collect();
            for (k, raw) in batch.iter().zip(c.storage.get_many(&wanted).await?) {
                let rec = match raw {
                    Some(b) => Some(serde_json::from_slice::<CertRecord>(&b).map_err(|e| {
                        signet_core::CoreError::Internal(format!("certificate record {k}: {e}"))
                    })?),
                    None => None,
                };
                records.push_back((k.clone(), rec));
            }
        }
        let Some((k, rec)) = records.pop_front() else {
            break;
        };
        let Some(r) = rec else { continue };
        let st = if r.revoked_at > 0 {
            "revoked"
        } else if r.not_after < now {
            "expired"
        } else {
            "valid"
        };
        if (!state.is_empty() && state != st)
            || (!role.is_empty() && r.role != role)
            || issuer_id.as_ref().is_some_and(|i| &r.issuer_id != i)
            || after.is_some_and(|a| r.not_after < a)
            || before.is_some_and(|b| r.not_after >= b)
            || (!name.is_empty() && !r.names.iter().any(|n| glob(&name, &n.to_lowercase())))
        {
            continue;
        }
        let serial = k.replace('-', ":");
        info.insert(
            serial.clone(),
            json!({
                "common_name": r.common_name,
                "names": r.names,
                "role": r.role,
                "issuer_id": r.issuer_id,
                "requester_accessor": r.requester,
                "issued_at": r.issued_at,
                "not_after": r.not_after,
                "state": st,
            }),
        );
        keys.push(serial);
    }
    let mut resp = Response::json(json!({"keys": keys, "key_info": info}));
    if budget == 0 {
        resp.warnings.push("the search stopped after examining its budget of index entries; narrow it with a name, role or expiry window".into());
    }
    Ok(Some(resp))
}
