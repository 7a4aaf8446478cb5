//! The `token_*` fields every auth method's roles share (`token_policies`, `token_ttl`,
//! `token_max_ttl`, `token_period`, `token_bound_cidrs`, ...), with Vault's legacy aliases, and
//! the [`Login`] an auth method returns for the core to turn into a token.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use signet_types::FieldType;

use crate::error::{CoreError, CoreResult};
use crate::framework::{Field, FieldData, PathSpec};
use crate::token::valid_cidr;

/// What a successful login asks the core to mint.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Login {
    pub policies: Vec<String>,
    pub metadata: BTreeMap<String, String>,
    /// Appended to the mount type in the token's display name (`approle-web`).
    pub display_name: String,
    pub params: TokenParams,
}

/// Token settings of an auth method's role.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TokenParams {
    #[serde(default)]
    pub token_policies: Vec<String>,
    #[serde(default)]
    pub token_ttl: u64,
    #[serde(default)]
    pub token_max_ttl: u64,
    #[serde(default)]
    pub token_period: u64,
    #[serde(default)]
    pub token_explicit_max_ttl: u64,
    #[serde(default)]
    pub token_bound_cidrs: Vec<String>,
    #[serde(default)]
    pub token_num_uses: i64,
    #[serde(default)]
    pub token_no_default_policy: bool,
    #[serde(default)]
    pub token_type: String,
}

impl TokenParams {
    /// Adds the shared fields (and legacy aliases) to a role's path spec.
    pub fn fields<S>(spec: PathSpec<S>) -> PathSpec<S> {
        spec.field(Field::new(
            "token_policies",
            FieldType::CommaStringSlice,
            "Policies of tokens issued by this role.",
        ))
        .field(Field::new(
            "policies",
            FieldType::CommaStringSlice,
            "Deprecated alias of token_policies.",
        ))
        .field(Field::new(
            "token_ttl",
            FieldType::DurationSecond,
            "Initial TTL of issued tokens.",
        ))
        .field(Field::new(
            "ttl",
            FieldType::DurationSecond,
            "Deprecated alias of token_ttl.",
        ))
        .field(Field::new(
            "token_max_ttl",
            FieldType::DurationSecond,
            "Maximum lifetime of issued tokens across renewals.",
        ))
        .field(Field::new(
            "max_ttl",
            FieldType::DurationSecond,
            "Deprecated alias of token_max_ttl.",
        ))
        .field(Field::new(
            "token_period",
            FieldType::DurationSecond,
            "Period of issued tokens (periodic tokens).",
        ))
        .field(Field::new(
            "period",
            FieldType::DurationSecond,
            "Deprecated alias of token_period.",
        ))
        .field(Field::new(
            "token_explicit_max_ttl",
            FieldType::DurationSecond,
            "Hard cap on issued tokens' lifetime.",
        ))
        .field(Field::new(
            "token_bound_cidrs",
            FieldType::CommaStringSlice,
            "CIDR blocks issued tokens may be used from.",
        ))
        .field(Field::new(
            "bound_cidr_list",
            FieldType::CommaStringSlice,
            "Deprecated alias of token_bound_cidrs.",
        ))
        .field(Field::new(
            "token_num_uses",
            FieldType::Int,
            "Uses per issued token (0 = unlimited).",
        ))
        .field(Field::new(
            "token_no_default_policy",
            FieldType::Bool,
            "Do not add the default policy.",
        ))
        .field(Field::new(
            "token_type",
            FieldType::String,
            "Token type; only service tokens are supported.",
        ))
    }

    /// Applies the fields present in a request on top of `self`.
    pub fn update(&mut self, f: &FieldData) -> CoreResult<()> {
        let pick = |a: &str, b: &str| -> Option<String> {
            if f.is_set(a) {
                Some(a.to_string())
            } else if f.is_set(b) {
                Some(b.to_string())
            } else {
                None
            }
        };
        if let Some(k) = pick("token_policies", "policies") {
            let mut p: Vec<String> = f
                .strings(&k)
                .into_iter()
                .map(|x| x.to_lowercase())
                .collect();
            p.sort();
            p.dedup();
            self.token_policies = p;
        }
        if let Some(k) = pick("token_ttl", "ttl") {
            self.token_ttl = f.u64(&k);
        }
        if let Some(k) = pick("token_max_ttl", "max_ttl") {
            self.token_max_ttl = f.u64(&k);
        }
        if let Some(k) = pick("token_period", "period") {
            self.token_period = f.u64(&k);
        }
        if f.is_set("token_explicit_max_ttl") {
            self.token_explicit_max_ttl = f.u64("token_explicit_max_ttl");
        }
        if let Some(k) = pick("token_bound_cidrs", "bound_cidr_list") {
            let c = f.strings(&k);
            if let Some(bad) = c.iter().find(|c| !valid_cidr(c)) {
                return Err(CoreError::bad(format!("invalid CIDR {bad:?} in {k}")));
            }
            self.token_bound_cidrs = c;
        }
        if f.is_set("token_num_uses") {
            let n = f.i64("token_num_uses");
            if n < 0 {
                return Err(CoreError::bad("token_num_uses cannot be negative"));
            }
            self.token_num_uses = n;
        }
        if f.is_set("token_no_default_policy") {
            self.token_no_default_policy = f.bool("token_no_default_policy");
        }
        if f.is_set("token_type") {
            let t = f.str("token_type");
            if !matches!(t.as_str(), "" | "default" | "service" | "default-service") {
                return Err(CoreError::bad(
                    "only service tokens are supported by signet",
                ));
            }
            self.token_type = t;
        }
        if self.token_max_ttl > 0 && self.token_ttl > self.token_max_ttl {
            return Err(CoreError::bad(
                "token_ttl cannot be greater than token_max_ttl",
            ));
        }
        Ok(())
    }

    /// The fields as a role read shows them.
    pub fn to_json(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("token_bound_cidrs".into(), json!(self.token_bound_cidrs));
        m.insert(
            "token_explicit_max_ttl".into(),
            json!(self.token_explicit_max_ttl),
        );
        m.insert("token_max_ttl".into(), json!(self.token_max_ttl));
        m.insert(
            "token_no_default_policy".into(),
            json!(self.token_no_default_policy),
        );
        m.insert("token_num_uses".into(), json!(self.token_num_uses));
        m.insert("token_period".into(), json!(self.token_period));
        m.insert("token_policies".into(), json!(self.token_policies));
        m.insert("token_strictly_bind_ip".into(), json!(false));
        m.insert("token_ttl".into(), json!(self.token_ttl));
        m.insert(
            "token_type".into(),
            json!(if self.token_type.is_empty() {
                "default"
            } else {
                self.token_type.as_str()
            }),
        );
        m
    }
}
