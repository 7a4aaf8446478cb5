//! The audit broker: every request is recorded by the enabled audit devices before the engine
//! runs, and its response after. With at least one device enabled, a request that no device
//! could record is refused (fail closed) and the engine never runs it; one success suffices.
//!
//! Entries are Vault's JSON lines (`type`, `time`, `auth`, `request`, `response`, `error`).
//! Every string value in request and response data, the client token and (unless
//! `hmac_accessor=false`) accessors are replaced by `hmac-sha256:<hex>` with the device's own
//! salt, except what operators must be able to grep: the names, serial numbers and expiry of
//! certificates (public information), which stay in clear — the certificates a response
//! carries are summarised in clear under `certificates`.
//!
//! Devices come from the server configuration (declared, fixed for the process) and, only when
//! the configuration sets `unsafe_allow_api_audit_creation`, from `sys/audit/:path` (built by
//! the binary's [`AuditFactory`], persisted under `sys/audit/devices` and rebuilt at unseal).

use std::sync::{Arc, RwLock};

use aws_lc_rs::hmac;
use serde_json::{json, Map, Value};
use signet_storage::{Storage, StorageView};

use crate::error::{CoreError, CoreResult};
use crate::request::{Operation, Response};
use crate::RequestMeta;

/// A place audit entries go (a file, a socket, syslog).
pub trait AuditDevice: Send + Sync {
    /// The device's path in `sys/audit` (`main/`).
    fn path(&self) -> &str;
    /// `file`, `socket`, `syslog`.
    fn kind(&self) -> &str;
    fn description(&self) -> &str;
    /// The options as `sys/audit` lists them.
    fn options(&self) -> Map<String, Value>;
    /// Writes one entry (a JSON line); returns only once it is handed to the OS.
    fn write(&self, line: &[u8]) -> std::io::Result<()>;
    /// Whether accessors are hashed (Vault's `hmac_accessor`, default true).
    fn hmac_accessor(&self) -> bool {
        true
    }
    /// Whether values are written unhashed (`log_raw`).
    fn log_raw(&self) -> bool {
        false
    }
    /// Reopens the underlying file or connection (SIGHUP, after logrotate).
    fn reopen(&self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Builds a device from its type, path, description and options (as `sys/audit/:path` takes
/// them); the error is a message safe for the client.
pub type AuditFactory = Arc<
    dyn Fn(&str, &str, &str, &Map<String, Value>) -> Result<Arc<dyn AuditDevice>, String>
        + Send
        + Sync,
>;

/// A device enabled through the API, as persisted.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct DynamicDevice {
    path: String,
    kind: String,
    description: String,
    options: Map<String, Value>,
    local: bool,
}

const DEVICES_KEY: &str = "devices";

/// Request fields written in clear: the names and lifetime of a certificate request.
const CLEAR_REQUEST: &[&str] = &[
    "common_name",
    "alt_names",
    "ip_sans",
    "uri_sans",
    "ttl",
    "format",
    "key_type",
    "key_bits",
    "role",
    "serial_number",
];
/// Response fields written in clear.
const CLEAR_RESPONSE: &[&str] = &[
    "serial_number",
    "expiration",
    "not_before",
    "private_key_type",
    "revocation_time",
    "revocation_time_rfc3339",
    "state",
];

struct Enabled {
    device: Arc<dyn AuditDevice>,
    salt: hmac::Key,
}

/// The broker.
#[derive(Default)]
pub struct AuditBroker {
    /// Declared in the configuration.
    devices: Vec<Arc<dyn AuditDevice>>,
    /// Enabled through the API (`unsafe_allow_api_audit_creation`), with their configuration.
    dynamic: RwLock<Vec<(DynamicDevice, Arc<dyn AuditDevice>)>>,
    enabled: RwLock<Vec<Arc<Enabled>>>,
    factory: Option<AuditFactory>,
    allow_api: bool,
    view: RwLock<Option<StorageView>>,
    /// Serialises enable/disable.
    change: tokio::sync::Mutex<()>,
}

fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let base = crate::token::rfc3339(d.as_secs());
    format!("{}.{:09}Z", base.trim_end_matches('Z'), d.subsec_nanos())
}

impl AuditBroker {
    /// A broker for the devices the configuration declares.
    pub fn new(devices: Vec<Arc<dyn AuditDevice>>) -> Self {
        AuditBroker {
            devices,
            ..Default::default()
        }
    }

    /// Allows `sys/audit/:path` to enable and disable devices built by `factory`.
    pub fn with_api(mut self, factory: Option<AuditFactory>, allow: bool) -> Self {
        self.factory = factory;
        self.allow_api = allow;
        self
    }

    async fn salt_for(view: &StorageView, path: &str) -> CoreResult<hmac::Key> {
        let key = format!("{path}salt");
        let salt = match view.get(&key).await? {
            Some(s) => s,
            None => {
                let mut b = vec![0u8; 32];
                aws_lc_rs::rand::SecureRandom::fill(&aws_lc_rs::rand::SystemRandom::new(), &mut b)
                    .map_err(|_| CoreError::Internal("random number generator failed".into()))?;
                view.put(&key, b.clone()).await?;
                b
            }
        };
        Ok(hmac::Key::new(hmac::HMAC_SHA256, &salt))
    }

    /// Once the barrier is open: loads (or creates) each device's salt and rebuilds the
    /// devices enabled through the API. A persisted device that cannot be rebuilt fails the
    /// unseal, as in Vault: requests must not go unrecorded.
    pub async fn setup(&self, view: StorageView) -> CoreResult<()> {
        let mut enabled = Vec::new();
        for d in &self.devices {
            enabled.push(Arc::new(Enabled {
                device: d.clone(),
                salt: Self::salt_for(&view, d.path()).await?,
            }));
        }
        let table: Vec<DynamicDevice> = view.get_json(DEVICES_KEY).await?.unwrap_or_default();
        let mut dynamic = Vec::new();
        for cfg in table {
            let factory = self.factory.as_ref().ok_or_else(|| {
                CoreError::Internal("audit devices are stored but no factory is set".into())
            })?;
            let device =
                factory(&cfg.kind, &cfg.path, &cfg.description, &cfg.options).map_err(|e| {
                    CoreError::Internal(format!("cannot set up audit device {}: {e}", cfg.path))
                })?;
            enabled.push(Arc::new(Enabled {
                device: device.clone(),
                salt: Self::salt_for(&view, device.path()).await?,
            }));
            dynamic.push((cfg, device));
        }
        if let Ok(mut d) = self.dynamic.write() {
            *d = dynamic;
        }
        if let Ok(mut e) = self.enabled.write() {
            *e = enabled;
        }
        if let Ok(mut v) = self.view.write() {
            *v = Some(view);
        }
        Ok(())
    }

    /// Forgets the salts (on seal).
    pub fn teardown(&self) {
        if let Ok(mut e) = self.enabled.write() {
            e.clear();
        }
        if let Ok(mut d) = self.dynamic.write() {
            d.clear();
        }
        if let Ok(mut v) = self.view.write() {
            *v = None;
        }
    }

    /// `sys/audit/:path` (write): refused unless the configuration allows it; a device that
    /// cannot be opened is never enabled, and nothing is stored.
    pub async fn enable(
        &self,
        path: &str,
        kind: &str,
        description: &str,
        options: Map<String, Value>,
        local: bool,
    ) -> CoreResult<()> {
        if !self.allow_api {
            return Err(CoreError::bad(
                "cannot enable audit device via API; use declarative, config-based audit device management instead",
            ));
        }
        let factory = self
            .factory
            .clone()
            .ok_or_else(|| CoreError::bad("audit devices cannot be created on this server"))?;
        let path = format!("{}/", path.trim_matches('/'));
        if path == "/" {
            return Err(CoreError::bad("missing audit device path"));
        }
        let _guard = self.change.lock().await;
        let view = self
            .view
            .read()
            .ok()
            .and_then(|v| v.clone())
            .ok_or(CoreError::Sealed)?;
        let in_use = self.devices.iter().any(|d| d.path() == path)
            || self
                .dynamic
                .read()
                .map(|d| d.iter().any(|(c, _)| c.path == path))
                .unwrap_or(false);
        if in_use {
            return Err(CoreError::bad(format!("path already in use: {path}")));
        }
        let device = factory(kind, &path, description, &options)
            .map_err(|e| CoreError::bad(format!("failed to enable audit device {path}: {e}")))?;
        let cfg = DynamicDevice {
            path: path.clone(),
            kind: kind.to_string(),
            description: description.to_string(),
            options,
            local,
        };
        // The stored table, under the storage's cluster-wide lock: another node sharing the
        // storage may have changed it a moment ago.
        let _cluster = view.lock(DEVICES_KEY).await?;
        let mut table: Vec<DynamicDevice> = view.get_json(DEVICES_KEY).await?.unwrap_or_default();
        if table.iter().any(|c| c.path == path) {
            return Err(CoreError::bad(format!("path already in use: {path}")));
        }
        table.push(cfg.clone());
        let salt = Self::salt_for(&view, &path).await?;
        view.put_json(DEVICES_KEY, &table).await?;
        if let Ok(mut d) = self.dynamic.write() {
            d.push((cfg, device.clone()));
        }
        if let Ok(mut e) = self.enabled.write() {
            e.push(Arc::new(Enabled { device, salt }));
        }
        Ok(())
    }

    /// `sys/audit/:path` (delete). Devices from the configuration stay.
    pub async fn disable(&self, path: &str) -> CoreResult<()> {
        let path = format!("{}/", path.trim_matches('/'));
        if self.devices.iter().any(|d| d.path() == path) {
            return Err(CoreError::bad(format!(
                "audit device {path} is declared in the server configuration; remove it there"
            )));
        }
        let known = self
            .dynamic
            .read()
            .map(|d| d.iter().any(|(c, _)| c.path == path))
            .unwrap_or(false);
        if !known {
            // Disabling what is not enabled succeeds, as in OpenBao.
            return Ok(());
        }
        let _guard = self.change.lock().await;
        let view = self
            .view
            .read()
            .ok()
            .and_then(|v| v.clone())
            .ok_or(CoreError::Sealed)?;
        let _cluster = view.lock(DEVICES_KEY).await?;
        let mut table: Vec<DynamicDevice> = view.get_json(DEVICES_KEY).await?.unwrap_or_default();
        table.retain(|c| c.path != path);
        view.put_json(DEVICES_KEY, &table).await?;
        view.delete(&format!("{path}salt")).await?;
        if let Ok(mut d) = self.dynamic.write() {
            d.retain(|(c, _)| c.path != path);
        }
        if let Ok(mut e) = self.enabled.write() {
            e.retain(|x| x.device.path() != path);
        }
        Ok(())
    }

    /// Reopens every device (SIGHUP); returns the errors, device by device.
    pub fn reopen_all(&self) -> Vec<(String, std::io::Error)> {
        let mut errors = Vec::new();
        for e in self.current() {
            if let Err(err) = e.device.reopen() {
                errors.push((e.device.path().to_string(), err));
            }
        }
        errors
    }

    fn current(&self) -> Vec<Arc<Enabled>> {
        self.enabled.read().map(|e| e.clone()).unwrap_or_default()
    }

    /// Whether any device is enabled.
    pub fn active(&self) -> bool {
        !self.devices.is_empty() || self.dynamic.read().map(|d| !d.is_empty()).unwrap_or(true)
    }

    /// `sys/audit` listing.
    pub fn list(&self) -> Map<String, Value> {
        let mut out: Map<String, Value> = self
            .devices
            .iter()
            .map(|d| {
                (
                    d.path().to_string(),
                    json!({"type": d.kind(), "description": d.description(), "options": d.options(), "local": false, "path": d.path()}),
                )
            })
            .collect();
        if let Ok(d) = self.dynamic.read() {
            for (c, dev) in d.iter() {
                out.insert(
                    c.path.clone(),
                    json!({"type": c.kind, "description": c.description, "options": dev.options(), "local": c.local, "path": c.path}),
                );
            }
        }
        out
    }

    /// `sys/audit-hash/:path`.
    pub fn hash(&self, path: &str, input: &str) -> CoreResult<String> {
        let want = format!("{}/", path.trim_matches('/'));
        self.current()
            .iter()
            .find(|e| e.device.path() == want)
            .map(|e| hmac_str(&e.salt, input))
            .ok_or_else(|| CoreError::bad(format!("unknown audit backend {path}")))
    }

    fn write_all(&self, build: impl Fn(&Enabled) -> Value) -> CoreResult<()> {
        let devices = self.current();
        if devices.is_empty() {
            if !self.devices.is_empty() {
                return Err(CoreError::Internal(
                    "audit devices are configured but not ready".into(),
                ));
            }
            return Ok(());
        }
        let mut ok = false;
        for e in &devices {
            let mut line = serde_json::to_vec(&build(e)).unwrap_or_default();
            line.push(b'\n');
            match e.device.write(&line) {
                Ok(()) => ok = true,
                Err(err) => {
                    tracing::error!(device = %e.device.path(), error = %err, "audit device failed")
                }
            }
        }
        if ok {
            Ok(())
        } else {
            Err(CoreError::Status(500, vec!["internal error: no audit device could record the request; it was not processed".into()]))
        }
    }

    /// Records a request before the engine runs.
    pub fn log_request(
        &self,
        meta: &RequestMeta,
        op: Operation,
        path: &str,
        mount_type: &str,
        data: &Map<String, Value>,
    ) -> CoreResult<()> {
        self.write_all(|e| {
            json!({
                "time": now_rfc3339(),
                "type": "request",
                "auth": auth_json(e, meta),
                "request": request_json(e, meta, op, path, mount_type, data),
            })
        })
    }

    /// Records the response (or error) after the engine ran.
    pub fn log_response(
        &self,
        meta: &RequestMeta,
        op: Operation,
        path: &str,
        mount_type: &str,
        data: &Map<String, Value>,
        result: &CoreResult<Option<Response>>,
    ) -> CoreResult<()> {
        self.write_all(|e| {
            let mut entry = json!({
                "time": now_rfc3339(),
                "type": "response",
                "auth": auth_json(e, meta),
                "request": request_json(e, meta, op, path, mount_type, data),
            });
            match result {
                Ok(Some(r)) => {
                    entry["response"] = response_json(e, r);
                }
                Ok(None) => {}
                Err(err) => {
                    entry["error"] = json!(err.to_string());
                }
            }
            entry
        })
    }
}

fn hmac_str(salt: &hmac::Key, v: &str) -> String {
    format!(
        "hmac-sha256:{}",
        hex::encode(hmac::sign(salt, v.as_bytes()).as_ref())
    )
}

fn hash_value(e: &Enabled, v: &Value) -> Value {
    if e.device.log_raw() {
        return v.clone();
    }
    match v {
        Value::String(s) => Value::String(hmac_str(&e.salt, s)),
        Value::Array(a) => Value::Array(a.iter().map(|x| hash_value(e, x)).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), hash_value(e, x)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn hash_map(e: &Enabled, m: &Map<String, Value>, clear: &[&str]) -> Map<String, Value> {
    m.iter()
        .map(|(k, v)| {
            if clear.contains(&k.as_str()) {
                (k.clone(), v.clone())
            } else {
                (k.clone(), hash_value(e, v))
            }
        })
        .collect()
}

fn accessor(e: &Enabled, a: &str) -> String {
    if e.device.hmac_accessor() && !e.device.log_raw() {
        hmac_str(&e.salt, a)
    } else {
        a.to_string()
    }
}

fn auth_json(e: &Enabled, meta: &RequestMeta) -> Value {
    match &meta.token {
        None => json!({}),
        Some(t) => json!({
            "client_token": meta.token_id.as_ref().map(|t| hmac_str(&e.salt, t.expose_secret())).unwrap_or_default(),
            "accessor": accessor(e, &t.accessor),
            "display_name": t.display_name,
            "policies": t.policies,
            "token_policies": t.policies,
            "metadata": t.meta,
            "token_type": "service",
        }),
    }
}

fn request_json(
    e: &Enabled,
    meta: &RequestMeta,
    op: Operation,
    path: &str,
    mount_type: &str,
    data: &Map<String, Value>,
) -> Value {
    json!({
        "id": meta.id,
        "operation": op.as_str(),
        "mount_type": mount_type,
        "path": path,
        "data": if data.is_empty() { Value::Null } else { Value::Object(hash_map(e, data, CLEAR_REQUEST)) },
        "remote_address": meta.remote_addr.map(|a| a.ip().to_string()).unwrap_or_default(),
        "client_token_accessor": meta.token.as_ref().map(|t| accessor(e, &t.accessor)).unwrap_or_default(),
    })
}

fn response_json(e: &Enabled, r: &Response) -> Value {
    let mut out = Map::new();
    if let Some(d) = &r.data {
        out.insert("data".into(), Value::Object(hash_map(e, d, CLEAR_RESPONSE)));
        // Certificates stay searchable: their public facts in clear.
        let mut certs = Vec::new();
        for key in ["certificate", "issuing_ca"] {
            if let Some(Value::String(pem)) = d.get(key) {
                if let Some(info) = cert_summary(pem) {
                    certs.push(info);
                }
            }
        }
        if !certs.is_empty() {
            out.insert("certificates".into(), Value::Array(certs));
        }
    }
    if let Some(a) = &r.auth {
        let mut auth = a.clone();
        if let Value::Object(m) = &mut auth {
            if let Some(Value::String(t)) = m.get("client_token") {
                let h = hmac_str(&e.salt, t);
                m.insert("client_token".into(), Value::String(h));
            }
            if let Some(Value::String(acc)) = m.get("accessor") {
                let h = accessor(e, acc);
                m.insert("accessor".into(), Value::String(h));
            }
        }
        out.insert("auth".into(), auth);
    }
    if !r.warnings.is_empty() {
        out.insert("warnings".into(), json!(r.warnings));
    }
    Value::Object(out)
}

fn cert_summary(pem: &str) -> Option<Value> {
    use base64::Engine as _;
    let first = pem.split("-----END CERTIFICATE-----").next()?;
    let body: String = first.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .ok()?;
    let info = signet_crypto::x509::cert_info(&der).ok()?;
    Some(json!({
        "serial_number": info.serial,
        "common_name": info.common_name,
        "dns_names": info.dns,
        "not_after": crate::token::rfc3339(info.not_after.max(0) as u64),
        "is_ca": info.is_ca,
    }))
}
