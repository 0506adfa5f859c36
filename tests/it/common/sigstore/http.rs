//! The plain HTTP server under every Sigstore stand-in: one thread per connection, the request's
//! head and its `Content-Length` body read, one answer, `Connection: close`.

use std::io::{BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;

use super::super::fakes::read_head;

/// A request as a handler sees it.
pub struct Request {
    pub method: String,
    /// The path with its query.
    pub target: String,
    /// `(name, value)`, names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// An answer: status, content type, body.
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Response {
            status,
            content_type: "application/json",
            body: serde_json::to_vec(value).unwrap(),
        }
    }

    /// An error as the Sigstore services answer one: `{"code": N, "message": "..."}`.
    pub fn error(status: u16, message: &str) -> Self {
        Self::json(
            status,
            &serde_json::json!({"code": status, "message": message}),
        )
    }
}

/// Serves `handler` on a free 127.0.0.1 port; returns `http://127.0.0.1:PORT`.
pub fn serve(handler: impl Fn(Request) -> Response + Send + Sync + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handler = Arc::new(handler);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let handler = handler.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let Some((line, headers)) = read_head(&mut reader) else {
                    return;
                };
                let headers: Vec<(String, String)> = headers
                    .into_iter()
                    .map(|(n, v)| (n.to_lowercase(), v))
                    .collect();
                let length = headers
                    .iter()
                    .find(|(n, _)| n == "content-length")
                    .and_then(|(_, v)| v.parse::<usize>().ok())
                    .unwrap_or(0);
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_err() {
                    return;
                }
                let mut parts = line.split_whitespace();
                let method = parts.next().unwrap_or_default().to_owned();
                let target = parts.next().unwrap_or_default().to_owned();
                let answer = handler(Request {
                    method,
                    target,
                    headers,
                    body,
                });
                let _ = write!(
                    stream,
                    "HTTP/1.1 {} X\r\ncontent-type: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    answer.status,
                    answer.content_type,
                    answer.body.len()
                );
                let _ = stream.write_all(&answer.body);
            });
        }
    });
    url
}
