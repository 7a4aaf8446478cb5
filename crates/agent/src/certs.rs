//! Certificate blocks: one issuance (or, with `csr = true`, a key generated here and a CSR
//! signed by the CA, so the key never crosses the network) written to all its files as one
//! set, then `on_change` or a reload signal.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};
use signet_client::Client;
use signet_crypto::x509::{self, CertSpec, KeyType};
use zeroize::Zeroizing;

use crate::config::CertBlock;
use crate::Failure;

/// What the CA gave back.
pub struct Issued {
    pub certificate: String,
    pub private_key: Zeroizing<String>,
    pub issuing_ca: String,
    pub ca_chain: Vec<String>,
    pub not_before: i64,
    pub not_after: i64,
    pub serial: String,
}

/// The validity of a certificate already on disk whose key (when a key file is configured)
/// matches it: the agent keeps it rather than re-issuing on restart.
pub fn existing(block: &CertBlock) -> Option<(i64, i64, String)> {
    let cert_path = block.cert_file.as_ref().or(block.bundle_file.as_ref())?;
    let pem = std::fs::read_to_string(cert_path).ok()?;
    let (certs, bundled_key) = x509::split_bundle(&pem).ok()?;
    let first = certs.first()?;
    let key = match &block.key_file {
        Some(k) => Zeroizing::new(std::fs::read_to_string(k).ok()?),
        None => Zeroizing::new(bundled_key?),
    };
    if !x509::key_matches_cert(&key, first).ok()? {
        return None;
    }
    let info = x509::cert_info(first).ok()?;
    Some((info.not_before, info.not_after, info.serial))
}

fn pem_trim(s: &str) -> String {
    format!("{}\n", s.trim_end())
}

/// Asks the CA for a certificate.
pub async fn issue(client: &Client, block: &CertBlock) -> Result<Issued, Failure> {
    let mut body = json!({
        "common_name": block.common_name,
        "alt_names": block.alt_names.join(","),
        "ip_sans": block.ip_sans.join(","),
        "uri_sans": block.uri_sans.join(","),
    });
    if let Some(t) = &block.ttl {
        body["ttl"] = json!(t);
    }
    let mut local_key = None;
    if block.csr {
        let kt = KeyType::parse(&block.key_type, block.key_bits).map_err(|e| e.to_string())?;
        let key = x509::generate_key(kt).map_err(|e| e.to_string())?;
        let spec = CertSpec {
            common_name: block.common_name.clone(),
            dns: block.alt_names.clone(),
            uris: block.uri_sans.clone(),
            ips: block
                .ip_sans
                .iter()
                .filter_map(|i| i.parse().ok())
                .collect(),
            ..Default::default()
        };
        body["csr"] = json!(x509::csr_pem(&spec, &key).map_err(|e| e.to_string())?);
        local_key = Some(Zeroizing::new(
            x509::export_private_key(&key.serialize_pem(), false, false)
                .map_err(|e| e.to_string())?,
        ));
    }
    let resp = client
        .write(&block.path, &body)
        .await
        .map_err(|e| Failure::api("", e))?
        .ok_or("the CA answered without a certificate")?;
    let d = resp.get("data").cloned().unwrap_or(Value::Null);
    let s = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let certificate = s("certificate");
    if certificate.is_empty() {
        return Err(Failure::transient("the CA answered without a certificate"));
    }
    let private_key = match local_key {
        Some(k) => k,
        None => {
            let k = s("private_key");
            if k.is_empty() {
                return Err(format!(
                    "{} returned no private key: use an issue/ path, or csr = true with a sign/ path",
                    block.path
                )
                .into());
            }
            Zeroizing::new(k)
        }
    };
    let (certs, _) = x509::split_bundle(&certificate).map_err(|e| e.to_string())?;
    let first = certs.first().ok_or("the certificate could not be read")?;
    let info = x509::cert_info(first).map_err(|e| e.to_string())?;
    let ca_chain: Vec<String> = d
        .get("ca_chain")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    Ok(Issued {
        certificate,
        private_key,
        issuing_ca: s("issuing_ca"),
        ca_chain,
        not_before: info.not_before,
        not_after: info.not_after,
        serial: info.serial,
    })
}

/// The files of a block and their contents: `cert_file` the leaf, `key_file` the key,
/// `chain_file` the leaf followed by the chain above it, `ca_file` the top of the chain (the
/// root when the CA returns it, else the issuing CA), `bundle_file` leaf + chain + key.
pub fn contents(block: &CertBlock, i: &Issued) -> Vec<(PathBuf, Vec<u8>)> {
    let chain: Vec<String> = if i.ca_chain.is_empty() {
        vec![i.issuing_ca.clone()]
    } else {
        i.ca_chain.clone()
    };
    let chain_pem: String = chain.iter().map(|c| pem_trim(c)).collect();
    let mut out = Vec::new();
    if let Some(p) = &block.cert_file {
        out.push((p.clone(), pem_trim(&i.certificate).into_bytes()));
    }
    if let Some(p) = &block.key_file {
        out.push((p.clone(), pem_trim(&i.private_key).into_bytes()));
    }
    if let Some(p) = &block.chain_file {
        out.push((
            p.clone(),
            format!("{}{chain_pem}", pem_trim(&i.certificate)).into_bytes(),
        ));
    }
    if let Some(p) = &block.ca_file {
        let top = chain.last().cloned().unwrap_or_default();
        out.push((p.clone(), pem_trim(&top).into_bytes()));
    }
    if let Some(p) = &block.bundle_file {
        out.push((
            p.clone(),
            format!(
                "{}{chain_pem}{}",
                pem_trim(&i.certificate),
                pem_trim(&i.private_key)
            )
            .into_bytes(),
        ));
    }
    out
}

/// Runs `on_change` (argv, no shell) and sends `reload_signal`, after the files changed.
pub async fn notify(block: &CertBlock) {
    if let Some((prog, args)) = block.on_change.split_first() {
        let run = tokio::process::Command::new(prog)
            .args(args)
            .kill_on_drop(true)
            .status();
        match tokio::time::timeout(Duration::from_secs(60), run).await {
            Ok(Ok(st)) if st.success() => {
                tracing::info!(certificate = %block.name, "on_change ran");
            }
            Ok(Ok(st)) => {
                tracing::error!(certificate = %block.name, status = %st, "on_change failed")
            }
            Ok(Err(e)) => {
                tracing::error!(certificate = %block.name, error = %e, "on_change could not start")
            }
            Err(_) => tracing::error!(certificate = %block.name, "on_change timed out after 60s"),
        }
    }
    if let (Some(sig), Some(pid_file)) = (&block.reload_signal, &block.signal_pid_file) {
        let pid = std::fs::read_to_string(pid_file).map(|p| p.trim().to_string());
        match pid {
            Ok(pid) if pid.parse::<u32>().is_ok() => {
                let sig = sig.trim_start_matches("SIG");
                let st = tokio::process::Command::new("kill")
                    .args([format!("-{sig}"), pid.clone()])
                    .status()
                    .await;
                match st {
                    Ok(s) if s.success() => {
                        tracing::info!(certificate = %block.name, pid = %pid, signal = %sig, "reload signal sent")
                    }
                    _ => {
                        tracing::error!(certificate = %block.name, pid = %pid, "could not send the reload signal")
                    }
                }
            }
            _ => {
                tracing::error!(certificate = %block.name, pid_file = %pid_file.display(), "no process id to signal")
            }
        }
    }
}
