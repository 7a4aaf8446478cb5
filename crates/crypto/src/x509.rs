//! X.509 for the PKI engine: key generation, CSR parsing with signature verification, and
//! certificate building and signing (rcgen over aws-lc-rs; x509-parser for reading).
//!
//! Key usages are filtered by key type, because what RFC 5280 and the CA/B rules allow depends
//! on the key: keyEncipherment only for RSA, keyAgreement only for EC; Ed25519 signs only.
//! [`filter_key_usages`] reports what it dropped so the engine can warn, where OpenBao writes
//! them in regardless.

use std::net::IpAddr;

use ::time::OffsetDateTime;
pub use rcgen::KeyUsagePurpose as KeyUsage;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SanType, SerialNumber,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use x509_parser::prelude::*;

/// Why an X.509 operation failed; messages are safe for clients.
#[derive(Debug, thiserror::Error)]
pub enum X509Error {
    #[error("{0}")]
    Invalid(String),
    #[error("certificate generation failed: {0}")]
    Build(String),
}

fn build_err(e: rcgen::Error) -> X509Error {
    X509Error::Build(e.to_string())
}

/// A key algorithm and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Rsa(u32),
    Ec(u32),
    Ed25519,
}

impl KeyType {
    /// Parses Vault's `key_type` + `key_bits` (0 = the type's default).
    pub fn parse(kind: &str, bits: u64) -> Result<KeyType, X509Error> {
        match kind {
            "rsa" => match bits {
                0 => Ok(KeyType::Rsa(2048)),
                2048 | 3072 | 4096 => Ok(KeyType::Rsa(bits as u32)),
                b => Err(X509Error::Invalid(format!(
                    "unsupported bit length for RSA key: {b}"
                ))),
            },
            "ec" => match bits {
                0 => Ok(KeyType::Ec(256)),
                224 => Err(X509Error::Invalid(
                    "unsupported bit length for EC key: 224".into(),
                )),
                256 | 384 | 521 => Ok(KeyType::Ec(bits as u32)),
                b => Err(X509Error::Invalid(format!(
                    "unsupported bit length for EC key: {b}"
                ))),
            },
            "ed25519" => Ok(KeyType::Ed25519),
            other => Err(X509Error::Invalid(format!("unknown key type {other:?}"))),
        }
    }

    /// Vault's name (`rsa`, `ec`, `ed25519`).
    pub fn name(self) -> &'static str {
        match self {
            KeyType::Rsa(_) => "rsa",
            KeyType::Ec(_) => "ec",
            KeyType::Ed25519 => "ed25519",
        }
    }

    /// Key size in bits (256 for Ed25519, as Vault reports it... it reports 0; see `bits_for_api`).
    pub fn bits(self) -> u32 {
        match self {
            KeyType::Rsa(b) | KeyType::Ec(b) => b,
            KeyType::Ed25519 => 0,
        }
    }

    pub(crate) fn alg(self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            KeyType::Rsa(_) => &rcgen::PKCS_RSA_SHA256,
            KeyType::Ec(384) => &rcgen::PKCS_ECDSA_P384_SHA384,
            KeyType::Ec(521) => &rcgen::PKCS_ECDSA_P521_SHA512,
            KeyType::Ec(_) => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyType::Ed25519 => &rcgen::PKCS_ED25519,
        }
    }
}

/// Generates a key pair.
pub fn generate_key(kt: KeyType) -> Result<KeyPair, X509Error> {
    match kt {
        KeyType::Rsa(bits) => {
            let size = match bits {
                3072 => rcgen::RsaKeySize::_3072,
                4096 => rcgen::RsaKeySize::_4096,
                _ => rcgen::RsaKeySize::_2048,
            };
            KeyPair::generate_rsa_for(kt.alg(), size).map_err(build_err)
        }
        _ => KeyPair::generate_for(kt.alg()).map_err(build_err),
    }
}

/// The DER SubjectPublicKeyInfo of a key pair.
pub fn spki_of(key: &KeyPair) -> Vec<u8> {
    key.subject_public_key_info()
}

/// Loads a stored private key (PKCS#8 PEM), detecting its type.
pub fn load_key(pem: &str) -> Result<(KeyPair, KeyType), X509Error> {
    let kp = KeyPair::from_pem(pem)
        .map_err(|e| X509Error::Invalid(format!("invalid private key: {e}")))?;
    let kt = key_type_of_spki(&kp.subject_public_key_info())?;
    // RSA and P-521 need the algorithm stated explicitly.
    let kp = KeyPair::from_pem_and_sign_algo(pem, kt.alg())
        .map_err(|e| X509Error::Invalid(format!("invalid private key: {e}")))?;
    Ok((kp, kt))
}

/// The key type of a DER SubjectPublicKeyInfo.
pub fn key_type_of_spki(spki: &[u8]) -> Result<KeyType, X509Error> {
    let (_, info) = SubjectPublicKeyInfo::from_der(spki)
        .map_err(|_| X509Error::Invalid("invalid public key".into()))?;
    match info.parsed() {
        Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => {
            Ok(KeyType::Rsa((rsa.key_size()) as u32))
        }
        Ok(x509_parser::public_key::PublicKey::EC(ec)) => Ok(KeyType::Ec(match ec.key_size() {
            384 => 384,
            521 | 528 => 521,
            _ => 256,
        })),
        _ if info.algorithm.algorithm.to_id_string() == "1.3.101.112" => Ok(KeyType::Ed25519),
        _ => Err(X509Error::Invalid(
            "unsupported public key algorithm".into(),
        )),
    }
}

/// A parsed and signature-checked CSR.
#[derive(Debug, Clone)]
pub struct Csr {
    pub common_name: String,
    pub dns: Vec<String>,
    pub emails: Vec<String>,
    pub ips: Vec<IpAddr>,
    pub uris: Vec<String>,
    pub spki_der: Vec<u8>,
    pub key_type: KeyType,
}

/// Parses a PEM CSR and verifies its self-signature.
pub fn parse_csr(pem: &str) -> Result<Csr, X509Error> {
    let der = rustls_pki_types::CertificateSigningRequestDer::from_pem_slice(pem.trim().as_bytes())
        .map_err(|_| {
            X509Error::Invalid(
                "failed to decode CSR: no PEM CERTIFICATE REQUEST block found".into(),
            )
        })?;
    let (_, csr) = X509CertificationRequest::from_der(der.as_ref())
        .map_err(|e| X509Error::Invalid(format!("certificate request could not be parsed: {e}")))?;
    csr.verify_signature()
        .map_err(|_| X509Error::Invalid("request signature invalid".into()))?;
    let info = &csr.certification_request_info;
    let mut out = Csr {
        common_name: info
            .subject
            .iter_common_name()
            .next()
            .and_then(|c| c.as_str().ok())
            .unwrap_or("")
            .to_string(),
        dns: vec![],
        emails: vec![],
        ips: vec![],
        uris: vec![],
        spki_der: info.subject_pki.raw.to_vec(),
        key_type: key_type_of_spki(info.subject_pki.raw)?,
    };
    if let Some(exts) = csr.requested_extensions() {
        for ext in exts {
            if let ParsedExtension::SubjectAlternativeName(san) = ext {
                for n in &san.general_names {
                    match n {
                        GeneralName::DNSName(d) => out.dns.push(d.to_string()),
                        GeneralName::RFC822Name(e) => out.emails.push(e.to_string()),
                        GeneralName::URI(u) => out.uris.push(u.to_string()),
                        GeneralName::IPAddress(b) => {
                            if let Some(ip) = ip_from_bytes(b) {
                                out.ips.push(ip);
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    Ok(out)
}

fn ip_from_bytes(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(b).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(b).ok()?)),
        _ => None,
    }
}

/// 20 random bytes, positive (top bit clear) and never zero.
pub fn random_serial() -> Result<Vec<u8>, X509Error> {
    use aws_lc_rs::rand::SecureRandom;
    let mut b = [0u8; 20];
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| X509Error::Build("random number generator failed".into()))?;
    b[0] &= 0x7f;
    if b[0] == 0 {
        b[0] = 0x01;
    }
    Ok(b.to_vec())
}

/// Vault's serial format: lowercase hex pairs joined by colons.
pub fn serial_string(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Usages filtered for a key type: returns (kept, dropped names).
pub fn filter_key_usages(kt: KeyType, names: &[String]) -> (Vec<KeyUsagePurpose>, Vec<String>) {
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    for n in names {
        let lower = n.to_lowercase();
        let ku = match lower.as_str() {
            "digitalsignature" => Some(KeyUsagePurpose::DigitalSignature),
            "contentcommitment" | "nonrepudiation" => Some(KeyUsagePurpose::ContentCommitment),
            "keyencipherment" => Some(KeyUsagePurpose::KeyEncipherment),
            "dataencipherment" => Some(KeyUsagePurpose::DataEncipherment),
            "keyagreement" => Some(KeyUsagePurpose::KeyAgreement),
            "certsign" => Some(KeyUsagePurpose::KeyCertSign),
            "crlsign" => Some(KeyUsagePurpose::CrlSign),
            "encipheronly" => Some(KeyUsagePurpose::EncipherOnly),
            "decipheronly" => Some(KeyUsagePurpose::DecipherOnly),
            _ => None,
        };
        let Some(ku) = ku else { continue };
        let allowed = !matches!(
            (kt, &ku),
            (KeyType::Rsa(_), KeyUsagePurpose::KeyAgreement)
                | (
                    KeyType::Ec(_),
                    KeyUsagePurpose::KeyEncipherment | KeyUsagePurpose::DataEncipherment
                )
                | (
                    KeyType::Ed25519,
                    KeyUsagePurpose::KeyAgreement
                        | KeyUsagePurpose::KeyEncipherment
                        | KeyUsagePurpose::DataEncipherment
                )
        );
        if allowed {
            if !kept.contains(&ku) {
                kept.push(ku);
            }
        } else {
            dropped.push(n.clone());
        }
    }
    (kept, dropped)
}

/// What to put into a certificate.
#[derive(Debug, Clone, Default)]
pub struct CertSpec {
    pub common_name: String,
    pub organization: Vec<String>,
    pub ou: Vec<String>,
    pub country: Vec<String>,
    pub locality: Vec<String>,
    pub province: Vec<String>,
    pub dns: Vec<String>,
    pub emails: Vec<String>,
    pub ips: Vec<IpAddr>,
    pub uris: Vec<String>,
    pub not_before: i64,
    pub not_after: i64,
    pub serial: Vec<u8>,
    pub is_ca: bool,
    /// -1 = unlimited.
    pub max_path_length: i64,
    pub key_usages: Vec<KeyUsagePurpose>,
    pub server_auth: bool,
    pub client_auth: bool,
    pub code_signing: bool,
    pub email_protection: bool,
    pub issuing_certificates: Vec<String>,
    pub crl_distribution_points: Vec<String>,
    pub ocsp_servers: Vec<String>,
    /// Name constraints: permitted DNS subtrees (CA certificates).
    pub permitted_dns_domains: Vec<String>,
    /// Extended key usages beyond the four flags, as dotted OIDs.
    pub extra_ekus: Vec<String>,
    /// Certificate policy OIDs (dotted).
    pub policy_identifiers: Vec<String>,
    /// otherName SANs: (dotted OID, UTF-8 value).
    pub other_sans: Vec<(String, String)>,
    pub street_address: Vec<String>,
    pub postal_code: Vec<String>,
    /// The subject's serialNumber attribute.
    pub subject_serial_number: String,
    /// Write basicConstraints (cA false) into a leaf; OpenBao's role option, off by default.
    pub leaf_basic_constraints: bool,
}

fn params_for(spec: &CertSpec) -> Result<CertificateParams, X509Error> {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    for c in &spec.country {
        dn.push(DnType::CountryName, c.as_str());
    }
    for c in &spec.province {
        dn.push(DnType::StateOrProvinceName, c.as_str());
    }
    for c in &spec.locality {
        dn.push(DnType::LocalityName, c.as_str());
    }
    for c in &spec.street_address {
        dn.push(DnType::CustomDnType(vec![2, 5, 4, 9]), c.as_str());
    }
    for c in &spec.postal_code {
        dn.push(DnType::CustomDnType(vec![2, 5, 4, 17]), c.as_str());
    }
    for o in &spec.organization {
        dn.push(DnType::OrganizationName, o.as_str());
    }
    for o in &spec.ou {
        dn.push(DnType::OrganizationalUnitName, o.as_str());
    }
    if !spec.common_name.is_empty() {
        dn.push(DnType::CommonName, spec.common_name.as_str());
    }
    if !spec.subject_serial_number.is_empty() {
        dn.push(
            DnType::CustomDnType(vec![2, 5, 4, 5]),
            rcgen::DnValue::PrintableString(
                rcgen::string::PrintableString::try_from(spec.subject_serial_number.clone())
                    .map_err(|_| {
                        X509Error::Invalid(format!(
                            "{:?} is not a valid serial number attribute",
                            spec.subject_serial_number
                        ))
                    })?,
            ),
        );
    }
    p.distinguished_name = dn;
    let ia5 = |s: &str| {
        rcgen::string::Ia5String::try_from(s.to_string())
            .map_err(|_| X509Error::Invalid(format!("{s:?} is not a valid IA5 string")))
    };
    for d in &spec.dns {
        p.subject_alt_names.push(SanType::DnsName(ia5(d)?));
    }
    for e in &spec.emails {
        p.subject_alt_names.push(SanType::Rfc822Name(ia5(e)?));
    }
    for ip in &spec.ips {
        p.subject_alt_names.push(SanType::IpAddress(*ip));
    }
    for u in &spec.uris {
        p.subject_alt_names.push(SanType::URI(ia5(u)?));
    }
    for (oid, value) in &spec.other_sans {
        p.subject_alt_names.push(SanType::OtherName((
            oid_arcs(oid)?,
            rcgen::OtherNameValue::Utf8String(value.clone()),
        )));
    }
    p.not_before = OffsetDateTime::from_unix_timestamp(spec.not_before)
        .map_err(|e| X509Error::Invalid(e.to_string()))?;
    p.not_after = OffsetDateTime::from_unix_timestamp(spec.not_after)
        .map_err(|e| X509Error::Invalid(e.to_string()))?;
    p.serial_number = Some(SerialNumber::from_slice(&spec.serial));
    p.is_ca = if spec.is_ca {
        if spec.max_path_length >= 0 {
            IsCa::Ca(BasicConstraints::Constrained(
                spec.max_path_length.min(255) as u8
            ))
        } else {
            IsCa::Ca(BasicConstraints::Unconstrained)
        }
    } else if spec.leaf_basic_constraints {
        IsCa::ExplicitNoCa
    } else {
        IsCa::NoCa
    };
    if !spec.permitted_dns_domains.is_empty() {
        p.name_constraints = Some(rcgen::NameConstraints {
            permitted_subtrees: spec
                .permitted_dns_domains
                .iter()
                .map(|d| rcgen::GeneralSubtree::DnsName(d.clone()))
                .collect(),
            excluded_subtrees: vec![],
        });
    }
    p.key_usages = spec.key_usages.clone();
    if spec.server_auth {
        p.extended_key_usages
            .push(ExtendedKeyUsagePurpose::ServerAuth);
    }
    if spec.client_auth {
        p.extended_key_usages
            .push(ExtendedKeyUsagePurpose::ClientAuth);
    }
    if spec.code_signing {
        p.extended_key_usages
            .push(ExtendedKeyUsagePurpose::CodeSigning);
    }
    if spec.email_protection {
        p.extended_key_usages
            .push(ExtendedKeyUsagePurpose::EmailProtection);
    }
    for oid in &spec.extra_ekus {
        let arcs = oid_arcs(oid)?;
        let purpose = match oid.as_str() {
            "1.3.6.1.5.5.7.3.1" => ExtendedKeyUsagePurpose::ServerAuth,
            "1.3.6.1.5.5.7.3.2" => ExtendedKeyUsagePurpose::ClientAuth,
            "1.3.6.1.5.5.7.3.3" => ExtendedKeyUsagePurpose::CodeSigning,
            "1.3.6.1.5.5.7.3.4" => ExtendedKeyUsagePurpose::EmailProtection,
            _ => ExtendedKeyUsagePurpose::Other(arcs),
        };
        if !p.extended_key_usages.contains(&purpose) {
            p.extended_key_usages.push(purpose);
        }
    }
    if !spec.policy_identifiers.is_empty() {
        let mut body = Vec::new();
        for oid in &spec.policy_identifiers {
            body.extend(der_tlv(0x30, &der_tlv(0x06, &oid_der(&oid_arcs(oid)?))));
        }
        let mut ext =
            rcgen::CustomExtension::from_oid_content(&[2, 5, 29, 32], der_tlv(0x30, &body));
        ext.set_criticality(false);
        p.custom_extensions.push(ext);
    }
    p.use_authority_key_identifier_extension = true;
    p.key_identifier_method = rcgen::KeyIdMethod::Sha256;
    for url in &spec.crl_distribution_points {
        p.crl_distribution_points.push(rcgen::CrlDistributionPoint {
            uris: vec![url.clone()],
        });
    }
    if !spec.issuing_certificates.is_empty() || !spec.ocsp_servers.is_empty() {
        p.custom_extensions.push(aia_extension(
            &spec.ocsp_servers,
            &spec.issuing_certificates,
        ));
    }
    Ok(p)
}

/// The Authority Information Access extension (RFC 5280 4.2.2.1), DER by hand: rcgen has no
/// builder for it.
fn aia_extension(ocsp: &[String], ca_issuers: &[String]) -> rcgen::CustomExtension {
    const OCSP: [u8; 8] = [0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01];
    const CA_ISSUERS: [u8; 8] = [0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x02];
    let mut items = Vec::new();
    for (oid, urls) in [(OCSP, ocsp), (CA_ISSUERS, ca_issuers)] {
        for u in urls {
            let mut ad = der_tlv(0x06, &oid);
            ad.extend(der_tlv(0x86, u.as_bytes()));
            items.extend(der_tlv(0x30, &ad));
        }
    }
    let mut ext = rcgen::CustomExtension::from_oid_content(
        &[1, 3, 6, 1, 5, 5, 7, 1, 1],
        der_tlv(0x30, &items),
    );
    ext.set_criticality(false);
    ext
}

/// A signing CA: its certificate and key.
pub struct Signer {
    pub cert_der: Vec<u8>,
    pub key: KeyPair,
    pub key_type: KeyType,
    /// The same RSA key bound to SHA-384 and SHA-512 (rcgen ties the hash to the key pair),
    /// for `signature_bits`; built on first use.
    rsa_variants: std::sync::OnceLock<Option<(KeyPair, KeyPair)>>,
}

impl Signer {
    /// Loads a CA from its certificate PEM and PKCS#8 key PEM.
    pub fn load(cert_pem: &str, key_pem: &str) -> Result<Signer, X509Error> {
        let der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|_| X509Error::Invalid("invalid CA certificate".into()))?;
        let (key, key_type) = load_key(key_pem)?;
        Ok(Signer {
            cert_der: der.as_ref().to_vec(),
            key,
            key_type,
            rsa_variants: std::sync::OnceLock::new(),
        })
    }

    /// The CA's notAfter (epoch seconds).
    pub fn not_after(&self) -> Result<i64, X509Error> {
        let (_, c) = X509Certificate::from_der(&self.cert_der)
            .map_err(|_| X509Error::Invalid("invalid CA certificate".into()))?;
        Ok(c.validity().not_after.timestamp())
    }

    /// Signs a certificate for `public_key` (DER SPKI).
    pub fn sign(&self, spec: &CertSpec, spki_der: &[u8]) -> Result<Vec<u8>, X509Error> {
        self.sign_with_bits(spec, spki_der, 0)
    }

    /// Signs with a chosen hash size (`signature_bits`: 256, 384 or 512; 0 = the key's
    /// default). Only RSA keys choose; an ECDSA or Ed25519 key's hash follows its curve.
    pub fn sign_with_bits(
        &self,
        spec: &CertSpec,
        spki_der: &[u8],
        bits: u32,
    ) -> Result<Vec<u8>, X509Error> {
        let params = params_for(spec)?;
        let key = self.key_for_bits(bits)?;
        let issuer = Issuer::from_ca_cert_der(&CertificateDer::from(self.cert_der.clone()), key)
            .map_err(build_err)?;
        let pk = rcgen::SubjectPublicKeyInfo::from_der(spki_der).map_err(build_err)?;
        let cert = params.signed_by(&pk, &issuer).map_err(build_err)?;
        Ok(cert.der().as_ref().to_vec())
    }

    fn key_for_bits(&self, bits: u32) -> Result<&KeyPair, X509Error> {
        if !matches!(self.key_type, KeyType::Rsa(_)) || !matches!(bits, 384 | 512) {
            return Ok(&self.key);
        }
        let variants = self.rsa_variants.get_or_init(|| {
            let der = zeroize::Zeroizing::new(self.key.serialize_der());
            let p8 = rustls_pki_types::PrivatePkcs8KeyDer::from(der.as_slice());
            let a = KeyPair::from_pkcs8_der_and_sign_algo(&p8, &rcgen::PKCS_RSA_SHA384).ok()?;
            let b = KeyPair::from_pkcs8_der_and_sign_algo(&p8, &rcgen::PKCS_RSA_SHA512).ok()?;
            Some((a, b))
        });
        match (variants, bits) {
            (Some((a, _)), 384) => Ok(a),
            (Some((_, b)), _) => Ok(b),
            (None, _) => Err(X509Error::Build(
                "cannot prepare the RSA key for the requested signature_bits".into(),
            )),
        }
    }
}

/// A self-signed CA certificate.
pub fn self_signed(spec: &CertSpec, key: &KeyPair) -> Result<Vec<u8>, X509Error> {
    let params = params_for(spec)?;
    Ok(params
        .self_signed(key)
        .map_err(build_err)?
        .der()
        .as_ref()
        .to_vec())
}

/// PEM of a DER certificate.
pub fn cert_pem(der: &[u8]) -> String {
    pem_block("CERTIFICATE", der)
}

/// A PEM block.
pub fn pem_block(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----"));
    out
}

/// What the engine records about a certificate.
#[derive(Debug, Clone)]
pub struct CertInfo {
    pub serial: String,
    pub common_name: String,
    pub dns: Vec<String>,
    pub not_before: i64,
    pub not_after: i64,
    pub is_ca: bool,
    pub self_signed: bool,
}

/// Reads the facts the inventory keeps.
pub fn cert_info(der: &[u8]) -> Result<CertInfo, X509Error> {
    let (_, c) = X509Certificate::from_der(der)
        .map_err(|e| X509Error::Invalid(format!("invalid certificate: {e}")))?;
    let mut dns = Vec::new();
    if let Ok(Some(san)) = c.subject_alternative_name() {
        for n in &san.value.general_names {
            if let GeneralName::DNSName(d) = n {
                dns.push(d.to_string());
            }
        }
    }
    let common_name = c
        .subject()
        .iter_common_name()
        .next()
        .and_then(|x| x.as_str().ok())
        .unwrap_or("")
        .to_string();
    Ok(CertInfo {
        serial: serial_string(c.raw_serial()),
        common_name,
        dns,
        not_before: c.validity().not_before.timestamp(),
        not_after: c.validity().not_after.timestamp(),
        is_ca: c.is_ca(),
        self_signed: c.subject() == c.issuer(),
    })
}

/// A PEM CSR for `spec`'s subject and SANs, signed by `key` (intermediate generation).
pub fn csr_pem(spec: &CertSpec, key: &KeyPair) -> Result<String, X509Error> {
    let full = params_for(spec)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = full.distinguished_name;
    params.subject_alt_names = full.subject_alt_names;
    params
        .serialize_request(key)
        .map_err(build_err)?
        .pem()
        .map_err(build_err)
}

/// The DER SubjectPublicKeyInfo of a DER certificate.
pub fn cert_spki(der: &[u8]) -> Result<Vec<u8>, X509Error> {
    let (_, c) = X509Certificate::from_der(der)
        .map_err(|e| X509Error::Invalid(format!("invalid certificate: {e}")))?;
    Ok(c.public_key().raw.to_vec())
}

/// Splits a PEM bundle into DER certificates and the (first) private key PEM block.
pub fn split_bundle(pem: &str) -> Result<(Vec<Vec<u8>>, Option<String>), X509Error> {
    let mut certs = Vec::new();
    let mut key = None;
    let mut current: Option<(String, String)> = None;
    for line in pem.lines() {
        let line = line.trim();
        if let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        {
            current = Some((label.to_string(), format!("{line}\n")));
        } else if let Some(label) = line
            .strip_prefix("-----END ")
            .and_then(|l| l.strip_suffix("-----"))
        {
            if let Some((open, mut body)) = current.take() {
                if open != label {
                    return Err(X509Error::Invalid("malformed PEM bundle".into()));
                }
                body.push_str(line);
                if label == "CERTIFICATE" {
                    let der = CertificateDer::from_pem_slice(body.as_bytes()).map_err(|_| {
                        X509Error::Invalid("invalid certificate in PEM bundle".into())
                    })?;
                    X509Certificate::from_der(der.as_ref()).map_err(|e| {
                        X509Error::Invalid(format!("invalid certificate in PEM bundle: {e}"))
                    })?;
                    certs.push(der.as_ref().to_vec());
                } else if label.ends_with("PRIVATE KEY") {
                    if key.is_some() {
                        return Err(X509Error::Invalid(
                            "PEM bundle has more than one private key".into(),
                        ));
                    }
                    key = Some(body);
                }
            }
        } else if let Some((_, body)) = current.as_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    Ok((certs, key))
}

/// Whether a private key PEM (PKCS#8, PKCS#1 or SEC1) belongs to a DER certificate.
pub fn key_matches_cert(key_pem: &str, cert_der: &[u8]) -> Result<bool, X509Error> {
    let (key, _) = load_key(key_pem)?;
    Ok(key.subject_public_key_info() == cert_spki(cert_der)?)
}

/// One revoked certificate for a CRL.
#[derive(Debug, Clone)]
pub struct Revoked {
    pub serial: Vec<u8>,
    pub revoked_at: i64,
}

/// A DER CRL signed by `signer`.
pub fn build_crl(
    signer: &Signer,
    number: u64,
    this_update: i64,
    next_update: i64,
    revoked: &[Revoked],
) -> Result<Vec<u8>, X509Error> {
    let ts = |t: i64| {
        OffsetDateTime::from_unix_timestamp(t).map_err(|e| X509Error::Invalid(e.to_string()))
    };
    let mut list = Vec::with_capacity(revoked.len());
    for r in revoked {
        list.push(rcgen::RevokedCertParams {
            serial_number: SerialNumber::from_slice(&r.serial),
            revocation_time: ts(r.revoked_at)?,
            reason_code: None,
            invalidity_date: None,
        });
    }
    let params = rcgen::CertificateRevocationListParams {
        this_update: ts(this_update)?,
        next_update: ts(next_update)?,
        crl_number: SerialNumber::from_slice(&number.to_be_bytes()),
        issuing_distribution_point: None,
        revoked_certs: list,
        key_identifier_method: rcgen::KeyIdMethod::Sha256,
    };
    let issuer =
        Issuer::from_ca_cert_der(&CertificateDer::from(signer.cert_der.clone()), &signer.key)
            .map_err(build_err)?;
    Ok(params
        .signed_by(&issuer)
        .map_err(build_err)?
        .der()
        .as_ref()
        .to_vec())
}

/// Hex serial (colon separated) back to bytes.
pub fn serial_bytes(serial: &str) -> Result<Vec<u8>, X509Error> {
    let hex: String = serial.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    if hex.is_empty()
        || !hex.len().is_multiple_of(2)
        || serial
            .chars()
            .any(|c| !(c.is_ascii_hexdigit() || c == ':' || c == '-'))
    {
        return Err(X509Error::Invalid(format!(
            "invalid serial number {serial:?}"
        )));
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&hex[i..i + 2], 16)
                .map_err(|_| X509Error::Invalid(format!("invalid serial number {serial:?}")))
        })
        .collect()
}

/// Whether DER certificate `cert` carries a valid signature by the CA `ca` (DER).
pub fn issued_by(cert: &[u8], ca: &[u8]) -> bool {
    let (Ok((_, c)), Ok((_, ca))) = (
        X509Certificate::from_der(cert),
        X509Certificate::from_der(ca),
    ) else {
        return false;
    };
    c.issuer() == ca.subject() && c.verify_signature(Some(ca.public_key())).is_ok()
}

/// An RFC 3339 time (`2030-01-02T15:04:05Z`) as epoch seconds.
pub fn parse_time(s: &str) -> Option<i64> {
    OffsetDateTime::parse(s.trim(), &::time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

/// Re-signs a (self-issued) CA certificate with `signer`: same subject, names, validity,
/// serial, basic constraints and key usages, new issuer. Used by `root/sign-self-issued`.
///
/// rcgen cannot rebuild parameters from an existing certificate through its public API, so
/// the fields are read with x509-parser into a [`CertSpec`]; subject attributes other than
/// C, ST, L, O, OU and CN are not carried over.
pub fn resign(signer: &Signer, der: &[u8]) -> Result<Vec<u8>, X509Error> {
    let (_, c) = X509Certificate::from_der(der)
        .map_err(|e| X509Error::Invalid(format!("error parsing certificate: {e}")))?;
    let mut spec = CertSpec {
        not_before: c.validity().not_before.timestamp(),
        not_after: c.validity().not_after.timestamp(),
        serial: c.raw_serial().to_vec(),
        is_ca: c.is_ca(),
        max_path_length: -1,
        ..Default::default()
    };
    for rdn in c.subject().iter() {
        for atv in rdn.iter() {
            let Ok(v) = atv.as_str() else { continue };
            let v = v.to_string();
            match atv.attr_type().to_id_string().as_str() {
                "2.5.4.3" => spec.common_name = v,
                "2.5.4.6" => spec.country.push(v),
                "2.5.4.8" => spec.province.push(v),
                "2.5.4.7" => spec.locality.push(v),
                "2.5.4.10" => spec.organization.push(v),
                "2.5.4.11" => spec.ou.push(v),
                _ => {}
            }
        }
    }
    if let Ok(Some(bc)) = c.basic_constraints() {
        if let Some(n) = bc.value.path_len_constraint {
            spec.max_path_length = n as i64;
        }
    }
    if let Ok(Some(ku)) = c.key_usage() {
        let k = ku.value;
        for (on, usage) in [
            (k.digital_signature(), KeyUsagePurpose::DigitalSignature),
            (k.non_repudiation(), KeyUsagePurpose::ContentCommitment),
            (k.key_encipherment(), KeyUsagePurpose::KeyEncipherment),
            (k.data_encipherment(), KeyUsagePurpose::DataEncipherment),
            (k.key_agreement(), KeyUsagePurpose::KeyAgreement),
            (k.key_cert_sign(), KeyUsagePurpose::KeyCertSign),
            (k.crl_sign(), KeyUsagePurpose::CrlSign),
        ] {
            if on {
                spec.key_usages.push(usage);
            }
        }
    }
    if let Ok(Some(san)) = c.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                GeneralName::DNSName(d) => spec.dns.push(d.to_string()),
                GeneralName::RFC822Name(e) => spec.emails.push(e.to_string()),
                GeneralName::URI(u) => spec.uris.push(u.to_string()),
                GeneralName::IPAddress(b) => {
                    if let Some(ip) = ip_from_bytes(b) {
                        spec.ips.push(ip);
                    }
                }
                _ => {}
            }
        }
    }
    signer.sign(&spec, c.public_key().raw)
}

/// The subject key identifier of a DER SubjectPublicKeyInfo as OpenBao reports it: SHA-1 of
/// the subjectPublicKey bits (RFC 5280 4.2.1.2 method 1), colon-separated hex.
pub fn subject_key_id(spki_der: &[u8]) -> Result<String, X509Error> {
    let (_, spki) = SubjectPublicKeyInfo::from_der(spki_der)
        .map_err(|e| X509Error::Invalid(format!("invalid public key: {e}")))?;
    let d = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
        &spki.subject_public_key.data,
    );
    Ok(serial_string(d.as_ref()))
}

/// A dotted OID as arcs, refusing what is not an OID.
pub fn oid_arcs(oid: &str) -> Result<Vec<u64>, X509Error> {
    let arcs: Option<Vec<u64>> = oid.trim().split('.').map(|a| a.parse().ok()).collect();
    match arcs {
        Some(a) if a.len() >= 2 && a[0] <= 2 && (a[0] == 2 || a[1] < 40) => Ok(a),
        _ => Err(X509Error::Invalid(format!("{oid:?} is not a valid OID"))),
    }
}

/// Whether a string is a dotted OID.
pub fn is_oid(oid: &str) -> bool {
    oid_arcs(oid).is_ok()
}

/// The OID of an extended key usage by Go's name (`ServerAuth`, `TimeStamping`, ...), as
/// OpenBao's `ext_key_usage` takes them (case-insensitive).
pub fn ext_key_usage_oid(name: &str) -> Option<&'static str> {
    Some(match name.trim().to_lowercase().as_str() {
        "any" => "2.5.29.37.0",
        "serverauth" => "1.3.6.1.5.5.7.3.1",
        "clientauth" => "1.3.6.1.5.5.7.3.2",
        "codesigning" => "1.3.6.1.5.5.7.3.3",
        "emailprotection" => "1.3.6.1.5.5.7.3.4",
        "ipsecendsystem" => "1.3.6.1.5.5.7.3.5",
        "ipsectunnel" => "1.3.6.1.5.5.7.3.6",
        "ipsecuser" => "1.3.6.1.5.5.7.3.7",
        "timestamping" => "1.3.6.1.5.5.7.3.8",
        "ocspsigning" => "1.3.6.1.5.5.7.3.9",
        "microsoftservergatedcrypto" => "1.3.6.1.4.1.311.10.3.3",
        "netscapeservergatedcrypto" => "2.16.840.1.113730.4.1",
        "microsoftcommercialcodesigning" => "1.3.6.1.4.1.311.2.1.22",
        "microsoftkernelcodesigning" => "1.3.6.1.4.1.311.61.1.1",
        _ => return None,
    })
}

fn oid_der(arcs: &[u64]) -> Vec<u8> {
    let mut out = vec![(arcs[0] * 40 + arcs[1]) as u8];
    for &a in &arcs[2..] {
        let mut chunk = vec![(a & 0x7f) as u8];
        let mut v = a >> 7;
        while v > 0 {
            chunk.push(((v & 0x7f) as u8) | 0x80);
            v >>= 7;
        }
        chunk.reverse();
        out.extend(chunk);
    }
    out
}

fn der_tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = body.len();
    if n < 128 {
        out.push(n as u8);
    } else {
        let bytes: Vec<u8> = (n as u64)
            .to_be_bytes()
            .into_iter()
            .skip_while(|&b| b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(body);
    out
}

/// One DER element: (tag, whole element length, content start) at the start of `b`.
fn der_element(b: &[u8]) -> Result<(u8, usize, usize), X509Error> {
    let bad = || X509Error::Build("malformed DER in a generated CRL".into());
    let tag = *b.first().ok_or_else(bad)?;
    let first = *b.get(1).ok_or_else(bad)?;
    let (len, hdr) = if first < 0x80 {
        (first as usize, 2)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || b.len() < 2 + n {
            return Err(bad());
        }
        let len = b[2..2 + n]
            .iter()
            .fold(0usize, |a, &x| (a << 8) | x as usize);
        (len, 2 + n)
    };
    if b.len() < hdr + len {
        return Err(bad());
    }
    Ok((tag, hdr + len, hdr))
}

fn der_uint(v: u64) -> Vec<u8> {
    let mut bytes: Vec<u8> = v.to_be_bytes().to_vec();
    while bytes.len() > 1 && bytes[0] == 0 {
        bytes.remove(0);
    }
    if bytes[0] & 0x80 != 0 {
        bytes.insert(0, 0);
    }
    der_tlv(0x02, &bytes)
}

/// A delta CRL (RFC 5280 5.2.4): a CRL numbered `number` with a critical Delta CRL Indicator
/// naming the complete CRL `base_number` it extends.
///
/// rcgen builds CRLs but has no way to add a CRL extension, so the CRL it builds is opened
/// (its TBSCertList's crlExtensions gets one more entry) and signed again with the same key
/// and algorithm. The DER handled here is only what rcgen itself produced.
pub fn build_delta_crl(
    signer: &Signer,
    number: u64,
    base_number: u64,
    this_update: i64,
    next_update: i64,
    revoked: &[Revoked],
) -> Result<Vec<u8>, X509Error> {
    use rcgen::SigningKey as _;
    let full = build_crl(signer, number, this_update, next_update, revoked)?;
    let (_, _, hdr) = der_element(&full)?;
    let body = &full[hdr..];
    let (_, tbs_len, tbs_hdr) = der_element(body)?;
    let tbs = &body[..tbs_len];
    let alg = {
        let rest = &body[tbs_len..];
        let (_, alg_len, _) = der_element(rest)?;
        rest[..alg_len].to_vec()
    };
    // Walk the TBSCertList's elements; the last one is [0] crlExtensions.
    let mut items: Vec<&[u8]> = Vec::new();
    let mut at = tbs_hdr;
    while at < tbs.len() {
        let (_, len, _) = der_element(&tbs[at..])?;
        items.push(&tbs[at..at + len]);
        at += len;
    }
    let last = items
        .pop()
        .filter(|e| e.first() == Some(&0xa0))
        .ok_or_else(|| X509Error::Build("generated CRL has no extensions".into()))?;
    let (_, _, ext_hdr) = der_element(last)?;
    let seq = &last[ext_hdr..];
    let (_, _, seq_hdr) = der_element(seq)?;
    let mut exts = seq[seq_hdr..].to_vec();
    let mut indicator = der_tlv(0x06, &[0x55, 0x1d, 0x1b]);
    indicator.extend([0x01, 0x01, 0xff]);
    indicator.extend(der_tlv(0x04, &der_uint(base_number)));
    exts.extend(der_tlv(0x30, &indicator));
    let mut tbs_body: Vec<u8> = items.concat();
    tbs_body.extend(der_tlv(0xa0, &der_tlv(0x30, &exts)));
    let new_tbs = der_tlv(0x30, &tbs_body);
    let sig = signer.key.sign(&new_tbs).map_err(build_err)?;
    let mut bits = vec![0u8];
    bits.extend(sig);
    let mut out = new_tbs;
    out.extend(alg);
    out.extend(der_tlv(0x03, &bits));
    Ok(der_tlv(0x30, &out))
}

/// A private key as OpenBao returns it: by default the key type's own encoding (PKCS#1
/// `RSA PRIVATE KEY`, SEC1 `EC PRIVATE KEY`; Ed25519 has only PKCS#8), or PKCS#8 when
/// `private_key_format=pkcs8`; PEM, or base64 DER when the response `format` is `der`.
pub fn export_private_key(pkcs8_pem: &str, pkcs8: bool, der: bool) -> Result<String, X509Error> {
    use aws_lc_rs::encoding::AsDer as _;
    use base64::Engine as _;
    let (kp, kt) = load_key(pkcs8_pem)?;
    let p8 = kp.serialize_der();
    let (label, bytes) = match (kt, pkcs8) {
        (KeyType::Ed25519, _) | (_, true) => ("PRIVATE KEY", p8),
        (KeyType::Rsa(_), false) => {
            // PrivateKeyInfo ::= SEQUENCE { version, algorithm, privateKey OCTET STRING }: the
            // octet string holds the PKCS#1 RSAPrivateKey.
            let (_, _, hdr) = der_element(&p8)?;
            let mut at = hdr;
            let mut inner = None;
            for _ in 0..3 {
                let (tag, len, h) = der_element(&p8[at..])?;
                if tag == 0x04 {
                    inner = Some(p8[at + h..at + len].to_vec());
                }
                at += len;
            }
            let inner = inner.ok_or_else(|| X509Error::Build("malformed PKCS#8 RSA key".into()))?;
            ("RSA PRIVATE KEY", inner)
        }
        (KeyType::Ec(bits), false) => {
            let alg = match bits {
                384 => &aws_lc_rs::signature::ECDSA_P384_SHA384_ASN1_SIGNING,
                521 => &aws_lc_rs::signature::ECDSA_P521_SHA512_ASN1_SIGNING,
                _ => &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            };
            let ec = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(alg, &p8)
                .map_err(|_| X509Error::Build("cannot re-encode the EC key".into()))?;
            let sec1 = ec
                .private_key()
                .as_der()
                .map_err(|_| X509Error::Build("cannot re-encode the EC key".into()))?;
            ("EC PRIVATE KEY", sec1.as_ref().to_vec())
        }
    };
    Ok(if der {
        base64::engine::general_purpose::STANDARD.encode(&bytes)
    } else {
        pem_block(label, &bytes)
    })
}
