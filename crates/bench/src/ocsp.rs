//! A DER OCSPRequest (RFC 6960 section 4.1.1) for one certificate, built by hand: the structure
//! is fixed and small, and no maintained crate builds requests. SHA-1 CertID (what `openssl
//! ocsp` and most clients send), no nonce, no signature.
//!
//! ```text
//! OCSPRequest ::= SEQUENCE { tbsRequest TBSRequest }
//! TBSRequest  ::= SEQUENCE { requestList SEQUENCE OF Request }
//! Request     ::= SEQUENCE { reqCert CertID }
//! CertID      ::= SEQUENCE { hashAlgorithm AlgorithmIdentifier, issuerNameHash OCTET STRING,
//!                            issuerKeyHash OCTET STRING, serialNumber INTEGER }
//! ```

use anyhow::{anyhow, Context};
use aws_lc_rs::digest;
use x509_parser::prelude::{FromDer, X509Certificate};

/// id-sha1 (1.3.14.3.2.26).
const OID_SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];

/// DER length octets.
fn len(n: usize) -> Vec<u8> {
    if n < 0x80 {
        return vec![n as u8];
    }
    let bytes: Vec<u8> = n
        .to_be_bytes()
        .iter()
        .copied()
        .skip_while(|b| *b == 0)
        .collect();
    let mut out = vec![0x80 | bytes.len() as u8];
    out.extend(bytes);
    out
}

/// One TLV.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend(len(content.len()));
    out.extend_from_slice(content);
    out
}

fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

/// A positive INTEGER from big-endian magnitude bytes (leading zeros dropped, a zero octet
/// added when the high bit is set).
fn integer(magnitude: &[u8]) -> Vec<u8> {
    let mut m: Vec<u8> = magnitude.iter().copied().skip_while(|b| *b == 0).collect();
    if m.is_empty() {
        m.push(0);
    } else if m[0] & 0x80 != 0 {
        m.insert(0, 0);
    }
    tlv(0x02, &m)
}

/// Serial bytes from Vault's `aa:bb:cc` form (colons or dashes optional).
pub fn serial_bytes(serial: &str) -> anyhow::Result<Vec<u8>> {
    let hex: String = serial.chars().filter(|c| *c != ':' && *c != '-').collect();
    if hex.is_empty() || hex.len() & 1 == 1 {
        return Err(anyhow!("bad serial number {serial:?}"));
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&hex[i..i + 2], 16)
                .map_err(|_| anyhow!("bad serial number {serial:?}"))
        })
        .collect()
}

/// The OCSPRequest asking about `serial`, issued by the certificate `issuer_der`.
pub fn request(issuer_der: &[u8], serial: &[u8]) -> anyhow::Result<Vec<u8>> {
    let (_, issuer) =
        X509Certificate::from_der(issuer_der).context("cannot parse the issuer certificate")?;
    let name_hash = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, issuer.subject().as_raw());
    let key_hash = digest::digest(
        &digest::SHA1_FOR_LEGACY_USE_ONLY,
        &issuer.public_key().subject_public_key.data,
    );
    let cert_id = seq(&[
        seq(&[tlv(0x06, OID_SHA1), vec![0x05, 0x00]]),
        tlv(0x04, name_hash.as_ref()),
        tlv(0x04, key_hash.as_ref()),
        integer(serial),
    ]);
    let request = seq(&[cert_id]);
    let request_list = seq(&[request]);
    let tbs = seq(&[request_list]);
    Ok(seq(&[tbs]))
}

/// The responseStatus of a DER OCSPResponse (0 = successful), if it is one.
pub fn response_status(der: &[u8]) -> Option<u8> {
    if *der.first()? != 0x30 {
        return None;
    }
    let l = *der.get(1)?;
    let header = if l < 0x80 {
        2
    } else {
        2 + usize::from(l & 0x7f)
    };
    match der.get(header..header + 3)? {
        [0x0a, 0x01, status] => Some(*status),
        _ => None,
    }
}

/// The DER of the first certificate in a PEM string.
pub fn pem_to_der(pem: &str) -> anyhow::Result<Vec<u8>> {
    let (_, p) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .map_err(|e| anyhow!("cannot read PEM: {e}"))?;
    Ok(p.contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca() -> (Vec<u8>, String) {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Bench Test Root");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).unwrap();
        (cert.der().to_vec(), cert.pem())
    }

    #[test]
    fn integers_and_lengths() {
        assert_eq!(integer(&[0x01]), vec![0x02, 0x01, 0x01]);
        assert_eq!(integer(&[0x00, 0x00, 0x7f]), vec![0x02, 0x01, 0x7f]);
        assert_eq!(integer(&[0x80]), vec![0x02, 0x02, 0x00, 0x80]);
        assert_eq!(integer(&[]), vec![0x02, 0x01, 0x00]);
        assert_eq!(len(0x7f), vec![0x7f]);
        assert_eq!(len(0x80), vec![0x81, 0x80]);
        assert_eq!(len(0x1234), vec![0x82, 0x12, 0x34]);
        assert_eq!(serial_bytes("0a:ff:10").unwrap(), vec![0x0a, 0xff, 0x10]);
        assert_eq!(serial_bytes("0a-ff").unwrap(), vec![0x0a, 0xff]);
        assert!(serial_bytes("0a:f").is_err());
        assert!(serial_bytes("zz").is_err());
    }

    #[test]
    fn response_statuses() {
        // OCSPResponse { responseStatus successful, responseBytes ... } with a long length.
        let mut ok = vec![0x30, 0x82, 0x01, 0x00, 0x0a, 0x01, 0x00];
        ok.extend([0u8; 253]);
        assert_eq!(response_status(&ok), Some(0));
        // unauthorized (6), short form, no responseBytes.
        assert_eq!(response_status(&[0x30, 0x03, 0x0a, 0x01, 0x06]), Some(6));
        assert_eq!(response_status(b"<html>"), None);
        assert_eq!(response_status(&[]), None);
        assert_eq!(response_status(&[0x30, 0x03, 0x02, 0x01, 0x00]), None);
    }

    #[test]
    fn signet_parser_reads_it_and_matches_the_issuer() {
        let (der, pem) = ca();
        assert_eq!(pem_to_der(&pem).unwrap(), der);
        let serial =
            serial_bytes("8f:01:02:03:04:05:06:07:08:09:0a:0b:0c:0d:0e:0f:10:11:12:13").unwrap();
        let req = request(&der, &serial).unwrap();
        let parsed = signet_crypto::ocsp::parse_request(&req).unwrap();
        assert_eq!(parsed.queries.len(), 1);
        let q = &parsed.queries[0];
        assert_eq!(q.hash_oid, OID_SHA1);
        assert_eq!(q.serial, serial);
        assert!(signet_crypto::ocsp::query_is_for(q, &der));
        assert!(parsed.nonce.is_none());
    }

    /// `openssl ocsp -reqin x.der -req_text` reads the request and shows the same CertID
    /// (skipped when openssl is not installed).
    #[test]
    fn openssl_reads_it() {
        if std::process::Command::new("openssl")
            .arg("version")
            .output()
            .is_err()
        {
            return;
        }
        let (der, _) = ca();
        let req = request(&der, &[0x01, 0xab, 0xcd]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("req.der");
        std::fs::write(&path, &req).unwrap();
        let out = std::process::Command::new("openssl")
            .args(["ocsp", "-reqin"])
            .arg(&path)
            .arg("-req_text")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("Hash Algorithm: sha1"), "{text}");
        assert!(text.contains("Serial Number: 01ABCD"), "{text}");
        let name_hash = digest::digest(
            &digest::SHA1_FOR_LEGACY_USE_ONLY,
            X509Certificate::from_der(&der)
                .unwrap()
                .1
                .subject()
                .as_raw(),
        );
        let hex: String = name_hash
            .as_ref()
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect();
        assert!(text.contains(&format!("Issuer Name Hash: {hex}")), "{text}");
    }
}
