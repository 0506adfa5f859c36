//! Secrets in the errors of the read commands in action mode: a registry that quotes the
//! credentials it was sent in its refusal has them redacted in the `::error::` line, as push
//! has, in every form they travel in (the password, `user:password` and its base64, a bearer
//! token the token service handed out), and each form is masked for the runner.

use crate::common;

use std::io::{BufReader, Write};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use common::fakes::read_head;
use common::leaks::{assert_no_secrets, loud, masked};
use common::*;
use serde_json::json;

#[test]
fn action_read_errors_never_show_a_password() {
    let host = crate::hostile_output::echoing_registry();
    let ws = Workspace::new();
    let password = "Sup3r-s3cret-pw";
    let image = format!("{host}/acme/app:v1");
    for command in ["pull", "verify"] {
        let run = ws.run_action(&ws.action_env(&[
            ("command", command),
            ("image", &image),
            ("insecure", "true"),
            ("username", "bot"),
            ("password", password),
        ]));
        assert!(!run.success(), "{run:?}");
        let errors = run.error_lines();
        assert_eq!(errors.len(), 1, "{run:?}");
        assert!(
            errors[0].contains("no user matches ***"),
            "the registry's words, redacted: {run:?}"
        );
        assert!(
            run.all()
                .lines()
                .all(|l| l.starts_with("::add-mask::") || !l.contains(password)),
            "only the mask lines: {run:?}"
        );
    }
}

/// How the fake asks for credentials.
#[derive(Clone, Copy, PartialEq)]
enum Challenge {
    /// `WWW-Authenticate: Basic`: the credentials go with every request.
    Basic,
    /// `WWW-Authenticate: Bearer`: its token service hands out a token for them.
    Bearer,
}

/// A registry that refuses every read with `403` and a message quoting the `Authorization`
/// header it was sent, as a careless registry's error pages do: a basic header in every base64
/// form, or the bearer token its own token service handed out (recorded in `issued`).
fn quoting_registry(challenge: Challenge, issued: Arc<Mutex<Vec<String>>>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let realm = format!("http://{host}/token");
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let Some((request_line, headers)) = read_head(&mut reader) else {
                continue;
            };
            let sent = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
                .map(|(_, v)| v.clone());
            let to_token = request_line.contains(" /token");
            let bearer = sent.as_deref().is_some_and(|s| s.starts_with("Bearer "));
            let (status, extra, body) = if challenge == Challenge::Basic && sent.is_none() {
                (
                    "401 Unauthorized",
                    "WWW-Authenticate: Basic realm=\"registry\"\r\n".to_owned(),
                    "{}".to_owned(),
                )
            } else if challenge == Challenge::Bearer && to_token {
                let token = format!("issued-token-{n}-{}", std::process::id());
                issued.lock().unwrap().push(token.clone());
                (
                    "200 OK",
                    String::new(),
                    json!({ "token": token }).to_string(),
                )
            } else if challenge == Challenge::Bearer && !bearer {
                (
                    "401 Unauthorized",
                    format!("WWW-Authenticate: Bearer realm=\"{realm}\",service=\"fake\"\r\n"),
                    "{}".to_owned(),
                )
            } else {
                let sent = sent.unwrap_or_default();
                let mut quoted = sent.clone();
                if let Some(decoded) = sent
                    .strip_prefix("Basic ")
                    .and_then(|b| STANDARD.decode(b).ok())
                {
                    for form in [
                        STANDARD_NO_PAD.encode(&decoded),
                        URL_SAFE.encode(&decoded),
                        URL_SAFE_NO_PAD.encode(&decoded),
                    ] {
                        quoted.push_str(&format!(", or {form}"));
                    }
                }
                let message = format!("you sent Authorization: {quoted}");
                (
                    "403 Forbidden",
                    String::new(),
                    json!({"errors": [{"code": "DENIED", "message": message}]}).to_string(),
                )
            };
            let response = format!(
                "HTTP/1.1 {status}\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes());
            let _ = stream.flush();
        }
    });
    host
}

#[test]
fn a_quoted_authorization_header_is_redacted_and_masked_in_every_form() {
    // `bot:pass>?>-7` in base64 has `+`, `/` or `-`, `_` and padding: four different forms.
    let (user, password) = ("bot", "pass>?>-7");
    let pair = format!("{user}:{password}");
    let forms = [
        STANDARD.encode(&pair),
        STANDARD_NO_PAD.encode(&pair),
        URL_SAFE.encode(&pair),
        URL_SAFE_NO_PAD.encode(&pair),
    ];
    assert_eq!(
        forms
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        4,
        "{forms:?}"
    );
    let issued = Arc::new(Mutex::new(Vec::new()));
    for challenge in [Challenge::Basic, Challenge::Bearer] {
        let host = quoting_registry(challenge, issued.clone());
        let image = format!("{host}/acme/app:v1");
        for command in ["pull", "verify"] {
            let ws = Workspace::new();
            let run = ws.run_action(&loud(ws.action_env(&[
                ("command", command),
                ("image", &image),
                ("insecure", "true"),
                ("username", user),
                ("password", password),
            ])));
            assert!(!run.success(), "{run:?}");
            let error = run.error_lines().join("\n");
            assert!(
                error.contains("you sent Authorization: "),
                "the registry's words: {run:?}"
            );
            let tokens = issued.lock().unwrap().clone();
            let mut secrets: Vec<&str> = vec![password, &pair];
            secrets.extend(forms.iter().map(String::as_str));
            secrets.extend(tokens.iter().map(String::as_str));
            assert_no_secrets(&run, &ws, &secrets);
            for form in forms.iter().chain([&pair]) {
                assert!(masked(&run, form), "`{form}` is masked: {run:?}");
            }
            if challenge == Challenge::Bearer {
                let token = tokens
                    .last()
                    .unwrap_or_else(|| panic!("a token was handed out: {run:?}"));
                assert!(error.contains("Bearer ***"), "{run:?}");
                assert!(masked(&run, token), "the token is masked: {run:?}");
            }
        }
    }
}
