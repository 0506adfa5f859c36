//! Stand-ins for the Sigstore services a keyless signature needs, which cannot run here: the
//! runner's OIDC token endpoint, Fulcio, a Rekor v1 log and a timestamp authority, each on a free
//! loopback port, and the client trust config (trusted root + signing config) that names them,
//! written to a file. The product reaches them only through that file and the runner's
//! variables, as it would reach a private Sigstore deployment.
//!
//! ```ignore
//! let sigstore = Sigstore::public_good(Job::tag_push("acme/multiply", "v1.2.3", COMMIT));
//! env.insert("INPUT_SIGSTORE-TRUST-CONFIG", sigstore.trust_config().display().to_string());
//! env.extend(sigstore.oidc_env());          // ACTIONS_ID_TOKEN_REQUEST_URL / _TOKEN
//! // ... run the action, then:
//! sigstore::python_verify(&["verify", "github", ...], &sigstore);
//! ```

pub mod fulcio;
pub mod http;
pub mod keys;
pub mod oidc;
pub mod rekor;
pub mod tsa;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

pub use oidc::{ISSUER, Job};

#[allow(unused_imports)]
use ISSUER as _;

use fulcio::Fulcio;
use keys::{Key, b64};
use oidc::TokenEndpoint;
use rekor::Rekor;
use tsa::Tsa;

/// The client trust config's media type.
pub const TRUST_CONFIG_MEDIA_TYPE: &str =
    "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json";

/// A running set of stand-ins and the trust config that names them.
pub struct Sigstore {
    pub job: Job,
    pub tokens: TokenEndpoint,
    pub fulcio: Fulcio,
    /// The transparency log (the public-good shape); `None` for GitHub's shape.
    pub rekor: Option<Rekor>,
    /// The timestamp authority (always in GitHub's shape; with the log in the public-good one).
    pub tsa: Option<Tsa>,
    dir: tempfile::TempDir,
    trust_config: PathBuf,
}

const VALID_FROM: &str = "2020-01-01T00:00:00Z";

fn public_key(key: &Key) -> Value {
    json!({
        "rawBytes": b64(&key.spki_der()),
        "keyDetails": "PKIX_ECDSA_P256_SHA_256",
        "validFor": {"start": VALID_FROM},
    })
}

fn log(url: &str, key: &Key) -> Value {
    json!({
        "baseUrl": url,
        "hashAlgorithm": "SHA2_256",
        "publicKey": public_key(key),
        "logId": {"keyId": b64(&key.key_id())},
    })
}

fn service(url: &str, version: u32) -> Value {
    json!({
        "url": url,
        "majorApiVersion": version,
        "validFor": {"start": VALID_FROM},
        "operator": "sigstore.test",
    })
}

impl Sigstore {
    /// The public-good shape: Fulcio with embedded SCTs, a Rekor v1 log, and a timestamp
    /// authority, as Sigstore's own signing config lists them.
    pub fn public_good(job: Job) -> Self {
        Self::start(job, true, true)
    }

    /// A public-good shape without a timestamp authority: the log's integrated time is the only
    /// time (what `sigstore-python` verifies on its own).
    pub fn public_good_without_tsa(job: Job) -> Self {
        Self::start(job, true, false)
    }

    /// GitHub's own instance's shape (private repositories): Fulcio without SCTs, a timestamp
    /// authority, no transparency log.
    pub fn github(job: Job) -> Self {
        Self::start(job, false, true)
    }

    fn start(job: Job, public_good: bool, with_tsa: bool) -> Self {
        let tokens = TokenEndpoint::start(job.clone());
        let fulcio = Fulcio::start(tokens.verifier(), public_good);
        let rekor = public_good.then(Rekor::start);
        let tsa = with_tsa.then(Tsa::start);
        let dir = tempfile::tempdir().unwrap();
        let trust_config = dir.path().join("trust-config.json");
        let sigstore = Sigstore {
            job,
            tokens,
            fulcio,
            rekor,
            tsa,
            dir,
            trust_config,
        };
        std::fs::write(
            &sigstore.trust_config,
            serde_json::to_vec_pretty(&sigstore.client_trust_config()).unwrap(),
        )
        .unwrap();
        sigstore
    }

    /// The trusted root (`application/vnd.dev.sigstore.trustedroot+json;version=0.1`).
    pub fn trusted_root(&self) -> Value {
        let ct_logs = if self.rekor.is_some() {
            vec![log(&self.fulcio.url, &self.fulcio.ct_log)]
        } else {
            Vec::new()
        };
        json!({
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": self.rekor.iter().map(|r| log(&r.url, &r.key)).collect::<Vec<_>>(),
            "certificateAuthorities": [{
                "subject": {"organization": "sigstore.test", "commonName": "fulcio.sigstore.test"},
                "uri": self.fulcio.url,
                "certChain": {"certificates": [{"rawBytes": b64(&self.fulcio.ca.der)}]},
                "validFor": {"start": VALID_FROM},
            }],
            "ctlogs": ct_logs,
            "timestampAuthorities": self.tsa.iter().map(|t| json!({
                "subject": {"organization": "sigstore.test", "commonName": "tsa.sigstore.test"},
                "uri": t.url,
                "certChain": {"certificates": t.chain_der().iter().map(|der| json!({"rawBytes": b64(der)})).collect::<Vec<_>>()},
                "validFor": {"start": VALID_FROM},
            })).collect::<Vec<_>>(),
        })
    }

    /// The signing config (`application/vnd.dev.sigstore.signingconfig.v0.2+json`).
    pub fn signing_config(&self) -> Value {
        json!({
            "mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
            "caUrls": [service(&self.fulcio.url, 1)],
            "oidcUrls": [],
            "rekorTlogUrls": self.rekor.iter().map(|r| service(&r.url, 1)).collect::<Vec<_>>(),
            "tsaUrls": self.tsa.iter().map(|t| service(&t.timestamp_url(), 1)).collect::<Vec<_>>(),
            "rekorTlogConfig": {"selector": "ANY"},
            "tsaConfig": {"selector": "ANY"},
        })
    }

    /// Both, as one client trust config.
    pub fn client_trust_config(&self) -> Value {
        json!({
            "mediaType": TRUST_CONFIG_MEDIA_TYPE,
            "trustedRoot": self.trusted_root(),
            "signingConfig": self.signing_config(),
        })
    }

    /// The client trust config file: what `sigstore-trust-config` (and `--trust-config`) takes.
    pub fn trust_config(&self) -> &Path {
        &self.trust_config
    }

    /// Writes `value` beside the trust config and returns its path.
    pub fn write(&self, name: &str, value: &Value) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
        path
    }

    /// The runner's variables of a job with `permissions: id-token: write`.
    pub fn oidc_env(&self) -> Vec<(String, String)> {
        self.tokens.env()
    }

    /// What must never be printed: the request token and every OIDC token handed out.
    pub fn secrets(&self) -> Vec<String> {
        let mut secrets = vec![self.tokens.request_token.clone()];
        secrets.extend(self.tokens.issued.lock().unwrap().iter().cloned());
        secrets
    }

    /// The certificate identity of the job's workflow (`https://github.com/ORG/REPO/...@REF`).
    pub fn identity(&self) -> String {
        self.job.identity()
    }
}

/// `python3 -m sigstore ARGS` (sigstore-python, installed by `.ci/run`), with the client trust
/// config inserted as `--trust-config`. Panics when sigstore-python is missing.
pub fn python_sigstore(sigstore: &Sigstore, args: &[&str]) -> Output {
    let version = Command::new("python3")
        .args(["-m", "sigstore", "--version"])
        .output()
        .expect("python3 is installed");
    assert!(
        version.status.success(),
        "sigstore-python is not installed (`.ci/run` installs it): {}",
        String::from_utf8_lossy(&version.stderr)
    );
    let config = sigstore.trust_config().display().to_string();
    Command::new("python3")
        .args(["-m", "sigstore", "--trust-config", &config])
        .args(args)
        .output()
        .unwrap()
}
