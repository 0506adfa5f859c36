//! A stand-in for the GitHub REST API (which cannot run here), on a free loopback port. It
//! answers every request with one recorded response shape and records what it was asked.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the fake answers.
#[derive(Debug, Clone)]
pub enum Answer {
    /// This status with this JSON body.
    Json(u16, String),
    /// The first route whose text the request line contains answers; else 404.
    Routes(Vec<(&'static str, u16, String)>),
    /// Accepts the connection and never answers.
    Hang,
}

/// A request the fake received: its request line and headers (lower-cased names).
#[derive(Debug, Clone)]
pub struct Seen {
    pub line: String,
    pub headers: Vec<(String, String)>,
}

pub struct FakeGithub {
    pub port: u16,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl FakeGithub {
    pub fn start(answer: Answer) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let answer = answer.clone();
                let record = record.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut line = String::new();
                    if reader.read_line(&mut line).is_err() {
                        return;
                    }
                    let mut headers = Vec::new();
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                            break;
                        }
                        if let Some((k, v)) = h.split_once(':') {
                            headers.push((k.trim().to_lowercase(), v.trim().to_owned()));
                        }
                    }
                    record.lock().unwrap().push(Seen {
                        line: line.trim().to_owned(),
                        headers,
                    });
                    let answer = match answer {
                        Answer::Routes(routes) => {
                            let (_, status, body) = routes
                                .into_iter()
                                .find(|(route, _, _)| line.contains(route))
                                .unwrap_or(("", 404, NOT_FOUND.to_owned()));
                            Answer::Json(status, body)
                        }
                        other => other,
                    };
                    match answer {
                        Answer::Routes(_) => unreachable!(),
                        Answer::Json(status, body) => {
                            let _ = write!(
                                stream,
                                "HTTP/1.1 {status} X\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                                body.len()
                            );
                        }
                        Answer::Hang => std::thread::sleep(Duration::from_secs(60)),
                    }
                });
            }
        });
        FakeGithub { port, seen }
    }

    /// The API URL as GitHub Enterprise Server spells it (`/api/v3`).
    pub fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}/api/v3", self.port)
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// `GET /repos/acme/multiply` as GitHub answers it (trimmed to the fields octocrab reads and
/// the ones the annotations use).
pub const REPOSITORY: &str = r#"{
  "id": 1296269,
  "node_id": "MDEwOlJlcG9zaXRvcnkxMjk2MjY5",
  "name": "multiply",
  "full_name": "acme/multiply",
  "private": false,
  "owner": {
    "login": "acme", "id": 1, "node_id": "MDQ6VXNlcjE=",
    "avatar_url": "https://github.com/images/error/acme_happy.gif", "gravatar_id": "",
    "url": "https://api.github.com/users/acme", "html_url": "https://github.com/acme",
    "followers_url": "https://api.github.com/users/acme/followers",
    "following_url": "https://api.github.com/users/acme/following{/other_user}",
    "gists_url": "https://api.github.com/users/acme/gists{/gist_id}",
    "starred_url": "https://api.github.com/users/acme/starred{/owner}{/repo}",
    "subscriptions_url": "https://api.github.com/users/acme/subscriptions",
    "organizations_url": "https://api.github.com/users/acme/orgs",
    "repos_url": "https://api.github.com/users/acme/repos",
    "events_url": "https://api.github.com/users/acme/events{/privacy}",
    "received_events_url": "https://api.github.com/users/acme/received_events",
    "type": "Organization", "site_admin": false
  },
  "html_url": "https://github.com/acme/multiply",
  "description": "Multiplies two numbers, in Wasm",
  "fork": false,
  "url": "https://api.github.com/repos/acme/multiply",
  "homepage": "",
  "language": "Rust",
  "forks_count": 9,
  "stargazers_count": 80,
  "watchers_count": 80,
  "size": 108,
  "default_branch": "main",
  "open_issues_count": 0,
  "topics": ["wasm"],
  "has_issues": true,
  "archived": false,
  "disabled": false,
  "visibility": "public",
  "pushed_at": "2024-05-01T10:00:00Z",
  "created_at": "2020-01-26T19:01:12Z",
  "updated_at": "2024-05-01T10:00:00Z",
  "license": {
    "key": "apache-2.0", "name": "Apache License 2.0", "spdx_id": "Apache-2.0",
    "url": "https://api.github.com/licenses/apache-2.0", "node_id": "MDc6TGljZW5zZTI="
  }
}"#;

/// GitHub's 404 body.
pub const NOT_FOUND: &str = r#"{"message":"Not Found","documentation_url":"https://docs.github.com/rest/repos/repos#get-a-repository","status":"404"}"#;

/// GitHub's 403 body for a token without access.
pub const FORBIDDEN: &str = r#"{"message":"Resource not accessible by integration","documentation_url":"https://docs.github.com/rest/repos/repos#get-a-repository","status":"403"}"#;

/// `GET /repos/acme/multiply/commits/0123…` as GitHub answers it (trimmed: no stats or files).
pub const COMMIT: &str = r#"{
  "url": "https://api.github.com/repos/acme/multiply/commits/0123456789abcdef0123456789abcdef01234567",
  "sha": "0123456789abcdef0123456789abcdef01234567",
  "node_id": "C_kwDOAAABc9oAKDAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc",
  "html_url": "https://github.com/acme/multiply/commit/0123456789abcdef0123456789abcdef01234567",
  "comments_url": "https://api.github.com/repos/acme/multiply/commits/0123456789abcdef0123456789abcdef01234567/comments",
  "commit": {
    "url": "https://api.github.com/repos/acme/multiply/git/commits/0123456789abcdef0123456789abcdef01234567",
    "author": {"name": "Mona Octocat", "email": "mona@example.com", "date": "2024-05-01T09:00:00Z"},
    "committer": {"name": "GitHub", "email": "noreply@github.com", "date": "2024-05-02T08:30:00Z"},
    "message": "Release 1.2.3",
    "tree": {"sha": "6dcb09b5b57875f334f61aebed695e2e4193db5e", "url": "https://api.github.com/repos/acme/multiply/git/trees/6dcb09b5b57875f334f61aebed695e2e4193db5e"},
    "comment_count": 0,
    "verification": {"verified": false, "reason": "unsigned", "signature": null, "payload": null, "verified_at": null}
  },
  "author": null,
  "committer": {},
  "parents": [{"sha": "7638417db6d59f3c431d3e1f261cc637155684cd", "url": "https://api.github.com/repos/acme/multiply/commits/7638417db6d59f3c431d3e1f261cc637155684cd", "html_url": "https://github.com/acme/multiply/commit/7638417db6d59f3c431d3e1f261cc637155684cd"}]
}"#;
