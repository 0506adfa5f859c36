//! Fulcio, as its v2 API documents it: `POST /api/v2/signingCert` with the OIDC token and a
//! public key with its proof of possession (a signature over the token's `sub`) answers
//! `{"signedCertificateEmbeddedSct": {"chain": {"certificates": [leaf, root]}}}`. The leaf is
//! short-lived (10 minutes), has an empty subject, the job's workflow as its URI SAN, GitHub's
//! OIDC extensions (1.3.6.1.4.1.57264.1.*: the deprecated raw ones and the DER UTF8String ones)
//! and an embedded SCT from a test CT log, signed over the precertificate TBS (the certificate
//! without the SCT extension, RFC 6962 3.2).

use std::str::FromStr as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{DerSignature, VerifyingKey};
use p256::pkcs8::{DecodePublicKey as _, EncodePublicKey as _};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tls_codec::{SerializeBytes as _, TlsByteVecU16};
use x509_cert::certificate::{Certificate, TbsCertificate, Version};
use x509_cert::der::asn1::{BitString, Ia5String, OctetString, UtcTime, Utf8StringRef};
use x509_cert::der::oid::ObjectIdentifier;
use x509_cert::der::{Decode as _, EncodePem as _};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::sct::{
    DigitallySigned, HashAlgorithm, LogId, SerializedSct, SignatureAlgorithm,
    SignatureAndHashAlgorithm, SignedCertificateTimestamp, SignedCertificateTimestampList,
    Version as SctVersion,
};
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages,
    SubjectAltName, SubjectKeyIdentifier,
};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::time::{Time, Validity};

use super::http::{Request, Response, serve};
use super::keys::{Key, b64, unb64};
use super::oidc::TokenVerifier;

const ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const CODE_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.3");
const TIME_STAMPING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.8");
const SCT_LIST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.11129.2.4.2");

/// Fulcio's certificate lifetime.
pub const CERT_LIFETIME: Duration = Duration::from_secs(600);

/// A certificate authority: a self-signed root that issues the leaves itself.
pub struct Ca {
    pub key: Key,
    pub name: Name,
    pub cert: Certificate,
    pub der: Vec<u8>,
}

fn now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap()
}

fn time(at: Duration) -> Time {
    Time::UtcTime(UtcTime::from_unix_duration(Duration::from_secs(at.as_secs())).unwrap())
}

fn ext(oid: ObjectIdentifier, critical: bool, value: Vec<u8>) -> Extension {
    Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(value).unwrap(),
    }
}

fn der(value: &impl x509_cert::der::Encode) -> Vec<u8> {
    value.to_der().unwrap()
}

fn key_identifier(spki_der: &[u8]) -> OctetString {
    OctetString::new(&Sha256::digest(spki_der)[..20]).unwrap()
}

fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    SerialNumber::new(&bytes).unwrap()
}

fn sign_tbs(key: &Key, tbs: TbsCertificate) -> Certificate {
    let signature = key.sign(&der(&tbs));
    Certificate {
        tbs_certificate: tbs,
        signature_algorithm: AlgorithmIdentifierOwned {
            oid: ECDSA_SHA256,
            parameters: None,
        },
        signature: BitString::from_bytes(&signature).unwrap(),
    }
}

impl Ca {
    /// A root CA named `common_name`, valid from an hour ago for a day.
    pub fn new(common_name: &str) -> Self {
        let key = Key::generate();
        let name = Name::from_str(&format!("CN={common_name},O=sigstore.test")).unwrap();
        let spki = key.spki_der();
        let tbs = TbsCertificate {
            version: Version::V3,
            serial_number: random_serial(),
            signature: AlgorithmIdentifierOwned {
                oid: ECDSA_SHA256,
                parameters: None,
            },
            issuer: name.clone(),
            validity: Validity {
                not_before: time(now() - Duration::from_secs(3600)),
                not_after: time(now() + Duration::from_secs(86400)),
            },
            subject: name.clone(),
            subject_public_key_info: SubjectPublicKeyInfoOwned::from_der(&spki).unwrap(),
            issuer_unique_id: None,
            subject_unique_id: None,
            extensions: Some(vec![
                ext(
                    ObjectIdentifier::new_unwrap("2.5.29.15"),
                    true,
                    der(&KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign)),
                ),
                ext(
                    ObjectIdentifier::new_unwrap("2.5.29.19"),
                    true,
                    der(&BasicConstraints {
                        ca: true,
                        path_len_constraint: Some(1),
                    }),
                ),
                ext(
                    ObjectIdentifier::new_unwrap("2.5.29.14"),
                    false,
                    der(&SubjectKeyIdentifier(key_identifier(&spki))),
                ),
            ]),
        };
        let cert = sign_tbs(&key, tbs);
        let der = der(&cert);
        Ca {
            key,
            name,
            cert,
            der,
        }
    }

    pub fn pem(&self) -> String {
        self.cert
            .to_pem(x509_cert::der::pem::LineEnding::LF)
            .unwrap()
    }

    /// Issues a code-signing leaf for `public_key` with `extensions` (beside key usage, EKU,
    /// key identifiers and the SAN), and an embedded SCT from `ct_log` when given.
    pub fn issue(
        &self,
        public_key: &SubjectPublicKeyInfoOwned,
        san_uri: &str,
        extensions: Vec<Extension>,
        not_before: Duration,
        ct_log: Option<&Key>,
    ) -> Certificate {
        let spki = der(public_key);
        let mut all = vec![
            ext(
                ObjectIdentifier::new_unwrap("2.5.29.15"),
                true,
                der(&KeyUsage(KeyUsages::DigitalSignature.into())),
            ),
            ext(
                ObjectIdentifier::new_unwrap("2.5.29.37"),
                false,
                der(&ExtendedKeyUsage(vec![CODE_SIGNING])),
            ),
            ext(
                ObjectIdentifier::new_unwrap("2.5.29.14"),
                false,
                der(&SubjectKeyIdentifier(key_identifier(&spki))),
            ),
            ext(
                ObjectIdentifier::new_unwrap("2.5.29.35"),
                false,
                der(&AuthorityKeyIdentifier {
                    key_identifier: Some(key_identifier(&self.key.spki_der())),
                    authority_cert_issuer: None,
                    authority_cert_serial_number: None,
                }),
            ),
            ext(
                ObjectIdentifier::new_unwrap("2.5.29.17"),
                true,
                der(&SubjectAltName(vec![
                    GeneralName::UniformResourceIdentifier(Ia5String::new(san_uri).unwrap()),
                ])),
            ),
        ];
        all.extend(extensions);
        let mut tbs = TbsCertificate {
            version: Version::V3,
            serial_number: random_serial(),
            signature: AlgorithmIdentifierOwned {
                oid: ECDSA_SHA256,
                parameters: None,
            },
            issuer: self.name.clone(),
            validity: Validity {
                not_before: time(not_before),
                not_after: time(not_before + CERT_LIFETIME),
            },
            subject: Name::default(),
            subject_public_key_info: public_key.clone(),
            issuer_unique_id: None,
            subject_unique_id: None,
            extensions: Some(all),
        };
        if let Some(log) = ct_log {
            let sct = precert_sct(log, &self.key.spki_der(), &der(&tbs));
            let list = SignedCertificateTimestampList::new(&[sct]).unwrap();
            tbs.extensions
                .as_mut()
                .unwrap()
                .push(ext(SCT_LIST, false, der(&list)));
        }
        sign_tbs(&self.key, tbs)
    }
}

impl Ca {
    /// A timestamping leaf for `key` (critical EKU id-kp-timeStamping, RFC 3161 2.3), valid
    /// as long as the CA.
    pub fn issue_timestamping(&self, key: &Key) -> Certificate {
        let spki = key.spki_der();
        let tbs = TbsCertificate {
            version: Version::V3,
            serial_number: random_serial(),
            signature: AlgorithmIdentifierOwned {
                oid: ECDSA_SHA256,
                parameters: None,
            },
            issuer: self.name.clone(),
            validity: self.cert.tbs_certificate.validity,
            subject: Name::from_str("CN=tsa leaf,O=sigstore.test").unwrap(),
            subject_public_key_info: SubjectPublicKeyInfoOwned::from_der(&spki).unwrap(),
            issuer_unique_id: None,
            subject_unique_id: None,
            extensions: Some(vec![
                ext(
                    ObjectIdentifier::new_unwrap("2.5.29.15"),
                    true,
                    der(&KeyUsage(KeyUsages::DigitalSignature.into())),
                ),
                ext(
                    ObjectIdentifier::new_unwrap("2.5.29.37"),
                    true,
                    der(&ExtendedKeyUsage(vec![TIME_STAMPING])),
                ),
                ext(
                    ObjectIdentifier::new_unwrap("2.5.29.14"),
                    false,
                    der(&SubjectKeyIdentifier(key_identifier(&spki))),
                ),
                ext(
                    ObjectIdentifier::new_unwrap("2.5.29.35"),
                    false,
                    der(&AuthorityKeyIdentifier {
                        key_identifier: Some(key_identifier(&self.key.spki_der())),
                        authority_cert_issuer: None,
                        authority_cert_serial_number: None,
                    }),
                ),
            ]),
        };
        sign_tbs(&self.key, tbs)
    }
}

/// An SCT from `log` for the precertificate `tbs` issued by the key `issuer_spki` (RFC 6962
/// 3.2: version, certificate_timestamp, timestamp, precert_entry, issuer key hash, TBS,
/// no extensions).
fn precert_sct(log: &Key, issuer_spki: &[u8], tbs: &[u8]) -> SerializedSct {
    let timestamp = now().as_millis() as u64;
    let mut signed = vec![0u8, 0u8];
    signed.extend_from_slice(&timestamp.to_be_bytes());
    signed.extend_from_slice(&1u16.to_be_bytes());
    signed.extend_from_slice(&Sha256::digest(issuer_spki));
    signed.extend_from_slice(&(tbs.len() as u32).to_be_bytes()[1..]);
    signed.extend_from_slice(tbs);
    signed.extend_from_slice(&0u16.to_be_bytes());
    let sct = SignedCertificateTimestamp {
        version: SctVersion::V1,
        log_id: LogId {
            key_id: log.key_id(),
        },
        timestamp,
        extensions: TlsByteVecU16::new(Vec::new()),
        signature: DigitallySigned {
            algorithm: SignatureAndHashAlgorithm {
                hash: HashAlgorithm::Sha256,
                signature: SignatureAlgorithm::Ecdsa,
            },
            signature: TlsByteVecU16::new(log.sign(&signed)),
        },
    };
    // Checks that the TLS encoding round-trips before it goes into the certificate.
    let _ = sct.tls_serialize().unwrap();
    SerializedSct::new(sct).unwrap()
}

/// The extensions Fulcio derives from a GitHub Actions token (Fulcio's docs/oid-info.md).
pub fn github_extensions(claims: &Value) -> Vec<Extension> {
    let claim = |name: &str| claims[name].as_str().unwrap_or_default().to_owned();
    let oid = |n: u32| ObjectIdentifier::new_unwrap(&format!("1.3.6.1.4.1.57264.1.{n}"));
    let server = "https://github.com";
    let repository = claim("repository");
    let raw = |n: u32, value: String| ext(oid(n), false, value.into_bytes());
    let utf8 =
        |n: u32, value: String| ext(oid(n), false, der(&Utf8StringRef::new(&value).unwrap()));
    vec![
        raw(1, claim("iss")),
        raw(2, claim("event_name")),
        raw(3, claim("sha")),
        raw(4, claim("workflow")),
        raw(5, repository.clone()),
        raw(6, claim("ref")),
        utf8(8, claim("iss")),
        utf8(9, format!("{server}/{}", claim("job_workflow_ref"))),
        utf8(10, claim("job_workflow_sha")),
        utf8(11, claim("runner_environment")),
        utf8(12, format!("{server}/{repository}")),
        utf8(13, claim("sha")),
        utf8(14, claim("ref")),
        utf8(15, claim("repository_id")),
        utf8(16, format!("{server}/{}", claim("repository_owner"))),
        utf8(17, claim("repository_owner_id")),
        utf8(18, format!("{server}/{}", claim("workflow_ref"))),
        utf8(19, claim("workflow_sha")),
        utf8(20, claim("event_name")),
        utf8(
            21,
            format!(
                "{server}/{repository}/actions/runs/{}/attempts/{}",
                claim("run_id"),
                claim("run_attempt")
            ),
        ),
        utf8(22, claim("repository_visibility")),
    ]
}

/// The running Fulcio.
pub struct Fulcio {
    pub url: String,
    pub ca: Arc<Ca>,
    pub ct_log: Arc<Key>,
    /// The leaves issued, DER.
    pub issued: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Fulcio {
    /// A Fulcio that trusts tokens `tokens` verifies; `ct_log` embeds an SCT when given (the
    /// public-good instance does, GitHub's does not).
    pub fn start(tokens: TokenVerifier, with_sct: bool) -> Self {
        let ca = Arc::new(Ca::new("fulcio.sigstore.test"));
        let ct_log = Arc::new(Key::generate());
        let issued = Arc::new(Mutex::new(Vec::new()));
        let (c, l, i) = (ca.clone(), ct_log.clone(), issued.clone());
        let url = serve(move |request: Request| {
            if request.method != "POST" || request.target != "/api/v2/signingCert" {
                return Response::error(404, "not found");
            }
            let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
                return Response::error(400, "request is not JSON");
            };
            // The token comes in the body or as a bearer header; the key as a public key with
            // a signature over `sub`, or as a CSR (its own signature is the proof).
            let bearer = request
                .header("authorization")
                .and_then(|v| v.get(7..))
                .unwrap_or_default()
                .to_owned();
            let token = body["credentials"]["oidcIdentityToken"]
                .as_str()
                .unwrap_or(&bearer);
            let claims = match tokens.claims(token) {
                Ok(claims) => claims,
                Err(e) => return Response::error(401, &format!("invalid identity token: {e}")),
            };
            let subject = claims["sub"].as_str().unwrap_or_default();
            let key = if let Some(csr) = body["certificateSigningRequest"].as_str() {
                match csr_key(csr) {
                    Some(key) => key,
                    None => {
                        return Response::error(400, "certificate signing request does not verify");
                    }
                }
            } else {
                let pem = body["publicKeyRequest"]["publicKey"]["content"]
                    .as_str()
                    .unwrap_or_default();
                let Ok(key) = VerifyingKey::from_public_key_pem(pem) else {
                    return Response::error(400, "public key is not a P-256 PEM key");
                };
                let proof = body["publicKeyRequest"]["proofOfPossession"]
                    .as_str()
                    .and_then(unb64)
                    .and_then(|sig| DerSignature::from_bytes(&sig).ok());
                if proof.is_none_or(|sig| key.verify(subject.as_bytes(), &sig).is_err()) {
                    return Response::error(400, "proof of possession does not verify");
                }
                key
            };
            let spki =
                SubjectPublicKeyInfoOwned::from_der(key.to_public_key_der().unwrap().as_bytes())
                    .unwrap();
            let san = format!(
                "https://github.com/{}",
                claims["job_workflow_ref"].as_str().unwrap_or_default()
            );
            let leaf = c.issue(
                &spki,
                &san,
                github_extensions(&claims),
                Duration::from_secs(now().as_secs()),
                with_sct.then_some(&*l),
            );
            i.lock().unwrap().push(der(&leaf));
            let leaf_pem = leaf.to_pem(x509_cert::der::pem::LineEnding::LF).unwrap();
            Response::json(
                201,
                &json!({"signedCertificateEmbeddedSct": {"chain": {"certificates": [leaf_pem, c.pem()]}}}),
            )
        });
        Fulcio {
            url,
            ca,
            ct_log,
            issued,
        }
    }
}

/// The key of a PEM CSR (base64 in the request) whose signature verifies with that key.
fn csr_key(csr_b64: &str) -> Option<VerifyingKey> {
    use x509_cert::der::{DecodePem as _, Encode as _};
    let pem = unb64(csr_b64)?;
    let csr = x509_cert::request::CertReq::from_pem(&pem).ok()?;
    let spki = csr.info.public_key.to_der().ok()?;
    let key = VerifyingKey::from_public_key_der(&spki).ok()?;
    let signature = DerSignature::from_bytes(csr.signature.raw_bytes()).ok()?;
    key.verify(&csr.info.to_der().ok()?, &signature).ok()?;
    Some(key)
}

/// Base64 of DER, for the trusted root.
pub fn raw_bytes(der: &[u8]) -> String {
    b64(der)
}
