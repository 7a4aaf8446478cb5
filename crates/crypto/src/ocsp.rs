//! OCSP (RFC 6960): reading requests and signing responses.
//!
//! Written with a small DER reader and writer because neither rcgen nor x509-parser builds
//! OCSP responses and the OCSP crates on crates.io are unmaintained; the structures are
//! few and fixed (OCSPRequest in, OCSPResponse with a BasicOCSPResponse out). CertIDs are
//! echoed back exactly as the client sent them, so the client's hash choice is kept; a
//! request nonce is echoed in the response extensions.

use aws_lc_rs::digest;
use rcgen::SigningKey;
use x509_parser::prelude::*;

use crate::x509::{KeyType, Signer, X509Error};

fn invalid(m: &str) -> X509Error {
    X509Error::Invalid(format!("malformed OCSP request: {m}"))
}

/// Reads one TLV: (tag, value, rest).
fn tlv(input: &[u8]) -> Result<(u8, &[u8], &[u8]), X509Error> {
    let (&tag, rest) = input.split_first().ok_or_else(|| invalid("truncated"))?;
    let (&first, rest) = rest.split_first().ok_or_else(|| invalid("truncated"))?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 3 || rest.len() < n {
            return Err(invalid("bad length"));
        }
        (
            rest[..n].iter().fold(0usize, |a, b| (a << 8) | *b as usize),
            &rest[n..],
        )
    };
    if rest.len() < len {
        return Err(invalid("truncated value"));
    }
    Ok((tag, &rest[..len], &rest[len..]))
}

/// A child TLV: tag, value, and the whole encoding.
type Child<'a> = (u8, &'a [u8], &'a [u8]);

fn children(mut v: &[u8]) -> Result<Vec<Child<'_>>, X509Error> {
    let mut out = Vec::new();
    while !v.is_empty() {
        let start = v;
        let (tag, val, rest) = tlv(v)?;
        let raw = &start[..start.len() - rest.len()];
        out.push((tag, val, raw));
        v = rest;
    }
    Ok(out)
}

/// DER TLV.
fn enc(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = body.len();
    if n < 0x80 {
        out.push(n as u8);
    } else if n < 0x100 {
        out.extend([0x81, n as u8]);
    } else if n < 0x10000 {
        out.extend([0x82, (n >> 8) as u8, n as u8]);
    } else {
        out.extend([0x83, (n >> 16) as u8, (n >> 8) as u8, n as u8]);
    }
    out.extend_from_slice(body);
    out
}

fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
    enc(0x30, &parts.concat())
}

fn gen_time(t: i64) -> Vec<u8> {
    let s = crate_rfc3339(t);
    enc(0x18, s.as_bytes())
}

/// `YYYYMMDDHHMMSSZ` for a Unix time.
fn crate_rfc3339(t: i64) -> String {
    let secs = t.max(0) as u64;
    let days = secs / 86400;
    let rem = secs % 86400;
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// One certificate asked about.
#[derive(Debug, Clone)]
pub struct Query {
    /// The CertID exactly as sent.
    pub cert_id: Vec<u8>,
    /// Hash algorithm OID content bytes.
    pub hash_oid: Vec<u8>,
    pub name_hash: Vec<u8>,
    pub key_hash: Vec<u8>,
    /// Serial number bytes (big-endian, as in the certificate).
    pub serial: Vec<u8>,
}

/// A parsed request: the queries and the nonce extension's value, if any.
pub struct Request {
    pub queries: Vec<Query>,
    pub nonce: Option<Vec<u8>>,
}

const OID_NONCE: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x02];
const OID_SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];
const OID_SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
const OID_BASIC: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01];

/// Parses a DER OCSPRequest.
pub fn parse_request(der: &[u8]) -> Result<Request, X509Error> {
    let (tag, body, _) = tlv(der)?;
    if tag != 0x30 {
        return Err(invalid("not a SEQUENCE"));
    }
    let top = children(body)?;
    let (tag, tbs, _) = *top.first().ok_or_else(|| invalid("no tbsRequest"))?;
    if tag != 0x30 {
        return Err(invalid("bad tbsRequest"));
    }
    let mut queries = Vec::new();
    let mut nonce = None;
    for (tag, val, _) in children(tbs)? {
        match tag {
            0x30 => {
                for (rtag, req, _) in children(val)? {
                    if rtag != 0x30 {
                        return Err(invalid("bad Request"));
                    }
                    let parts = children(req)?;
                    let (ctag, cid, raw) = *parts.first().ok_or_else(|| invalid("no CertID"))?;
                    if ctag != 0x30 {
                        return Err(invalid("bad CertID"));
                    }
                    let f = children(cid)?;
                    if f.len() < 4 {
                        return Err(invalid("short CertID"));
                    }
                    let alg = children(f[0].1)?;
                    let hash_oid = alg
                        .first()
                        .filter(|a| a.0 == 0x06)
                        .map(|a| a.1.to_vec())
                        .ok_or_else(|| invalid("no hash algorithm"))?;
                    queries.push(Query {
                        cert_id: raw.to_vec(),
                        hash_oid,
                        name_hash: f[1].1.to_vec(),
                        key_hash: f[2].1.to_vec(),
                        serial: f[3].1.iter().skip_while(|b| **b == 0).copied().collect(),
                    });
                }
            }
            0xa2 => {
                // requestExtensions [2] EXPLICIT Extensions
                let (_, exts, _) = tlv(val)?;
                for (_, ext, _) in children(exts)? {
                    let e = children(ext)?;
                    if e.first()
                        .is_some_and(|(t, v, _)| *t == 0x06 && *v == OID_NONCE)
                    {
                        if let Some((_, v, _)) = e.iter().rev().find(|(t, _, _)| *t == 0x04) {
                            nonce = Some(v.to_vec());
                        }
                    }
                }
            }
            _ => {}
        }
    }
    if queries.is_empty() {
        return Err(invalid("no request in requestList"));
    }
    Ok(Request { queries, nonce })
}

/// A certificate's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Good,
    Revoked(i64),
    Unknown,
}

/// Whether a query names a certificate of `issuer_der` (hashes of its name and key).
pub fn query_is_for(q: &Query, issuer_der: &[u8]) -> bool {
    let Ok((_, ca)) = X509Certificate::from_der(issuer_der) else {
        return false;
    };
    let alg = if q.hash_oid == OID_SHA1 {
        &digest::SHA1_FOR_LEGACY_USE_ONLY
    } else if q.hash_oid == OID_SHA256 {
        &digest::SHA256
    } else {
        return false;
    };
    let name = digest::digest(alg, ca.subject().as_raw());
    let key = digest::digest(alg, &ca.public_key().subject_public_key.data);
    name.as_ref() == q.name_hash.as_slice() && key.as_ref() == q.key_hash.as_slice()
}

fn sig_alg(kt: KeyType) -> Vec<u8> {
    match kt {
        KeyType::Rsa(_) => seq(&[
            enc(
                0x06,
                &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b],
            ),
            vec![0x05, 0x00],
        ]),
        KeyType::Ec(384) => seq(&[enc(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03])]),
        KeyType::Ec(521) => seq(&[enc(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04])]),
        KeyType::Ec(_) => seq(&[enc(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02])]),
        KeyType::Ed25519 => seq(&[enc(0x06, &[0x2b, 0x65, 0x70])]),
    }
}

/// A signed, successful OCSPResponse for `answers`.
pub fn build_response(
    signer: &Signer,
    answers: &[(Query, Status)],
    now: i64,
    next_update: i64,
    nonce: Option<&[u8]>,
) -> Result<Vec<u8>, X509Error> {
    let (_, ca) = X509Certificate::from_der(&signer.cert_der)
        .map_err(|_| X509Error::Invalid("invalid CA certificate".into()))?;
    let key_hash = digest::digest(
        &digest::SHA1_FOR_LEGACY_USE_ONLY,
        &ca.public_key().subject_public_key.data,
    );
    let responder = enc(0xa2, &enc(0x04, key_hash.as_ref()));
    let mut singles = Vec::new();
    for (q, status) in answers {
        let st = match status {
            Status::Good => vec![0x80, 0x00],
            Status::Revoked(t) => enc(0xa1, &gen_time(*t)),
            Status::Unknown => vec![0x82, 0x00],
        };
        singles.push(seq(&[
            q.cert_id.clone(),
            st,
            gen_time(now),
            enc(0xa0, &gen_time(next_update)),
        ]));
    }
    let mut tbs_parts = vec![responder, gen_time(now), seq(&singles)];
    if let Some(n) = nonce {
        let ext = seq(&[enc(0x06, OID_NONCE), enc(0x04, n)]);
        tbs_parts.push(enc(0xa1, &seq(&[ext])));
    }
    let tbs = seq(&tbs_parts);
    let signature = signer
        .key
        .sign(&tbs)
        .map_err(|e| X509Error::Build(format!("signing the OCSP response: {e}")))?;
    let mut bits = vec![0x00];
    bits.extend(signature);
    let basic = seq(&[
        tbs,
        sig_alg(signer.key_type),
        enc(0x03, &bits),
        enc(0xa0, &seq(std::slice::from_ref(&signer.cert_der))),
    ]);
    let bytes = seq(&[enc(0x06, OID_BASIC), enc(0x04, &basic)]);
    Ok(seq(&[vec![0x0a, 0x01, 0x00], enc(0xa0, &bytes)]))
}

/// An unsuccessful OCSPResponse: 1 malformedRequest, 2 internalError, 6 unauthorized.
pub fn error_response(code: u8) -> Vec<u8> {
    seq(&[vec![0x0a, 0x01, code]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generalized_time() {
        assert_eq!(crate_rfc3339(0), "19700101000000Z");
        assert_eq!(crate_rfc3339(1_795_403_369), "20261123030929Z");
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_request(&[]).is_err());
        assert!(parse_request(&[0x30, 0x05, 0x01]).is_err());
        assert!(parse_request(&[0x30, 0x00]).is_err());
        assert_eq!(error_response(1), vec![0x30, 0x03, 0x0a, 0x01, 0x01]);
    }
}
