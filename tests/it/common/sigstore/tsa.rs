//! An RFC 3161 timestamp authority, as sigstore's timestamp-authority serves one:
//! `POST /api/v1/timestamp` with a DER `TimeStampReq` (`application/timestamp-query`) answers a
//! DER `TimeStampResp` (`application/timestamp-reply`): status granted and a CMS SignedData
//! token over the `TSTInfo` (the request's message imprint and nonce, the time now), signed by a
//! timestamping leaf whose certificate is included when asked (`certReq`).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use cms::builder::{SignedDataBuilder, SignerInfoBuilder};
use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::signed_data::{EncapsulatedContentInfo, SignerIdentifier};
use p256::ecdsa::DerSignature;
use x509_cert::Certificate;
use x509_cert::der::asn1::{GeneralizedTime, Int, OctetString};
use x509_cert::der::oid::ObjectIdentifier;
use x509_cert::der::{Any, Decode as _, Encode as _};
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_tsp::{TimeStampReq, TimeStampResp, TspVersion, TstInfo};

use super::fulcio::Ca;
use super::http::{Request, Response, serve};
use super::keys::Key;

const TST_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const POLICY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.2");

pub struct Tsa {
    pub url: String,
    pub ca: Arc<Ca>,
    pub leaf: Arc<Certificate>,
}

fn stamp(request: &[u8], key: &Key, leaf: &Certificate) -> Result<Vec<u8>, String> {
    let request = TimeStampReq::from_der(request).map_err(|e| e.to_string())?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let serial: [u8; 8] = rand::random();
    let info = TstInfo {
        version: TspVersion::V1,
        policy: POLICY,
        message_imprint: request.message_imprint.clone(),
        serial_number: Int::new(&[&[0x01][..], &serial].concat()).unwrap(),
        gen_time: GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(
            now.as_secs(),
        ))
        .unwrap(),
        accuracy: None,
        ordering: false,
        nonce: request.nonce.clone(),
        tsa: None,
        extensions: None,
    };
    let content = EncapsulatedContentInfo {
        econtent_type: TST_INFO,
        econtent: Some(
            Any::encode_from(&OctetString::new(info.to_der().unwrap()).unwrap()).unwrap(),
        ),
    };
    let sha256 = AlgorithmIdentifierOwned {
        oid: SHA256,
        parameters: None,
    };
    let sid = SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
        issuer: leaf.tbs_certificate.issuer.clone(),
        serial_number: leaf.tbs_certificate.serial_number.clone(),
    });
    let signer = SignerInfoBuilder::new(&key.signing, sid, sha256.clone(), &content, None)
        .map_err(|e| e.to_string())?;
    let mut builder = SignedDataBuilder::new(&content);
    builder
        .add_digest_algorithm(sha256)
        .map_err(|e| e.to_string())?;
    if request.cert_req {
        builder
            .add_certificate(CertificateChoices::Certificate(leaf.clone()))
            .map_err(|e| e.to_string())?;
    }
    let token = builder
        .add_signer_info::<_, DerSignature>(signer)
        .map_err(|e| e.to_string())?
        .build()
        .map_err(|e| e.to_string())?;
    let response = TimeStampResp {
        status: cmpv2::status::PkiStatusInfo {
            status: cmpv2::status::PkiStatus::Accepted,
            status_string: None,
            fail_info: None,
        },
        time_stamp_token: Some(token),
    };
    response.to_der().map_err(|e| e.to_string())
}

impl Tsa {
    pub fn start() -> Self {
        let ca = Arc::new(Ca::new("tsa.sigstore.test"));
        let key = Arc::new(Key::generate());
        let leaf = Arc::new(ca.issue_timestamping(&key));
        let l = leaf.clone();
        let url = serve(move |request: Request| {
            if request.method != "POST" || request.target != "/api/v1/timestamp" {
                return Response::error(404, "not found");
            }
            match stamp(&request.body, &key, &l) {
                Ok(body) => Response {
                    status: 200,
                    content_type: "application/timestamp-reply",
                    body,
                },
                Err(e) => Response::error(400, &format!("bad timestamp request: {e}")),
            }
        });
        Tsa { url, ca, leaf }
    }

    pub fn timestamp_url(&self) -> String {
        format!("{}/api/v1/timestamp", self.url)
    }

    /// The chain for the trusted root: the timestamping leaf, then the root.
    pub fn chain_der(&self) -> Vec<Vec<u8>> {
        vec![self.leaf.to_der().unwrap(), self.ca.der.clone()]
    }
}
