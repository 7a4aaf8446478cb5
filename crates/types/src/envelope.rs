//! The Vault response envelope and error body.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Every successful JSON response: `{request_id, lease_id, renewable, lease_duration, data,
/// wrap_info, warnings, auth}`, in that order, as Vault and OpenBao send it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Envelope {
    #[serde(default)]
    pub request_id: String,
    #[serde(default)]
    pub lease_id: String,
    #[serde(default)]
    pub renewable: bool,
    #[serde(default)]
    pub lease_duration: u64,
    #[serde(default)]
    pub data: Option<Map<String, Value>>,
    #[serde(default)]
    pub wrap_info: Option<Value>,
    #[serde(default)]
    pub warnings: Option<Vec<String>>,
    #[serde(default)]
    pub auth: Option<Value>,
}

/// Every error response: `{"errors": [...]}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ErrorBody {
    #[serde(default)]
    pub errors: Vec<String>,
}
