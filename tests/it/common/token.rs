//! A token issuer for the registry's `auth: token` mode, as Docker Hub, ghcr.io and ACR run
//! one: `GET /token?service=&scope=` with basic credentials, or `POST /token` with an OAuth2
//! refresh token (docker's identity token), answers a JWT signed RS256 by a key whose
//! self-signed certificate is the registry's `rootcertbundle`; the JWT header carries that
//! certificate as `x5c`, which is how distribution 2.8 finds the key.

use std::collections::BTreeMap;
use std::io::{BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use base64::Engine as _;

pub const SERVICE: &str = "test-registry";
pub const ISSUER: &str = "test-issuer";

pub struct TokenIssuer {
    pub port: u16,
    _dir: tempfile::TempDir,
    key: PathBuf,
    cert: PathBuf,
    x5c: String,
    users: Vec<(String, String)>,
    identity_tokens: Vec<(String, String)>,
    /// What was asked, without secrets: `GET basic bot`, `POST refresh_token`, `GET anonymous`.
    pub requests: Mutex<Vec<String>>,
    /// How many of the next requests get a gateway's 502 page instead of an answer.
    pub bad_gateway: std::sync::atomic::AtomicUsize,
    /// Whether a request without credentials gets a token for pulling, as a public
    /// repository's registry hands one out.
    pub anonymous_pull: std::sync::atomic::AtomicBool,
}

/// The subject of a token handed out without credentials.
const ANONYMOUS: &str = "anonymous";

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl TokenIssuer {
    /// Starts an issuer that knows `users` (name, password) and `identity_tokens`
    /// (refresh token, user name).
    pub fn start(users: &[(&str, &str)], identity_tokens: &[(&str, &str)]) -> Arc<Self> {
        let dir = tempfile::tempdir().unwrap();
        let (key, cert) = (dir.path().join("token.key"), dir.path().join("token.crt"));
        let status = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=test-token-issuer", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stderr(Stdio::null())
            .status()
            .expect("openssl is installed");
        assert!(status.success());
        let der = Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&cert)
            .output()
            .unwrap();
        assert!(der.status.success());
        let x5c = base64::engine::general_purpose::STANDARD.encode(&der.stdout);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let issuer = Arc::new(TokenIssuer {
            port,
            _dir: dir,
            key,
            cert,
            x5c,
            users: users
                .iter()
                .map(|(u, p)| (u.to_string(), p.to_string()))
                .collect(),
            identity_tokens: identity_tokens
                .iter()
                .map(|(t, u)| (t.to_string(), u.to_string()))
                .collect(),
            requests: Mutex::new(Vec::new()),
            bad_gateway: std::sync::atomic::AtomicUsize::new(0),
            anonymous_pull: std::sync::atomic::AtomicBool::new(false),
        });
        let weak = Arc::downgrade(&issuer);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Some(issuer) = weak.upgrade() else { break };
                if let Ok(stream) = stream {
                    std::thread::spawn(move || issuer.serve(stream));
                }
            }
        });
        issuer
    }

    /// The registry's `auth:` section for this issuer.
    pub fn registry_yaml(&self) -> String {
        format!(
            "auth:\n  token:\n    realm: http://127.0.0.1:{}/token\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
            self.port,
            self.cert.display()
        )
    }

    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    /// A signed JWT granting `subject` the `actions` on `repository`.
    pub fn mint(&self, subject: &str, repository: &str, actions: &[&str]) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]});
        let claims = serde_json::json!({
            "iss": ISSUER, "sub": subject, "aud": SERVICE,
            "exp": now + 300, "nbf": now - 10, "iat": now,
            "jti": format!("{now}-{}", rand_u64()),
            "access": [{"type": "repository", "name": repository, "actions": actions}],
        });
        let input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let mut child = Command::new("openssl")
            .args(["dgst", "-sha256", "-sign"])
            .arg(&self.key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        format!("{input}.{}", b64url(&out.stdout))
    }

    fn serve(&self, stream: TcpStream) {
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let Some((request_line, headers)) = super::fakes::read_head(&mut reader) else {
            return;
        };
        let headers: BTreeMap<String, String> = headers
            .into_iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value))
            .collect();
        let mut body = vec![
            0;
            headers
                .get("content-length")
                .and_then(|l| l.parse().ok())
                .unwrap_or(0)
        ];
        let _ = reader.read_exact(&mut body);
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or("").to_owned();
        let target = parts.next().unwrap_or("");
        let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
        let mut params = parse_form(query);
        params.extend(parse_form(&String::from_utf8_lossy(&body)));

        let subject = if method == "POST" {
            let grant = params.get("grant_type").cloned().unwrap_or_default();
            self.requests.lock().unwrap().push(format!("POST {grant}"));
            let token = params.get("refresh_token").cloned().unwrap_or_default();
            self.identity_tokens
                .iter()
                .find(|(t, _)| *t == token)
                .map(|(_, u)| u.clone())
        } else {
            match headers
                .get("authorization")
                .and_then(|a| a.strip_prefix("Basic "))
            {
                Some(b64) => {
                    let decoded = base64::engine::general_purpose::STANDARD
                        .decode(b64)
                        .ok()
                        .and_then(|b| String::from_utf8(b).ok())
                        .unwrap_or_default();
                    let (user, password) = decoded.split_once(':').unwrap_or(("", ""));
                    self.requests
                        .lock()
                        .unwrap()
                        .push(format!("GET basic {user}"));
                    self.users
                        .iter()
                        .any(|(u, p)| u == user && p == password)
                        .then(|| user.to_owned())
                }
                None => {
                    self.requests
                        .lock()
                        .unwrap()
                        .push("GET anonymous".to_owned());
                    self.anonymous_pull
                        .load(std::sync::atomic::Ordering::SeqCst)
                        .then(|| ANONYMOUS.to_owned())
                }
            }
        };
        let gateway_failure = self
            .bad_gateway
            .fetch_update(
                std::sync::atomic::Ordering::SeqCst,
                std::sync::atomic::Ordering::SeqCst,
                |n| n.checked_sub(1),
            )
            .is_ok();
        let response = match subject {
            _ if gateway_failure => {
                self.requests.lock().unwrap().push("502".to_owned());
                let body = "<html><body><h1>502 Bad Gateway</h1></body></html>";
                format!(
                    "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
            }
            Some(subject) => {
                let scope = params.get("scope").cloned().unwrap_or_default();
                // repository:<name>:<actions>
                let mut fields = scope.splitn(3, ':');
                let (_, repository, actions) = (
                    fields.next(),
                    fields.next().unwrap_or(""),
                    fields.next().unwrap_or(""),
                );
                let actions: Vec<&str> = actions
                    .split(',')
                    .filter(|a| !a.is_empty())
                    .filter(|a| subject != ANONYMOUS || *a == "pull")
                    .collect();
                let token = self.mint(&subject, repository, &actions);
                let body =
                    serde_json::json!({"token": token, "access_token": token, "expires_in": 300})
                        .to_string();
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
            }
            None => {
                let body = r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials","detail":null}]}"#;
                format!(
                    "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
            }
        };
        let mut stream = stream;
        let _ = stream.write_all(response.as_bytes());
    }
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    h.finish()
}

fn parse_form(text: &str) -> BTreeMap<String, String> {
    text.split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("00");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
