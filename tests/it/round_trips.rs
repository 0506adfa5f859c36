//! Requests that do not wait on each other go out together: a registry far away costs a push a
//! few round trips, not one per request. A proxy in front of the real registry holds each
//! request of a kind until as many of that kind are in flight as the push has independent ones
//! (or a few seconds pass), and records how many it saw at once.

use crate::common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use common::*;

/// How long a held request waits for the others of its kind.
const GATHER: Duration = Duration::from_secs(3);

/// A kind of request: its name, whether a request is of it, and how many to wait for.
type Kind = (&'static str, fn(&str, &str) -> bool, usize);

#[derive(Default)]
struct Seen {
    /// Per kind: in flight now, and the most in flight at once.
    in_flight: BTreeMap<&'static str, (usize, usize)>,
    log: Vec<String>,
}

struct Gathering {
    port: u16,
    seen: Arc<(Mutex<Seen>, Condvar)>,
}

impl Gathering {
    /// A proxy to `127.0.0.1:upstream`, one request per connection (`Connection: close`).
    fn start(upstream: u16, kinds: &'static [Kind]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new((Mutex::new(Seen::default()), Condvar::new()));
        let shared = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let seen = shared.clone();
                std::thread::spawn(move || forward(stream, upstream, kinds, &seen));
            }
        });
        Gathering { port, seen }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The most requests of `kind` seen in flight at once.
    fn most(&self, kind: &str) -> usize {
        let seen = self.seen.0.lock().unwrap();
        seen.in_flight.get(kind).map_or(0, |(_, most)| *most)
    }

    fn log(&self) -> String {
        self.seen.0.lock().unwrap().log.join("\n")
    }
}

fn forward(
    client: TcpStream,
    upstream: u16,
    kinds: &'static [Kind],
    seen: &(Mutex<Seen>, Condvar),
) {
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if line == "\r\n" {
            break;
        }
        lines.push(line.trim_end().to_owned());
    }
    let length: usize = lines
        .iter()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let mut parts = lines[0].split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let kind = kinds.iter().find(|(_, is, _)| is(method, path));

    let (lock, wake) = seen;
    if let Some((name, _, wanted)) = kind {
        let mut guard = lock.lock().unwrap();
        guard.log.push(format!("{method} {path}"));
        let entry = guard.in_flight.entry(name).or_default();
        entry.0 += 1;
        entry.1 = entry.1.max(entry.0);
        wake.notify_all();
        let deadline = Instant::now() + GATHER;
        while guard.in_flight[name].1 < *wanted && Instant::now() < deadline {
            guard = wake
                .wait_timeout(guard, deadline - Instant::now())
                .unwrap()
                .0;
        }
    } else {
        lock.lock().unwrap().log.push(format!("{method} {path}"));
    }

    let mut head: Vec<String> = lines
        .into_iter()
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    head.push("Connection: close".to_owned());
    let mut to = TcpStream::connect(("127.0.0.1", upstream)).unwrap();
    to.write_all(format!("{}\r\n\r\n", head.join("\r\n")).as_bytes())
        .unwrap();
    to.write_all(&body).unwrap();
    let mut response = Vec::new();
    to.read_to_end(&mut response).unwrap();
    if let Some((name, _, _)) = kind {
        lock.lock().unwrap().in_flight.get_mut(name).unwrap().0 -= 1;
    }
    let mut client = client;
    let _ = client.write_all(&response);
}

fn blob_upload(method: &str, path: &str) -> bool {
    method == "POST" && path.contains("/blobs/uploads/")
}

fn manifest_by_digest(method: &str, path: &str) -> bool {
    method == "PUT" && path.contains("/manifests/sha256:")
}

fn tag(method: &str, path: &str) -> bool {
    method == "PUT"
        && path.contains("/manifests/")
        && !path.contains("/manifests/sha256:")
        && !path.contains("/manifests/sha256-")
}

#[test]
fn a_push_sends_its_blobs_then_its_manifests_then_its_tags_together() {
    static KINDS: [Kind; 3] = [
        // The layer, the config, the provenance statement and the empty config `{}`.
        ("blob uploads", blob_upload, 4),
        // The artifact's manifest and its provenance's.
        ("manifests", manifest_by_digest, 2),
        ("tags", tag, 3),
    ];
    let registry = Registry::start();
    let proxy = Gathering::start(registry.port, &KINDS);
    let ws = Workspace::new();
    let image = format!("{}/acme/together", proxy.host());
    let run = ws.run_action(&ws.multiply_env(
        &image,
        &[("insecure", "true"), ("tags", "1.0.0, 1.0, latest")],
    ));
    assert!(run.success(), "{run:?}");
    for (name, _, wanted) in &KINDS {
        assert_eq!(
            proxy.most(name),
            *wanted,
            "{name} in flight at once:\n{}",
            proxy.log()
        );
    }
    let digest = &ws.outputs()["digest"];
    for tag in ["1.0.0", "1.0", "latest"] {
        let (manifest, _) = registry.manifest("acme/together", tag).expect("tagged");
        assert_eq!(&sha256(&manifest), digest);
    }
}
