//! The object storage behind a registry that redirects blob reads, as S3- or GCS-backed
//! registries do (Docker Hub, ECR, GAR): the real registry's `redirect` storage middleware
//! answers a blob `GET` or `HEAD` with `307` to this server, which serves the registry's own
//! files. Object storage cannot run here; this plain `std::net` server stands in for it and
//! records every request with its headers, so a test can tell what the client sent off the
//! registry.

use std::io::{BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// One request as it arrived: its request line and headers.
#[derive(Debug, Clone)]
pub struct Request {
    pub line: String,
    pub headers: Vec<(String, String)>,
}

/// A file server over `root`, answering `GET` and `HEAD`; one thread per connection.
pub struct ObjectStorage {
    pub host: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl ObjectStorage {
    pub fn start(root: PathBuf) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (root, seen) = (root.clone(), seen.clone());
                std::thread::spawn(move || serve(stream, &root, &seen));
            }
        });
        ObjectStorage { host, requests }
    }

    /// `http://127.0.0.1:PORT`, the middleware's `baseurl`.
    pub fn url(&self) -> String {
        format!("http://{}", self.host)
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

fn serve(mut stream: std::net::TcpStream, root: &std::path::Path, seen: &Mutex<Vec<Request>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let Some((line, headers)) = super::fakes::read_head(&mut reader) else {
        return;
    };
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let file = (!path.split('/').any(|c| c == ".."))
        .then(|| root.join(path.trim_start_matches('/')))
        .and_then(|f| std::fs::read(f).ok());
    let head = method == "HEAD";
    seen.lock().unwrap().push(Request {
        line: line.clone(),
        headers,
    });
    let response = match (&file, method) {
        (Some(body), "GET" | "HEAD") => format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        ),
        _ => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned(),
    };
    let _ = stream.write_all(response.as_bytes());
    if let (Some(body), false) = (&file, head) {
        let _ = stream.write_all(body);
    }
    let _ = stream.flush();
}
