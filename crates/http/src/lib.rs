//! signet's HTTP layer.
//!
//! [`router`] turns every `/v1/<path>` request into a core [`Request`]: the method becomes an
//! operation (`GET ?list=true` and `LIST` are lists, `?help=1` is help, POST/PUT are writes the
//! core splits into create/update), the token comes from `X-Vault-Token` or
//! `Authorization: Bearer`, the body is JSON or form-encoded and capped at
//! `max_request_size` (413 past it), query parameters join the data on reads. The answer is the
//! Vault envelope or `{"errors": [...]}`. [`status_of`] is THE one place where an error becomes
//! a status code. [`serve`] runs a listener, plain or TLS, with graceful shutdown.

mod listener;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, Method as HttpMethod, StatusCode};
use axum::response::{IntoResponse, Response as HttpResponse};
use axum::Router;
use percent_encoding::percent_decode_str;
use serde_json::{Map, Value};
use signet_core::{Core, CoreError, Method, Request, Response};
use signet_types::{Envelope, ErrorBody, Secret};

pub use listener::{serve, tls_config, ListenerError, PeerCertificates};

/// Vault's default `max_request_size`: 32 MiB.
pub const DEFAULT_MAX_REQUEST_SIZE: usize = 32 * 1024 * 1024;

/// Per-listener HTTP options.
#[derive(Debug, Clone, Copy)]
pub struct HttpOptions {
    pub max_request_size: usize,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            max_request_size: DEFAULT_MAX_REQUEST_SIZE,
        }
    }
}

#[derive(Clone)]
struct AppState {
    core: Arc<Core>,
    opts: HttpOptions,
}

/// The router for one listener.
pub fn router(core: Arc<Core>, opts: HttpOptions) -> Router {
    Router::new()
        .fallback(handle)
        .with_state(AppState { core, opts })
}

/// The status code for a core error — the only such mapping in signet.
pub fn status_of(e: &CoreError) -> StatusCode {
    match e {
        CoreError::NotFound | CoreError::NoRoute(_) => StatusCode::NOT_FOUND,
        CoreError::PermissionDenied | CoreError::AclDenied => StatusCode::FORBIDDEN,
        CoreError::BadRequest(_) => StatusCode::BAD_REQUEST,
        CoreError::UnsupportedOperation => StatusCode::METHOD_NOT_ALLOWED,
        CoreError::Sealed => StatusCode::SERVICE_UNAVAILABLE,
        CoreError::Status(code, _) => {
            StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        }
        CoreError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn error_messages(e: &CoreError) -> Vec<String> {
    match e {
        CoreError::NotFound => vec![],
        CoreError::UnsupportedOperation => {
            vec!["1 error occurred:\n\t* unsupported operation\n\n".into()]
        }
        CoreError::Status(_, msgs) => msgs.clone(),
        CoreError::Internal(_) => vec!["internal error".into()],
        other => vec![other.to_string()],
    }
}

fn json_response(status: StatusCode, body: Vec<u8>) -> HttpResponse {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn error_response(status: StatusCode, errors: Vec<String>) -> HttpResponse {
    let body = serde_json::to_vec(&ErrorBody { errors }).unwrap_or_default();
    json_response(status, body)
}

fn core_error_response(e: &CoreError, request_id: &str) -> HttpResponse {
    if let CoreError::Internal(detail) = e {
        tracing::error!(request_id, error = %detail, "request failed");
    }
    error_response(status_of(e), error_messages(e))
}

fn envelope_response(request_id: String, resp: Response) -> HttpResponse {
    if let Some(raw) = resp.raw {
        let status = StatusCode::from_u16(raw.status).unwrap_or(StatusCode::OK);
        let mut r = (status, raw.body).into_response();
        if let Ok(ct) = HeaderValue::from_str(&raw.content_type) {
            r.headers_mut().insert(header::CONTENT_TYPE, ct);
        }
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return r;
    }
    let lease = resp.lease.unwrap_or_default();
    let env = Envelope {
        request_id,
        lease_id: lease.lease_id,
        renewable: lease.renewable,
        lease_duration: lease.duration,
        data: resp.data.clone(),
        wrap_info: None,
        warnings: if resp.warnings.is_empty() {
            None
        } else {
            Some(resp.warnings)
        },
        auth: resp.auth,
    };
    let body = if resp.data_at_top_level {
        let mut top: Map<String, Value> = resp.data.unwrap_or_default();
        if let Ok(Value::Object(e)) = serde_json::to_value(&env) {
            for (k, v) in e {
                top.insert(k, v);
            }
        }
        serde_json::to_vec(&top)
    } else {
        serde_json::to_vec(&env)
    };
    match body {
        Ok(b) => json_response(StatusCode::OK, b),
        Err(e) => core_error_response(&CoreError::Internal(e.to_string()), &env.request_id),
    }
}

fn token_from(headers: &HeaderMap) -> Option<Secret<String>> {
    if let Some(v) = headers.get("x-vault-token").and_then(|v| v.to_str().ok()) {
        if !v.is_empty() {
            return Some(Secret::new(v.to_string()));
        }
    }
    let auth = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let t = auth
        .strip_prefix("Bearer ")
        .or_else(|| auth.strip_prefix("bearer "))?
        .trim();
    (!t.is_empty()).then(|| Secret::new(t.to_string()))
}

/// Go's `url.ParseQuery` rejects a `%` not followed by two hex digits; so do we.
fn valid_escapes(s: &[u8]) -> bool {
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            if i + 2 >= s.len() || !(s[i + 1].is_ascii_hexdigit() && s[i + 2].is_ascii_hexdigit()) {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

/// Go's answer to a request line it cannot parse.
fn plain_bad_request() -> HttpResponse {
    let mut r = (StatusCode::BAD_REQUEST, "400 Bad Request").into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

/// The cleaned form of a path with `.`, `..` or empty segments (Go's `path.Clean`, keeping a
/// trailing slash as `http.ServeMux` does); `None` when the path is already clean.
fn cleaned(path: &str) -> Option<String> {
    let segs: Vec<&str> = path.split('/').skip(1).collect();
    let last = segs.len().saturating_sub(1);
    let dirty = segs
        .iter()
        .enumerate()
        .any(|(i, s)| *s == "." || *s == ".." || (s.is_empty() && i != last));
    if !dirty {
        return None;
    }
    let mut out: Vec<&str> = Vec::new();
    for s in &segs {
        match *s {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    let mut clean = format!("/{}", out.join("/"));
    if path.ends_with('/') && clean != "/" {
        clean.push('/');
    }
    Some(clean)
}

fn query_pairs(query: Option<&str>) -> Result<Vec<(String, String)>, String> {
    match query {
        None | Some("") => Ok(Vec::new()),
        Some(q) if !valid_escapes(q.as_bytes()) => {
            Err("failed to parse query string: invalid URL escape".into())
        }
        Some(q) => serde_urlencoded::from_str::<Vec<(String, String)>>(q)
            .map_err(|e| format!("failed to parse query string: {e}")),
    }
}

fn pairs_to_map(pairs: Vec<(String, String)>) -> Map<String, Value> {
    let mut m: Map<String, Value> = Map::new();
    for (k, v) in pairs {
        match m.get_mut(&k) {
            None => {
                m.insert(k, Value::String(v));
            }
            Some(Value::Array(a)) => a.push(Value::String(v)),
            Some(existing) => {
                let prev = existing.take();
                *existing = Value::Array(vec![prev, Value::String(v)]);
            }
        }
    }
    m
}

fn parse_body(headers: &HeaderMap, body: &[u8]) -> Result<Map<String, Value>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    // Like Vault, a form content type with a JSON-looking body is read as JSON (curl -d sends
    // the form type by default).
    let looks_json = body
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{' || *b == b'[');
    if ct.starts_with("application/x-www-form-urlencoded") && !looks_json {
        // OpenBao's message, whatever went wrong in the form.
        if !valid_escapes(body) {
            return Err("error parsing form data".into());
        }
        let pairs = serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
            .map_err(|_| "error parsing form data".to_string())?;
        // A repeated form field is joined with commas, as OpenBao does.
        let mut m: Map<String, Value> = Map::new();
        for (k, v) in pairs {
            match m.get_mut(&k) {
                Some(Value::String(prev)) => {
                    prev.push(',');
                    prev.push_str(&v);
                }
                _ => {
                    m.insert(k, Value::String(v));
                }
            }
        }
        return Ok(m);
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(Value::Null) => Ok(Map::new()),
        Ok(other) => Err(format!(
            "failed to decode JSON input: json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            match other {
                Value::Array(_) => "array",
                Value::String(_) => "string",
                Value::Number(_) => "number",
                _ => "bool",
            }
        )),
        Err(e) => Err(format!("failed to decode JSON input: {e}")),
    }
}

async fn handle(State(app): State<AppState>, req: axum::extract::Request) -> HttpResponse {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let certs = req
        .extensions()
        .get::<PeerCertificates>()
        .map(|c| c.0.clone());
    let started = Instant::now();
    let request_id = uuid::Uuid::new_v4().to_string();
    let (parts, body) = req.into_parts();
    let method_name = parts.method.as_str().to_string();
    let raw_path = parts.uri.path().to_string();
    let resp = handle_inner(&app, peer, certs, parts, body, &request_id).await;
    tracing::debug!(
        request_id,
        method = %method_name,
        path = %raw_path,
        status = resp.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    resp
}

async fn handle_inner(
    app: &AppState,
    remote_addr: Option<SocketAddr>,
    peer_certs: Option<Arc<Vec<Vec<u8>>>>,
    parts: axum::http::request::Parts,
    body: Body,
    request_id: &str,
) -> HttpResponse {
    // What Go's net/http does before OpenBao sees a request: a malformed escape in the path
    // is a plain-text 400, and a path with `.` / `..` segments or `//` is redirected (307) to
    // its cleaned form. Nothing past this point ever sees such a path.
    if !valid_escapes(parts.uri.path().as_bytes()) {
        return plain_bad_request();
    }
    if let Some(clean) = cleaned(parts.uri.path()) {
        let location = match parts.uri.query() {
            Some(q) => format!("{clean}?{q}"),
            None => clean,
        };
        let mut r = StatusCode::TEMPORARY_REDIRECT.into_response();
        if let Ok(v) = HeaderValue::from_str(&location) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        return r;
    }
    let Some(raw) = parts.uri.path().strip_prefix("/v1/") else {
        return error_response(StatusCode::NOT_FOUND, vec![]);
    };
    let path = match percent_decode_str(raw).decode_utf8() {
        Ok(p) => p.into_owned(),
        Err(_) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                vec!["invalid path: not valid UTF-8 after percent-decoding".into()],
            )
        }
    };
    // An encoded `.` or `..` segment (`a%2F..%2Fb`) decodes to a relative path: OpenBao
    // refuses those outright, before anything else, and so does signet.
    if path.split('/').any(|seg| seg == "." || seg == "..") {
        return error_response(
            StatusCode::BAD_REQUEST,
            vec!["relative paths not supported".into()],
        );
    }
    if path.contains('\0') {
        return error_response(
            StatusCode::BAD_REQUEST,
            vec!["invalid path: contains a NUL byte".into()],
        );
    }
    let query = match query_pairs(parts.uri.query()) {
        Ok(q) => q,
        Err(e) => return error_response(StatusCode::BAD_REQUEST, vec![e]),
    };
    // `list` and `help` are Go booleans (strconv.ParseBool); anything else is a 400.
    let mut flags = [false, false];
    for (i, name) in ["list", "help"].iter().enumerate() {
        for (_, v) in query.iter().filter(|(k, _)| k == name) {
            match v.as_str() {
                "1" | "t" | "T" | "true" | "TRUE" | "True" => flags[i] = true,
                "0" | "f" | "F" | "false" | "FALSE" | "False" => {}
                _ => return error_response(StatusCode::BAD_REQUEST, vec![]),
            }
        }
    }
    let flag = |name: &str| if name == "list" { flags[0] } else { flags[1] };
    if let Some(ttl) = parts
        .headers
        .get("x-vault-wrap-ttl")
        .and_then(|v| v.to_str().ok())
    {
        if !ttl.is_empty() && signet_types::duration::parse_duration_str(ttl).is_err() {
            return error_response(
                StatusCode::BAD_REQUEST,
                vec![format!(
                    "error parsing X-Vault-Wrap-TTL header: time: invalid duration {ttl:?}"
                )],
            );
        }
    }
    let is_head = parts.method == HttpMethod::HEAD;
    let method = match parts.method.as_str() {
        "GET" | "HEAD" if flag("help") => Method::Help,
        "GET" | "HEAD" if flag("list") => Method::List,
        "GET" | "HEAD" => Method::Get,
        "LIST" => Method::List,
        "POST" | "PUT" => Method::Write,
        "PATCH" => Method::Patch,
        "DELETE" => Method::Delete,
        "OPTIONS" => {
            return error_response(
                StatusCode::BAD_REQUEST,
                vec!["cannot handle internal-only request operation".into()],
            )
        }
        _ => return error_response(StatusCode::METHOD_NOT_ALLOWED, vec![]),
    };
    if method == Method::Patch {
        let ct = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !ct.starts_with("application/merge-patch+json") {
            return error_response(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                vec![format!(
                    "PATCH requires Content-Type of application/merge-patch+json, provided {ct}"
                )],
            );
        }
    }
    let limit = app.opts.max_request_size;
    if let Some(len) = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
    {
        if len > limit {
            return error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                vec!["http: request body too large".into()],
            );
        }
    }
    let bytes: Bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            return error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                vec!["http: request body too large".into()],
            )
        }
    };
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    // Binary protocol bodies (OCSP) go to the engine as they are.
    let raw_body = (method == Method::Write
        && content_type.starts_with("application/ocsp-request"))
    .then(|| Arc::new(bytes.to_vec()));
    let mut data = match method {
        _ if raw_body.is_some() => Map::new(),
        Method::Write | Method::Patch | Method::Delete => {
            match parse_body(&parts.headers, &bytes) {
                Ok(m) => m,
                Err(e) => return error_response(StatusCode::BAD_REQUEST, vec![e]),
            }
        }
        _ => Map::new(),
    };
    if matches!(
        method,
        Method::Get | Method::List | Method::Delete | Method::Help
    ) {
        for (k, v) in pairs_to_map(query) {
            if k == "list" || k == "help" {
                continue;
            }
            data.entry(k).or_insert(v);
        }
    }
    let mut headers = BTreeMap::new();
    for (name, value) in parts.headers.iter() {
        let n = name.as_str();
        if n == "x-vault-token" || n == "authorization" {
            continue;
        }
        if let Ok(v) = value.to_str() {
            headers.insert(n.to_string(), v.to_string());
        }
    }
    let req = Request {
        id: request_id.to_string(),
        method,
        path,
        data,
        token: token_from(&parts.headers),
        remote_addr,
        headers,
        peer_certs,
        raw_body,
    };
    let mut resp = match app.core.handle(req).await {
        Ok(None) => {
            let mut r = StatusCode::NO_CONTENT.into_response();
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Ok(Some(resp)) => envelope_response(request_id.to_string(), resp),
        Err(e) => core_error_response(&e, request_id),
    };
    if is_head {
        *resp.body_mut() = Body::empty();
    }
    resp
}
