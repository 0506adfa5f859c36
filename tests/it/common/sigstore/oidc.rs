//! The runner's OIDC token endpoint, as GitHub Actions serves it under `permissions: id-token:
//! write`: `GET $ACTIONS_ID_TOKEN_REQUEST_URL&audience=AUD` with
//! `Authorization: bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN` answers `{"value": "<jwt>"}`, a JWT
//! signed ES256 carrying GitHub's claims (`sub` `repo:ORG/REPO:ref:REF`, `repository`,
//! `workflow_ref`, `job_workflow_ref`, `sha`, ...).

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use p256::pkcs8::EncodePrivateKey as _;
use serde_json::{Value, json};

use super::http::{Request, Response, serve};
use super::keys::Key;

/// GitHub Actions' token issuer.
pub const ISSUER: &str = "https://token.actions.githubusercontent.com";

/// What the job is: the claims GitHub puts in its tokens.
#[derive(Debug, Clone)]
pub struct Job {
    /// `ORG/REPO`.
    pub repository: String,
    /// `refs/tags/v1.2.3`.
    pub git_ref: String,
    pub sha: String,
    /// The workflow file in the repository, `.github/workflows/release.yml`.
    pub workflow_path: String,
    pub event_name: String,
    /// `public`, `private` or `internal`.
    pub visibility: String,
    pub run_id: String,
    pub run_attempt: String,
    pub runner_environment: String,
    /// The reusable workflow the job runs (`ORG/REPO/.github/workflows/x.yml@ref`, its
    /// `job_workflow_ref`, the certificate's SAN) when it is not the repository's own.
    pub called_workflow: Option<String>,
}

impl Job {
    /// A tag push of `repository` at `sha`, by `.github/workflows/release.yml`.
    pub fn tag_push(repository: &str, tag: &str, sha: &str) -> Self {
        Job {
            repository: repository.to_owned(),
            git_ref: format!("refs/tags/{tag}"),
            sha: sha.to_owned(),
            workflow_path: ".github/workflows/release.yml".to_owned(),
            event_name: "push".to_owned(),
            visibility: "public".to_owned(),
            run_id: "4242".to_owned(),
            run_attempt: "1".to_owned(),
            runner_environment: "github-hosted".to_owned(),
            called_workflow: None,
        }
    }

    /// This job calling the reusable workflow `workflow_ref` of another repository
    /// (`ORG/REPO/.github/workflows/x.yml@ref`), which then names the certificate's SAN.
    pub fn calling(self, workflow_ref: &str) -> Self {
        Job {
            called_workflow: Some(workflow_ref.to_owned()),
            ..self
        }
    }

    /// `ORG/REPO/.github/workflows/release.yml@refs/tags/v1.2.3`.
    pub fn workflow_ref(&self) -> String {
        format!(
            "{}/{}@{}",
            self.repository, self.workflow_path, self.git_ref
        )
    }

    /// The certificate identity Fulcio gives this job: `https://github.com/` + job_workflow_ref.
    pub fn identity(&self) -> String {
        let job_workflow = self.called_workflow.clone();
        format!(
            "https://github.com/{}",
            job_workflow.unwrap_or_else(|| self.workflow_ref())
        )
    }

    fn claims(&self, audience: &str) -> Value {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let owner = self.repository.split('/').next().unwrap_or_default();
        json!({
            "jti": format!("{:032x}", rand::random::<u128>()),
            "sub": format!("repo:{}:ref:{}", self.repository, self.git_ref),
            "aud": audience,
            "ref": self.git_ref,
            "sha": self.sha,
            "repository": self.repository,
            "repository_owner": owner,
            "repository_owner_id": "1",
            "repository_id": "1296269",
            "repository_visibility": self.visibility,
            "run_id": self.run_id,
            "run_number": "7",
            "run_attempt": self.run_attempt,
            "runner_environment": self.runner_environment,
            "actor": "mona",
            "actor_id": "2",
            "workflow": "Release",
            "workflow_ref": self.workflow_ref(),
            "workflow_sha": self.sha,
            "job_workflow_ref": self.called_workflow.clone().unwrap_or_else(|| self.workflow_ref()),
            "job_workflow_sha": self.sha,
            "head_ref": "",
            "base_ref": "",
            "event_name": self.event_name,
            "ref_type": if self.git_ref.starts_with("refs/tags/") { "tag" } else { "branch" },
            "ref_protected": "false",
            "iss": ISSUER,
            "nbf": now - 5,
            "iat": now - 5,
            "exp": now + 300,
        })
    }
}

/// The token endpoint. It answers only the request token it was started with.
pub struct TokenEndpoint {
    /// `ACTIONS_ID_TOKEN_REQUEST_URL` (ends in `?api-version=2.0`, as the runner's does).
    pub request_url: String,
    /// `ACTIONS_ID_TOKEN_REQUEST_TOKEN`: a secret.
    pub request_token: String,
    key: Arc<Key>,
    /// Every JWT it handed out: secrets the product must never print.
    pub issued: Arc<Mutex<Vec<String>>>,
    /// The audiences asked for.
    pub audiences: Arc<Mutex<Vec<String>>>,
}

impl TokenEndpoint {
    pub fn start(job: Job) -> Self {
        let key = Arc::new(Key::generate());
        let request_token = format!("runner-request-token-{:016x}", rand::random::<u64>());
        let issued = Arc::new(Mutex::new(Vec::new()));
        let audiences = Arc::new(Mutex::new(Vec::new()));
        let (k, t, i, a) = (
            key.clone(),
            request_token.clone(),
            issued.clone(),
            audiences.clone(),
        );
        let encoding = EncodingKey::from_ec_der(k.signing.to_pkcs8_der().unwrap().as_bytes());
        let url = serve(move |request: Request| {
            let authorized = request
                .header("authorization")
                .is_some_and(|v| v.eq_ignore_ascii_case(&format!("bearer {t}")));
            if request.method != "GET" || !request.target.starts_with("/_apis/oidc/token") {
                return Response::error(404, "not found");
            }
            if !authorized {
                return Response::error(401, "bad request token");
            }
            let audience = request
                .target
                .split(['?', '&'])
                .find_map(|pair| pair.strip_prefix("audience="))
                .unwrap_or("https://github.com/acme")
                .to_owned();
            a.lock().unwrap().push(audience.clone());
            let mut header = Header::new(Algorithm::ES256);
            header.kid = Some("test-actions-key".to_owned());
            let jwt = jsonwebtoken::encode(&header, &job.claims(&audience), &encoding).unwrap();
            i.lock().unwrap().push(jwt.clone());
            Response::json(200, &json!({"value": jwt}))
        });
        TokenEndpoint {
            request_url: format!("{url}/_apis/oidc/token?api-version=2.0"),
            request_token,
            key,
            issued,
            audiences,
        }
    }

    /// The runner's two variables, as a job with `id-token: write` has them.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            (
                "ACTIONS_ID_TOKEN_REQUEST_URL".to_owned(),
                self.request_url.clone(),
            ),
            (
                "ACTIONS_ID_TOKEN_REQUEST_TOKEN".to_owned(),
                self.request_token.clone(),
            ),
        ]
    }

    /// A verifier of the tokens this endpoint signs (what Fulcio reads from the issuer's JWKS).
    pub fn verifier(&self) -> TokenVerifier {
        use base64::Engine as _;
        let point = self.key.verifying().to_encoded_point(false);
        let b64url = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        TokenVerifier {
            key: DecodingKey::from_ec_components(
                &b64url(point.x().unwrap()),
                &b64url(point.y().unwrap()),
            )
            .unwrap(),
        }
    }
}

/// Checks a token's signature, issuer, audience `sigstore` and expiry; yields its claims.
#[derive(Clone)]
pub struct TokenVerifier {
    key: DecodingKey,
}

impl TokenVerifier {
    pub fn claims(&self, jwt: &str) -> Result<Value, String> {
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_audience(&["sigstore"]);
        validation.set_issuer(&[ISSUER]);
        jsonwebtoken::decode::<Value>(jwt, &self.key, &validation)
            .map(|data| data.claims)
            .map_err(|e| e.to_string())
    }
}
