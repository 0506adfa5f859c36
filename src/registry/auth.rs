//! Which credentials to present to a registry, found in one documented order:
//!
//! 1. the `username` / `password` inputs;
//! 2. `$DOCKER_CONFIG/config.json`, then `$HOME/.docker/config.json`: `credHelpers` for the
//!    registry, then `credsStore`, then `auths` (base64 `auth`, or `identitytoken`); helpers are
//!    the `docker-credential-<name>` executables on `PATH`, asked as docker asks them;
//! 3. for ghcr.io, the `github-token` input with `GITHUB_ACTOR` as the user;
//! 4. anonymous.
//!
//! Everything is read from the [`Env`] map, never the process environment. Every secret found
//! becomes a [`Secret`], which masks it in all output the moment it is known.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;

use crate::context::Env;
use crate::error::{Error, Result};
use crate::input;
use crate::secret::Secret;

/// What to present to the registry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Credential {
    /// Nothing: public pulls, or registries without auth.
    #[default]
    Anonymous,
    /// A user and a password (or a personal access token), exchanged for a bearer token when
    /// the registry asks for one.
    Basic {
        /// The user name.
        username: String,
        /// The password or token.
        password: Secret,
    },
    /// A docker identity token: an OAuth2 refresh token exchanged for an access token.
    IdentityToken(Secret),
}

/// A credential and where it came from (for the log; never the secret itself).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolved {
    /// The credential.
    pub credential: Credential,
    /// Where it was found, e.g. "the `username` and `password` inputs".
    pub source: String,
}

impl Resolved {
    /// The user name, when there is one, for error messages.
    pub fn username(&self) -> Option<&str> {
        match &self.credential {
            Credential::Basic { username, .. } => Some(username),
            _ => None,
        }
    }
}

/// What the user gave: the `username`, `password` and `github-token` inputs, checked once,
/// when the request is parsed ([`Given::new`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Given {
    username: Option<String>,
    password: Option<Secret>,
    github_token: Option<Secret>,
}

impl Given {
    /// The inputs for `registry` (`host[:port]`): a password needs a user name, and a user name
    /// needs a password, except on ghcr.io with a `github-token`, which is then its password.
    pub fn new(
        username: Option<String>,
        password: Option<Secret>,
        github_token: Option<Secret>,
        registry: &str,
    ) -> Result<Self> {
        match (&username, &password) {
            (None, Some(_)) => Err(Error::input(
                input::USERNAME,
                "is required when `password` is given",
            )),
            (Some(_), None) if !(is_ghcr(registry) && github_token.is_some()) => Err(Error::input(
                input::PASSWORD,
                "is required when `username` is given",
            )),
            _ => Ok(Given {
                username,
                password,
                github_token,
            }),
        }
    }

    /// The `github-token` input, which also reads repository metadata through the GitHub API.
    pub fn github_token(&self) -> Option<&Secret> {
        self.github_token.as_ref()
    }

    /// Whether a user name (and with it a password, or ghcr.io's token) was given.
    pub fn has_user(&self) -> bool {
        self.username.is_some()
    }

    /// The `github-token` alone, for a registry the user name and password are not for.
    pub fn token_only(&self) -> Given {
        Given {
            github_token: self.github_token.clone(),
            ..Given::default()
        }
    }
}

/// The user name docker's helpers return for an identity token.
const TOKEN_USER: &str = "<token>";

/// How long a credential helper may take (it may wait on a keyring).
const HELPER_TIMEOUT: Duration = Duration::from_secs(30);

/// Finds the credential for `registry` (`host[:port]`) in the documented order. A user name
/// and password are also masked as they travel: `user:password` and its base64.
pub fn resolve(registry: &str, given: &Given, env: &Env) -> Result<Resolved> {
    let resolved = find(registry, given, env)?;
    if let Credential::Basic { username, password } = &resolved.credential {
        crate::secret::register_basic(username, password);
    }
    Ok(resolved)
}

fn find(registry: &str, given: &Given, env: &Env) -> Result<Resolved> {
    if let (Some(username), Some(password)) = (&given.username, &given.password) {
        return Ok(Resolved {
            credential: Credential::Basic {
                username: username.clone(),
                password: password.clone(),
            },
            source: "the `username` and `password` inputs".to_owned(),
        });
    }
    if given.username.is_none() {
        for path in docker_config_paths(env) {
            if let Some(found) = from_docker_config(&path, registry, env)? {
                return Ok(found);
            }
        }
    }
    if is_ghcr(registry)
        && let Some(token) = &given.github_token
    {
        let username = given
            .username
            .clone()
            .or_else(|| {
                env.get("GITHUB_ACTOR")
                    .filter(|a| !a.trim().is_empty())
                    .cloned()
            })
            .ok_or_else(|| {
                Error::input(
                    input::USERNAME,
                    "is required for ghcr.io when GITHUB_ACTOR is not set",
                )
            })?;
        return Ok(Resolved {
            credential: Credential::Basic {
                username,
                password: token.clone(),
            },
            source: "the `github-token` input".to_owned(),
        });
    }
    Ok(Resolved {
        credential: Credential::Anonymous,
        source: "no credentials (anonymous)".to_owned(),
    })
}

fn is_ghcr(registry: &str) -> bool {
    registry.eq_ignore_ascii_case("ghcr.io")
}

/// `$DOCKER_CONFIG/config.json`, then `$HOME/.docker/config.json`.
fn docker_config_paths(env: &Env) -> Vec<PathBuf> {
    let var = |k: &str| env.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let mut paths = Vec::new();
    if let Some(dir) = var("DOCKER_CONFIG") {
        paths.push(Path::new(dir).join("config.json"));
    }
    if let Some(home) = var("HOME") {
        let path = Path::new(home).join(".docker/config.json");
        if !paths.contains(&path) {
            paths.push(path);
        }
    }
    paths
}

/// The parts of docker's `config.json` that hold credentials.
#[derive(Debug, Default, Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: std::collections::BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: std::collections::BTreeMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

/// The registry's name as docker's files know it: `auths` keys may carry a scheme and a path
/// (`https://index.docker.io/v1/`), and Docker Hub goes by several names.
fn normalize(key: &str) -> String {
    let key = key
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = key.split('/').next().unwrap_or(key).to_ascii_lowercase();
    match host.as_str() {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "index.docker.io".to_owned()
        }
        _ => host,
    }
}

/// Whether `registry` is Docker Hub, under any of its names.
pub(crate) fn is_docker_hub(registry: &str) -> bool {
    normalize(registry) == "index.docker.io"
}

/// The server URL docker hands a credential helper for `registry`.
fn helper_server_url(registry: &str) -> String {
    if is_docker_hub(registry) {
        "https://index.docker.io/v1/".to_owned()
    } else {
        registry.to_owned()
    }
}

fn from_docker_config(path: &Path, registry: &str, env: &Env) -> Result<Option<Resolved>> {
    let file = match crate::files::open_nonblocking(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("read", path, e)),
    };
    let unreadable = |reason: String| Error::Credentials {
        source_name: format!("docker config `{}`", path.display()),
        reason: format!("{reason}; fix it or point DOCKER_CONFIG elsewhere"),
    };
    let text = crate::files::read_regular(file, path)
        .and_then(|bytes| String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_owned()))
        .map_err(unreadable)?;
    let config: DockerConfig = serde_json::from_str(&text).map_err(|e| Error::Credentials {
        source_name: format!("docker config `{}`", path.display()),
        reason: format!("not valid JSON ({e}); fix it or point DOCKER_CONFIG elsewhere"),
    })?;
    let wanted = normalize(registry);
    let origin = |what: &str| format!("{what} in `{}`", path.display());

    if let Some((_, helper)) = config
        .cred_helpers
        .iter()
        .find(|(k, _)| normalize(k) == wanted)
    {
        return ask_helper(
            helper,
            registry,
            env,
            &origin(&format!("credHelpers `{helper}`")),
        );
    }
    if let Some(store) = config.creds_store.as_deref().filter(|s| !s.is_empty())
        && let Some(found) = ask_helper(
            store,
            registry,
            env,
            &origin(&format!("credsStore `{store}`")),
        )?
    {
        return Ok(Some(found));
    }
    let Some((_, entry)) = config.auths.iter().find(|(k, _)| normalize(k) == wanted) else {
        return Ok(None);
    };
    let source = origin("`auths`");
    if let Some(token) = entry.identitytoken.as_deref().filter(|t| !t.is_empty()) {
        return Ok(Some(Resolved {
            credential: Credential::IdentityToken(Secret::new(token)),
            source: format!("an identity token in {source}"),
        }));
    }
    let (username, password) = match (&entry.auth, &entry.username, &entry.password) {
        (Some(auth), _, _) if !auth.is_empty() => decode_auth(auth).ok_or_else(|| Error::Credentials {
            source_name: format!("docker config `{}`", path.display()),
            reason: format!(
                "the `auth` for {registry} is not base64 of `user:password`; run `docker login {registry}` again"
            ),
        })?,
        (_, Some(u), Some(p)) => (u.clone(), Secret::new(p.as_str())),
        _ => return Ok(None),
    };
    Ok(Some(Resolved {
        credential: Credential::Basic { username, password },
        source,
    }))
}

fn decode_auth(auth: &str) -> Option<(String, Secret)> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), Secret::new(password)))
}

/// Asks `docker-credential-<helper> get` for `registry`'s credentials, as docker does: the
/// server URL on stdin, `{"Username","Secret"}` on stdout. `None` when it has none.
fn ask_helper(helper: &str, registry: &str, env: &Env, origin: &str) -> Result<Option<Resolved>> {
    let program = format!("docker-credential-{helper}");
    let failure = |reason: String| Error::Credentials {
        source_name: format!("credential helper `{program}` (named by {origin})"),
        reason,
    };
    let executable = find_on_path(&program, env).ok_or_else(|| {
        failure("not on PATH; install it or remove it from the docker config".to_owned())
    })?;
    let mut child = Command::new(&executable)
        .arg("get")
        .env_clear()
        .envs(env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failure(format!("cannot start: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(helper_server_url(registry).as_bytes());
    }
    let deadline = Instant::now() + HELPER_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(failure(format!(
                    "no answer within {} seconds",
                    HELPER_TIMEOUT.as_secs()
                )));
            }
        }
    }
    let output = child
        .wait_with_output()
        .map_err(|e| failure(format!("cannot read its answer: {e}")))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        if stdout.contains("credentials not found") {
            return Ok(None);
        }
        // The helper's own words, without anything it echoed back that could be a secret.
        let said = String::from_utf8_lossy(&output.stderr);
        let said = said
            .lines()
            .chain(stdout.lines())
            .find(|l| !l.trim().is_empty());
        return Err(failure(format!(
            "failed for {registry} ({})",
            said.map(str::trim).unwrap_or("no message")
        )));
    }
    #[derive(Deserialize)]
    struct Answer {
        #[serde(rename = "Username", default)]
        username: String,
        #[serde(rename = "Secret", default)]
        secret: String,
    }
    let answer: Answer = serde_json::from_str(stdout.trim())
        .map_err(|_| failure("its answer is not `{\"Username\",\"Secret\"}` JSON".to_owned()))?;
    if answer.secret.is_empty() {
        return Ok(None);
    }
    let credential = if answer.username == TOKEN_USER {
        Credential::IdentityToken(Secret::new(answer.secret))
    } else {
        Credential::Basic {
            username: answer.username,
            password: Secret::new(answer.secret),
        }
    };
    Ok(Some(Resolved {
        credential,
        source: origin.to_owned(),
    }))
}

/// `program` in the env map's `PATH`.
fn find_on_path(program: &str, env: &Env) -> Option<PathBuf> {
    let path = env.get("PATH")?;
    std::env::split_paths(path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_with(dir: &Path, pairs: &[(&str, &str)]) -> Env {
        let mut env: Env = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        env.insert("HOME".into(), dir.join("home").display().to_string());
        env
    }

    fn write_config(dir: &Path, json: &str) -> PathBuf {
        let path = dir.join("home/.docker/config.json");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, json).unwrap();
        path
    }

    fn basic(user: &str, password: &str) -> Credential {
        Credential::Basic {
            username: user.into(),
            password: Secret::new(password),
        }
    }

    #[test]
    fn inputs_come_first() {
        let dir = tempfile::tempdir().unwrap();
        write_config(
            dir.path(),
            r#"{"auths":{"ghcr.io":{"auth":"ZnJvbTpmaWxl"}}}"#,
        );
        let given = Given::new(
            Some("bot".into()),
            Some(Secret::new("pw-input")),
            Some(Secret::new("gh-token")),
            "ghcr.io",
        )
        .unwrap();
        let r = resolve("ghcr.io", &given, &env_with(dir.path(), &[])).unwrap();
        assert_eq!(r.credential, basic("bot", "pw-input"));
    }

    #[test]
    fn auths_with_base64_and_docker_hub_aliases() {
        let dir = tempfile::tempdir().unwrap();
        // "from:file" and "hub:pw"
        write_config(
            dir.path(),
            r#"{"auths":{"https://ghcr.io":{"auth":"ZnJvbTpmaWxl"},"https://index.docker.io/v1/":{"auth":"aHViOnB3cHc="}}}"#,
        );
        let env = env_with(dir.path(), &[]);
        let r = resolve("ghcr.io", &Given::default(), &env).unwrap();
        assert_eq!(r.credential, basic("from", "file"));
        assert!(r.source.contains("config.json"), "{}", r.source);
        let hub = resolve("index.docker.io", &Given::default(), &env).unwrap();
        assert_eq!(hub.credential, basic("hub", "pwpw"));
        let none = resolve("quay.io", &Given::default(), &env).unwrap();
        assert_eq!(none.credential, Credential::Anonymous);
    }

    #[test]
    fn docker_config_env_comes_before_home() {
        let dir = tempfile::tempdir().unwrap();
        write_config(
            dir.path(),
            r#"{"auths":{"r.example":{"auth":"aG9tZTpob21l"}}}"#,
        );
        let other = dir.path().join("dc");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(
            other.join("config.json"),
            r#"{"auths":{"r.example":{"identitytoken":"refresh-me-please"}}}"#,
        )
        .unwrap();
        let env = env_with(dir.path(), &[("DOCKER_CONFIG", other.to_str().unwrap())]);
        let r = resolve("r.example", &Given::default(), &env).unwrap();
        assert_eq!(
            r.credential,
            Credential::IdentityToken(Secret::new("refresh-me-please"))
        );
        // Not in DOCKER_CONFIG: falls back to HOME.
        std::fs::write(other.join("config.json"), "{}").unwrap();
        let r = resolve("r.example", &Given::default(), &env).unwrap();
        assert_eq!(r.credential, basic("home", "home"));
    }

    #[test]
    fn ghcr_falls_back_to_the_github_token() {
        let dir = tempfile::tempdir().unwrap();
        let env = env_with(dir.path(), &[("GITHUB_ACTOR", "octocat")]);
        let token = || Some(Secret::new("ghs_token"));
        let given = Given::new(None, None, token(), "ghcr.io").unwrap();
        let r = resolve("ghcr.io", &given, &env).unwrap();
        assert_eq!(r.credential, basic("octocat", "ghs_token"));
        // Only for ghcr.io.
        let other = resolve("quay.io", &given, &env).unwrap();
        assert_eq!(other.credential, Credential::Anonymous);
        // A username alone takes the token as its password on ghcr.io, and is an error elsewhere.
        let with_user = Given::new(Some("bot".into()), None, token(), "ghcr.io").unwrap();
        assert_eq!(
            resolve("ghcr.io", &with_user, &env).unwrap().credential,
            basic("bot", "ghs_token")
        );
        assert!(
            Given::new(Some("bot".into()), None, token(), "quay.io")
                .unwrap_err()
                .to_string()
                .starts_with("input `password`: is required when `username` is given")
        );
        assert!(
            Given::new(None, Some(Secret::new("pw")), token(), "ghcr.io")
                .unwrap_err()
                .to_string()
                .starts_with("input `username`: is required when `password` is given")
        );
    }

    #[test]
    fn broken_configs_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_config(dir.path(), "{not json");
        let err = resolve("ghcr.io", &Given::default(), &env_with(dir.path(), &[])).unwrap_err();
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        write_config(dir.path(), r#"{"auths":{"ghcr.io":{"auth":"!!!"}}}"#);
        let err = resolve("ghcr.io", &Given::default(), &env_with(dir.path(), &[])).unwrap_err();
        assert!(err.to_string().contains("docker login ghcr.io"), "{err}");
        write_config(
            dir.path(),
            r#"{"credHelpers":{"ghcr.io":"nonexistent-helper"}}"#,
        );
        let err = resolve(
            "ghcr.io",
            &Given::default(),
            &env_with(dir.path(), &[("PATH", "/nonexistent")]),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("docker-credential-nonexistent-helper"),
            "{err}"
        );
        assert!(err.to_string().contains("not on PATH"), "{err}");
    }

    #[test]
    fn normalizes_registry_keys() {
        assert_eq!(normalize("https://index.docker.io/v1/"), "index.docker.io");
        assert_eq!(normalize("docker.io"), "index.docker.io");
        assert_eq!(normalize("http://localhost:5000"), "localhost:5000");
        assert_eq!(
            helper_server_url("docker.io"),
            "https://index.docker.io/v1/"
        );
        assert_eq!(helper_server_url("ghcr.io"), "ghcr.io");
        for hub in [
            "index.docker.io",
            "registry-1.docker.io",
            "registry.hub.docker.com",
        ] {
            assert!(is_docker_hub(hub), "{hub}");
        }
        assert!(!is_docker_hub("ghcr.io"));
    }
}
