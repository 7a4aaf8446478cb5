//! ACL policies: parsing (HCL or JSON) and the compiled checker.
//!
//! A [`Policy`] is a list of path rules (`path "pki/issue/*" { capabilities = ["update"] }`,
//! with optional `required_parameters`, `allowed_parameters`, `denied_parameters`). An [`Acl`]
//! compiles the policies a token carries: rules for the same pattern merge (capabilities are
//! unioned, `deny` wins), and a request path takes the rules of the single most specific
//! matching pattern, by Vault's priority order (an exact path beats any glob; then the later
//! first wildcard, no trailing `*`, fewer `+` segments, longer pattern, lexically greater).
//! Pure and synchronous: no storage, no I/O.

mod parse;

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde_json::{Map, Value};

pub use parse::{parse, PolicyError};

/// A set of capabilities.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Caps(u16);

impl Caps {
    pub const DENY: Caps = Caps(1);
    pub const CREATE: Caps = Caps(1 << 1);
    pub const READ: Caps = Caps(1 << 2);
    pub const UPDATE: Caps = Caps(1 << 3);
    pub const DELETE: Caps = Caps(1 << 4);
    pub const LIST: Caps = Caps(1 << 5);
    pub const SUDO: Caps = Caps(1 << 6);
    pub const PATCH: Caps = Caps(1 << 7);
    pub const SCAN: Caps = Caps(1 << 8);
    /// Every capability but deny (what `root` has).
    pub const ALL: Caps = Caps(0b1_1111_1110);

    const NAMES: [(&'static str, Caps); 9] = [
        ("create", Caps::CREATE),
        ("delete", Caps::DELETE),
        ("deny", Caps::DENY),
        ("list", Caps::LIST),
        ("patch", Caps::PATCH),
        ("read", Caps::READ),
        ("scan", Caps::SCAN),
        ("sudo", Caps::SUDO),
        ("update", Caps::UPDATE),
    ];

    /// Parses one capability name.
    pub fn from_name(name: &str) -> Option<Caps> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, c)| *c)
    }

    pub fn contains(self, other: Caps) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }

    pub fn union(self, other: Caps) -> Caps {
        Caps(self.0 | other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Capability names in Vault's (sorted) order.
    pub fn names(self) -> Vec<String> {
        if self.contains(Caps::DENY) {
            return vec!["deny".into()];
        }
        Self::NAMES
            .iter()
            .filter(|(_, c)| self.contains(*c))
            .map(|(n, _)| n.to_string())
            .collect()
    }
}

/// One `path` stanza.
#[derive(Debug, Clone, PartialEq)]
pub struct PathRule {
    pub pattern: String,
    pub caps: Caps,
    pub required_parameters: Vec<String>,
    /// `None` when not set; a key with an empty list allows any value.
    pub allowed_parameters: Option<BTreeMap<String, Vec<Value>>>,
    pub denied_parameters: Option<BTreeMap<String, Vec<Value>>>,
    pub min_wrapping_ttl: u64,
    pub max_wrapping_ttl: u64,
    /// Line of the stanza in the source (0 for JSON).
    pub line: usize,
}

/// A named policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub name: String,
    pub rules: Vec<PathRule>,
}

/// What a request wants to do, in capability terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Create,
    Read,
    Update,
    Patch,
    Delete,
    List,
    Scan,
}

impl Op {
    fn cap(self) -> Caps {
        match self {
            Op::Create => Caps::CREATE,
            Op::Read => Caps::READ,
            Op::Update => Caps::UPDATE,
            Op::Patch => Caps::PATCH,
            Op::Delete => Caps::DELETE,
            Op::List => Caps::LIST,
            Op::Scan => Caps::SCAN,
        }
    }

    fn writes(self) -> bool {
        matches!(self, Op::Create | Op::Update | Op::Patch)
    }
}

/// The outcome of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// The caller holds `sudo` on the path (or is root).
    pub sudo: bool,
    /// Why a parameter constraint refused the request.
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default)]
struct Perm {
    caps: Caps,
    required: Vec<String>,
    allowed: Option<BTreeMap<String, Vec<Value>>>,
    denied: Option<BTreeMap<String, Vec<Value>>>,
}

impl Perm {
    fn merge(&mut self, rule: &PathRule) {
        if rule.caps.contains(Caps::DENY) || self.caps.contains(Caps::DENY) {
            self.caps = Caps::DENY;
        } else {
            self.caps = self.caps.union(rule.caps);
        }
        for r in &rule.required_parameters {
            if !self.required.contains(r) {
                self.required.push(r.clone());
            }
        }
        merge_params(&mut self.allowed, &rule.allowed_parameters);
        merge_params(&mut self.denied, &rule.denied_parameters);
    }
}

fn merge_params(
    into: &mut Option<BTreeMap<String, Vec<Value>>>,
    from: &Option<BTreeMap<String, Vec<Value>>>,
) {
    let Some(from) = from else { return };
    let map = into.get_or_insert_with(BTreeMap::new);
    for (k, vals) in from {
        match map.get_mut(k) {
            None => {
                map.insert(k.clone(), vals.clone());
            }
            Some(existing) => {
                // An empty list means "any value": it absorbs the other.
                if existing.is_empty() || vals.is_empty() {
                    existing.clear();
                } else {
                    existing.extend(vals.iter().cloned());
                }
            }
        }
    }
}

/// Compiled policies of one token.
#[derive(Debug, Clone, Default)]
pub struct Acl {
    root: bool,
    exact: BTreeMap<String, Perm>,
    globs: Vec<(String, Perm)>,
}

/// Whether `pattern` (with `+` segments and an optional trailing `*`) matches `path`.
pub fn pattern_matches(pattern: &str, path: &str) -> bool {
    let (base, glob) = match pattern.strip_suffix('*') {
        Some(b) => (b, true),
        None => (pattern, false),
    };
    if !base.contains('+') {
        return if glob {
            path.starts_with(base)
        } else {
            path == base
        };
    }
    let bsegs: Vec<&str> = base.split('/').collect();
    let psegs: Vec<&str> = path.split('/').collect();
    if glob {
        if psegs.len() < bsegs.len() {
            return false;
        }
    } else if psegs.len() != bsegs.len() {
        return false;
    }
    let last = bsegs.len() - 1;
    for (i, b) in bsegs.iter().enumerate() {
        let p = psegs[i];
        if *b == "+" {
            continue;
        }
        if glob && i == last {
            if !p.starts_with(b) {
                return false;
            }
        } else if *b != p {
            return false;
        }
    }
    true
}

/// Vault's priority order between two patterns matching the same path (Greater = wins).
fn priority(a: &str, b: &str) -> Ordering {
    let first_wild = |p: &str| p.find(['+', '*']).unwrap_or(p.len());
    let (fa, fb) = (first_wild(a), first_wild(b));
    if fa != fb {
        return fa.cmp(&fb);
    }
    let (ga, gb) = (a.ends_with('*'), b.ends_with('*'));
    if ga != gb {
        return if ga {
            Ordering::Less
        } else {
            Ordering::Greater
        };
    }
    let plus = |p: &str| p.split('/').filter(|s| *s == "+").count();
    let (pa, pb) = (plus(a), plus(b));
    if pa != pb {
        return pb.cmp(&pa);
    }
    if a.len() != b.len() {
        return a.len().cmp(&b.len());
    }
    a.cmp(b)
}

/// Vault's value globs: `*`, `prefix*`, `*suffix`, `*middle*`, or an exact value.
pub fn value_glob(pattern: &str, value: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match (pattern.strip_prefix('*'), pattern.strip_suffix('*')) {
        (Some(_), Some(_)) if pattern.len() >= 2 => value.contains(&pattern[1..pattern.len() - 1]),
        (Some(suffix), None) => value.ends_with(suffix),
        (None, Some(prefix)) => value.starts_with(prefix),
        _ => pattern == value,
    }
}

fn value_strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().flat_map(value_strings).collect(),
        Value::Null => vec![String::new()],
        other => vec![other.to_string()],
    }
}

fn values_match(allowed: &[Value], v: &Value) -> bool {
    value_strings(v).iter().all(|s| {
        allowed.iter().any(|a| match a {
            Value::String(p) => value_glob(p, s),
            other => value_strings(other).first() == Some(s),
        })
    })
}

impl Acl {
    /// Compiles policies; a policy named `root` grants everything.
    pub fn new(policies: &[Policy]) -> Acl {
        let mut acl = Acl::default();
        let mut globs: BTreeMap<String, Perm> = BTreeMap::new();
        for p in policies {
            if p.name == "root" {
                acl.root = true;
            }
            for r in &p.rules {
                let is_glob = r.pattern.ends_with('*') || r.pattern.contains('+');
                let slot = if is_glob {
                    globs.entry(r.pattern.clone()).or_default()
                } else {
                    acl.exact.entry(r.pattern.clone()).or_default()
                };
                slot.merge(r);
            }
        }
        acl.globs = globs.into_iter().collect();
        acl
    }

    /// Whether this ACL is root's.
    pub fn is_root(&self) -> bool {
        self.root
    }

    fn rule_for(&self, path: &str) -> Option<&Perm> {
        if let Some(p) = self.exact.get(path) {
            return Some(p);
        }
        self.globs
            .iter()
            .filter(|(pat, _)| pattern_matches(pat, path))
            .max_by(|(a, _), (b, _)| priority(a, b))
            .map(|(_, p)| p)
    }

    /// Whether any rule grants something (not `deny`) at or below `prefix` — Vault's test for
    /// showing a mount to a token (`sys/internal/ui/mounts/:path`).
    pub fn any_capability_under(&self, prefix: &str) -> bool {
        if self.root {
            return true;
        }
        let grants = |p: &Perm| !p.caps.is_empty() && !p.caps.contains(Caps::DENY);
        self.exact
            .iter()
            .any(|(pat, p)| grants(p) && pat.starts_with(prefix))
            || self.globs.iter().any(|(pat, p)| {
                let base = pat.trim_end_matches('*');
                let fixed = base.split('+').next().unwrap_or("");
                grants(p) && (fixed.starts_with(prefix) || prefix.starts_with(fixed))
            })
    }

    /// The capabilities on `path` (`["root"]` for root, `["deny"]` when none).
    pub fn capabilities(&self, path: &str) -> Vec<String> {
        if self.root {
            return vec!["root".into()];
        }
        match self.rule_for(path) {
            Some(p) if !p.caps.is_empty() => p.caps.names(),
            _ => vec!["deny".into()],
        }
    }

    /// Checks an operation on `path` with request `params`.
    pub fn check(&self, op: Op, path: &str, params: &Map<String, Value>) -> Decision {
        if self.root {
            return Decision {
                allowed: true,
                sudo: true,
                reason: None,
            };
        }
        let deny = |reason: Option<String>| Decision {
            allowed: false,
            sudo: false,
            reason,
        };
        let Some(perm) = self.rule_for(path) else {
            return deny(None);
        };
        if perm.caps.contains(Caps::DENY) || !perm.caps.contains(op.cap()) {
            return deny(None);
        }
        if op.writes() {
            if let Some(denied) = &perm.denied {
                if let Some(all) = denied.get("*") {
                    if all.is_empty() && !params.is_empty() {
                        return deny(Some("a denied parameter was given".into()));
                    }
                }
                for (k, v) in params {
                    if let Some(vals) = denied.get(k) {
                        if vals.is_empty() || values_match(vals, v) {
                            return deny(Some(format!("parameter {k:?} is denied")));
                        }
                    }
                }
            }
            if let Some(allowed) = &perm.allowed {
                let any_key = allowed.get("*");
                for (k, v) in params {
                    match allowed.get(k).or(any_key) {
                        None => return deny(Some(format!("parameter {k:?} is not allowed"))),
                        Some(vals) if !vals.is_empty() && !values_match(vals, v) => {
                            return deny(Some(format!("value of parameter {k:?} is not allowed")))
                        }
                        Some(_) => {}
                    }
                }
            }
            for r in &perm.required {
                if !params.contains_key(r) {
                    return deny(Some(format!("required parameter {r:?} is missing")));
                }
            }
        }
        Decision {
            allowed: true,
            sudo: perm.caps.contains(Caps::SUDO),
            reason: None,
        }
    }
}

#[cfg(test)]
mod tests;
