//! Requests and responses as the core and engines see them, independent of HTTP.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde_json::{Map, Value};
use signet_types::Secret;

/// A logical operation, decided from the HTTP method (and, for POST/PUT, an existence check).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    Read,
    Create,
    Update,
    Patch,
    Delete,
    List,
    Help,
}

impl Operation {
    /// Vault's name for the operation (used in OpenAPI, help and audit).
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Read => "read",
            Operation::Create => "create",
            Operation::Update => "update",
            Operation::Patch => "patch",
            Operation::Delete => "delete",
            Operation::List => "list",
            Operation::Help => "help",
        }
    }
}

/// How a POST/PUT was sent, before the existence check turns it into create or update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Write,
    Patch,
    Delete,
    List,
    Help,
}

/// One request as parsed by the HTTP layer.
#[derive(Debug)]
pub struct Request {
    /// UUID echoed as `request_id`.
    pub id: String,
    pub method: Method,
    /// The path after `/v1/`, percent-decoded.
    pub path: String,
    /// Body fields (JSON object or form), plus query parameters on reads and lists.
    pub data: Map<String, Value>,
    /// The client token from `X-Vault-Token` or `Authorization: Bearer`.
    pub token: Option<Secret<String>>,
    /// The peer address.
    pub remote_addr: Option<SocketAddr>,
    /// Request headers the engines may need (lower-case names).
    pub headers: BTreeMap<String, String>,
    /// DER client certificates from the TLS handshake (end entity first), if any.
    pub peer_certs: Option<std::sync::Arc<Vec<Vec<u8>>>>,
    /// The body as sent, for binary protocols (an OCSP request); `data` is then empty.
    pub raw_body: Option<std::sync::Arc<Vec<u8>>>,
}

/// A lease attached to a response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lease {
    pub lease_id: String,
    pub duration: u64,
    pub renewable: bool,
}

/// A response body sent as is (PKI's DER and PEM downloads, `sys/health`'s bare JSON).
#[derive(Debug, Clone)]
pub struct RawBody {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

/// What a handler returns. `None` from a handler means "204 No Content".
#[derive(Debug, Clone, Default)]
pub struct Response {
    pub data: Option<Map<String, Value>>,
    pub warnings: Vec<String>,
    pub auth: Option<Value>,
    pub lease: Option<Lease>,
    /// Send this body instead of the envelope.
    pub raw: Option<RawBody>,
    /// Copy the data keys to the top level of the envelope too, as Vault's sys paths do.
    pub data_at_top_level: bool,
    /// A successful login: the core mints the token and fills `auth`.
    pub login: Option<crate::token_params::Login>,
}

impl Response {
    /// A response carrying `data`.
    pub fn data(data: Map<String, Value>) -> Self {
        Response {
            data: Some(data),
            ..Default::default()
        }
    }

    /// A response carrying `data` given as a JSON object value.
    pub fn json(value: Value) -> Self {
        match value {
            Value::Object(m) => Self::data(m),
            other => {
                let mut m = Map::new();
                m.insert("value".into(), other);
                Self::data(m)
            }
        }
    }

    /// A `{"keys": [...]}` list response.
    pub fn list(keys: Vec<String>) -> Self {
        let mut m = Map::new();
        m.insert(
            "keys".into(),
            Value::Array(keys.into_iter().map(Value::String).collect()),
        );
        Self::data(m)
    }

    /// A login response: the core turns it into a token.
    pub fn login(login: crate::token_params::Login) -> Self {
        Response {
            login: Some(login),
            ..Default::default()
        }
    }

    /// A list response, or 404 with an empty error list when there is nothing to list (Vault's
    /// answer for an empty LIST).
    pub fn list_or_not_found(keys: Vec<String>) -> crate::CoreResult<Option<Response>> {
        if keys.is_empty() {
            return Err(crate::CoreError::NotFound);
        }
        Ok(Some(Self::list(keys)))
    }

    /// A raw JSON body with a status code (for `sys/health` and friends).
    pub fn raw_json(status: u16, value: &Value) -> Self {
        Response {
            raw: Some(RawBody {
                status,
                content_type: "application/json".into(),
                body: serde_json::to_vec(value).unwrap_or_default(),
            }),
            ..Default::default()
        }
    }

    /// Adds a warning.
    pub fn warn(mut self, w: impl Into<String>) -> Self {
        self.warnings.push(w.into());
        self
    }
}
