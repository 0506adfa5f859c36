//! In-process stand-ins for what a real registry never does: a body cut short, a download
//! that stalls midway, a referrers API refused with 405. Plain `std::net` servers, one
//! connection at a time, `Connection: close`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;

use super::{OCI_MANIFEST, sha256};

/// A request's head as a plain server reads it: the request line and the `(name, value)`
/// headers, trimmed; `None` when the connection closed before a request line.
pub fn read_head(reader: &mut impl BufRead) -> Option<(String, Vec<(String, String)>)> {
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return None;
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    Some((request_line.trim_end().to_owned(), headers))
}

/// A registry that serves one artifact and cuts the layer's body off halfway: it announces the
/// full `Content-Length`, sends half, and closes. Returns its `127.0.0.1:PORT`.
pub fn truncating_server(repo: &str, manifest: Vec<u8>, config: Vec<u8>, layer: Vec<u8>) -> String {
    fake_registry(repo, manifest, config, layer, Layer::Cut)
}

/// How the fake registry answers for the layer.
#[derive(Clone, Copy)]
enum Layer {
    /// Half of it, then the connection closes.
    Cut,
    /// Half of it, then nothing for a minute.
    Stall,
    /// All of it, in 20 parts spread over this long.
    Paced(std::time::Duration),
}

/// Like [`truncating_server`], but the layer comes whole, in 20 parts spread evenly over
/// `over`: a slow download.
pub fn pacing_server(
    repo: &str,
    manifest: Vec<u8>,
    config: Vec<u8>,
    layer: Vec<u8>,
    over: std::time::Duration,
) -> String {
    fake_registry(repo, manifest, config, layer, Layer::Paced(over))
}

/// Like [`truncating_server`], but after half the layer it stalls (holds the connection open
/// without sending more) instead of closing: a download that hangs midway.
pub fn stalling_server(repo: &str, manifest: Vec<u8>, config: Vec<u8>, layer: Vec<u8>) -> String {
    fake_registry(repo, manifest, config, layer, Layer::Stall)
}

fn fake_registry(
    repo: &str,
    manifest: Vec<u8>,
    config: Vec<u8>,
    layer: Vec<u8>,
    answer: Layer,
) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let manifest_digest = sha256(&manifest);
    let repo = repo.to_owned();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let Some((request_line, _)) = read_head(&mut reader) else {
                continue;
            };
            let mut parts = request_line.split_whitespace();
            let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let head = method == "HEAD";
            let path = path.split('?').next().unwrap_or("");
            let (status, content_type, body, cut) = if path == "/v2/" {
                ("200 OK", "application/json", b"{}".to_vec(), false)
            } else if path.starts_with(&format!("/v2/{repo}/manifests/")) {
                ("200 OK", OCI_MANIFEST, manifest.clone(), false)
            } else if path == format!("/v2/{repo}/blobs/{}", sha256(&config)) {
                ("200 OK", "application/octet-stream", config.clone(), false)
            } else if path == format!("/v2/{repo}/blobs/{}", sha256(&layer)) {
                ("200 OK", "application/octet-stream", layer.clone(), true)
            } else {
                (
                    "404 Not Found",
                    "text/plain",
                    b"404 page not found\n".to_vec(),
                    false,
                )
            };
            let mut response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            if content_type == OCI_MANIFEST {
                response.push_str(&format!("Docker-Content-Digest: {manifest_digest}\r\n"));
            }
            response.push_str("\r\n");
            let _ = stream.write_all(response.as_bytes());
            if !head {
                match answer {
                    Layer::Paced(over) if cut => {
                        let part = body.len().div_ceil(20);
                        for chunk in body.chunks(part) {
                            let _ = stream.write_all(chunk);
                            let _ = stream.flush();
                            std::thread::sleep(over / 20);
                        }
                    }
                    _ if cut => {
                        let _ = stream.write_all(&body[..body.len() / 2]);
                        if matches!(answer, Layer::Stall) {
                            let _ = stream.flush();
                            std::thread::sleep(std::time::Duration::from_secs(60));
                        }
                    }
                    _ => {
                        let _ = stream.write_all(&body);
                    }
                }
            }
            let _ = stream.flush();
            let _ = stream.shutdown(std::net::Shutdown::Both);
            // Drain whatever the client still sends so the close is clean.
            let _ = reader.read(&mut [0u8; 1]);
        }
    });
    host
}

/// A proxy in front of `upstream` that answers the referrers API with `405 Method Not
/// Allowed`, as some registries do for an endpoint they lack, and forwards every other GET and
/// HEAD. Returns its `127.0.0.1:PORT` and a counter of refused referrers requests.
pub fn referrers_refusing_proxy(
    upstream: String,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let refused = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = refused.clone();
    std::thread::spawn(move || {
        let client = reqwest::blocking::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let Some((request_line, headers)) = read_head(&mut reader) else {
                continue;
            };
            let mut parts = request_line.split_whitespace();
            let (method, path) = (
                parts.next().unwrap_or("GET").to_owned(),
                parts.next().unwrap_or("/").to_owned(),
            );
            let (status, mut head, body) = if path.contains("/referrers/") {
                counter.fetch_add(1, Ordering::SeqCst);
                (
                    405,
                    vec![("Content-Type".to_owned(), "text/plain".to_owned())],
                    b"method not allowed\n".to_vec(),
                )
            } else {
                let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
                let mut req = client.request(method, format!("http://{upstream}{path}"));
                for (k, v) in &headers {
                    if k.eq_ignore_ascii_case("accept") || k.eq_ignore_ascii_case("authorization") {
                        req = req.header(k.as_str(), v.as_str());
                    }
                }
                let resp = req.send().unwrap();
                let status = resp.status().as_u16();
                let head = resp
                    .headers()
                    .iter()
                    .filter(|(k, _)| {
                        [
                            "content-type",
                            "docker-content-digest",
                            "www-authenticate",
                            "location",
                        ]
                        .contains(&k.as_str())
                    })
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
                    .collect();
                (status, head, resp.bytes().unwrap().to_vec())
            };
            head.push(("Content-Length".to_owned(), body.len().to_string()));
            head.push(("Connection".to_owned(), "close".to_owned()));
            let mut response = format!("HTTP/1.1 {status} X\r\n");
            for (k, v) in head {
                response.push_str(&format!("{k}: {v}\r\n"));
            }
            response.push_str("\r\n");
            let _ = stream.write_all(response.as_bytes());
            if !request_line.starts_with("HEAD") {
                let _ = stream.write_all(&body);
            }
            let _ = stream.flush();
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    });
    (host, refused)
}
