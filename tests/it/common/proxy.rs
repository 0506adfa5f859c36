//! A fault-injecting HTTP proxy in front of the real registry, for what a real registry never
//! does on demand: connections reset halfway through an upload, bursts of 503, 429 with
//! `Retry-After`, stalled responses, or any fixed answer. Each request gets a number; a plan
//! decides its fate from the number, the method and the path. One request per connection
//! (`Connection: close` both ways) keeps the accounting exact.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What happens to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Forwarded to the registry.
    Pass,
    /// The connection is reset after half the request body (or the head) is read.
    Reset,
    /// 503 Service Unavailable.
    Unavailable,
    /// 429 with `Retry-After: 1`; every request in the next second gets the same.
    Throttle,
    /// No answer for a few seconds, then the connection closes.
    Stall,
    /// A fixed answer: status and JSON body.
    Answer(u16, String),
    /// A fixed answer with more headers (whole `Name: value\r\n` lines).
    AnswerWith(u16, String, String),
    /// An answer with this status whose body never ends (sent until the client hangs up).
    Endless(u16),
    /// The request body read ten bytes a second, and no answer, until the client hangs up.
    Crawl,
    /// Held until this many requests are held together (or [`GATHER_WAIT`] passes), then met
    /// with the inner fault: requests the client sends at once arrive at once, and how many
    /// were ever held together is [`FaultProxy::peak_gathered`].
    Gather(usize, Box<Fault>),
}

/// The longest a gathered request waits for the others.
pub const GATHER_WAIT: Duration = Duration::from_secs(1);

type Plan = dyn Fn(usize, &str, &str) -> Fault + Send + Sync;

pub struct FaultProxy {
    pub port: u16,
    /// `n METHOD path -> fault`, one line per request.
    pub log: Arc<Mutex<Vec<String>>>,
    peak: Arc<AtomicUsize>,
    _runtime: tokio::runtime::Runtime,
}

/// How long a stalled response stalls.
pub const STALL: Duration = Duration::from_secs(3);

struct Shared {
    upstream: u16,
    plan: Box<Plan>,
    count: AtomicUsize,
    throttled_until: Mutex<Option<Instant>>,
    log: Arc<Mutex<Vec<String>>>,
    /// Requests being gathered now, and how many gatherings were released.
    gathering: Mutex<(usize, u64)>,
    gathered: tokio::sync::Notify,
    peak: Arc<AtomicUsize>,
}

impl FaultProxy {
    /// A proxy on a free loopback port in front of `127.0.0.1:upstream`.
    pub fn start(
        upstream: u16,
        plan: impl Fn(usize, &str, &str) -> Fault + Send + Sync + 'static,
    ) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let peak = Arc::new(AtomicUsize::new(0));
        let shared = Arc::new(Shared {
            upstream,
            plan: Box::new(plan),
            count: AtomicUsize::new(0),
            throttled_until: Mutex::new(None),
            log: log.clone(),
            gathering: Mutex::new((0, 0)),
            gathered: tokio::sync::Notify::new(),
            peak: peak.clone(),
        });
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let port = listener.local_addr().unwrap().port();
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let shared = shared.clone();
                tokio::spawn(async move {
                    let _ = shared.handle(stream).await;
                });
            }
        });
        FaultProxy {
            port,
            log,
            peak,
            _runtime: runtime,
        }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// The most requests [`Fault::Gather`] held at once.
    pub fn peak_gathered(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    /// How many requests met a fault other than `Pass`.
    pub fn faults(&self) -> usize {
        self.log().iter().filter(|l| !l.ends_with("Pass")).count()
    }
}

/// A request head and what of the body was read with it.
struct Head {
    method: String,
    path: String,
    lines: Vec<String>,
    content_length: usize,
    rest: Vec<u8>,
}

async fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<Head>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let text = String::from_utf8_lossy(&buf[..end]).into_owned();
    let lines: Vec<String> = text.split("\r\n").map(str::to_owned).collect();
    let mut first = lines[0].split_whitespace();
    let method = first.next().unwrap_or("").to_owned();
    let path = first.next().unwrap_or("").to_owned();
    let content_length = lines
        .iter()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    assert!(
        !lines
            .iter()
            .any(|l| l.to_ascii_lowercase().starts_with("transfer-encoding")),
        "the proxy does not handle chunked request bodies"
    );
    Ok(Some(Head {
        method,
        path,
        lines,
        content_length,
        rest: buf[end + 4..].to_vec(),
    }))
}

/// Reads the rest of the body (`len` bytes in all, `have` already read).
async fn read_body(stream: &mut TcpStream, have: Vec<u8>, len: usize) -> std::io::Result<Vec<u8>> {
    let mut body = have;
    let mut chunk = vec![0u8; 64 * 1024];
    while body.len() < len {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Ok(body)
}

fn with_connection_close(lines: &[String]) -> String {
    let mut out: Vec<&str> = lines
        .iter()
        .map(String::as_str)
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    out.push("Connection: close");
    format!("{}\r\n\r\n", out.join("\r\n"))
}

async fn answer(
    stream: &mut TcpStream,
    status: u16,
    reason: &str,
    extra: &str,
    body: &str,
) -> std::io::Result<()> {
    let text = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(text.as_bytes()).await?;
    stream.shutdown().await
}

impl Shared {
    /// A [`Fault::Gather`] waits for its company and becomes its inner fault.
    async fn gather(&self, fault: Fault) -> Fault {
        let Fault::Gather(n, inner) = fault else {
            return fault;
        };
        let notified = self.gathered.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let generation = {
            let mut gathering = self.gathering.lock().unwrap();
            gathering.0 += 1;
            self.peak.fetch_max(gathering.0, Ordering::SeqCst);
            if gathering.0 >= n {
                *gathering = (0, gathering.1 + 1);
                self.gathered.notify_waiters();
                return *inner;
            }
            gathering.1
        };
        let _ = tokio::time::timeout(GATHER_WAIT, notified).await;
        let mut gathering = self.gathering.lock().unwrap();
        if gathering.1 == generation {
            gathering.0 -= 1;
        }
        *inner
    }

    async fn handle(&self, mut client: TcpStream) -> std::io::Result<()> {
        let Some(head) = read_head(&mut client).await? else {
            return Ok(());
        };
        let n = self.count.fetch_add(1, Ordering::SeqCst);
        let throttled = self
            .throttled_until
            .lock()
            .unwrap()
            .is_some_and(|until| Instant::now() < until);
        let fault = if throttled {
            Fault::Throttle
        } else {
            (self.plan)(n, &head.method, &head.path)
        };
        self.log
            .lock()
            .unwrap()
            .push(format!("{n} {} {} -> {fault:?}", head.method, head.path));
        match self.gather(fault).await {
            Fault::Pass => {
                let body = read_body(&mut client, head.rest, head.content_length).await?;
                let mut upstream = TcpStream::connect(("127.0.0.1", self.upstream)).await?;
                upstream
                    .write_all(with_connection_close(&head.lines).as_bytes())
                    .await?;
                upstream.write_all(&body).await?;
                let mut response = Vec::new();
                upstream.read_to_end(&mut response).await?;
                let end = response
                    .windows(4)
                    .position(|w| w == b"\r\n\r\n")
                    .unwrap_or(response.len());
                let lines: Vec<String> = String::from_utf8_lossy(&response[..end])
                    .split("\r\n")
                    .map(str::to_owned)
                    .collect();
                client
                    .write_all(with_connection_close(&lines).as_bytes())
                    .await?;
                if end + 4 <= response.len() {
                    client.write_all(&response[end + 4..]).await?;
                }
                client.shutdown().await
            }
            Fault::Reset => {
                let half = head.content_length / 2;
                let _ = read_body(&mut client, head.rest, half).await?;
                // A zero linger makes the close a reset (RST), as a dropped connection looks;
                // the blocking-on-drop concern behind the deprecation does not apply at zero.
                #[allow(deprecated)]
                client.set_linger(Some(Duration::ZERO))?;
                drop(client);
                Ok(())
            }
            Fault::Unavailable => {
                let _ = read_body(&mut client, head.rest, head.content_length).await?;
                answer(&mut client, 503, "Service Unavailable", "", "").await
            }
            Fault::Throttle => {
                let _ = read_body(&mut client, head.rest, head.content_length).await?;
                if !throttled {
                    *self.throttled_until.lock().unwrap() =
                        Some(Instant::now() + Duration::from_secs(1));
                }
                answer(
                    &mut client,
                    429,
                    "Too Many Requests",
                    "Retry-After: 1\r\n",
                    r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}"#,
                )
                .await
            }
            Fault::Stall => {
                let _ = read_body(&mut client, head.rest, head.content_length).await?;
                tokio::time::sleep(STALL).await;
                Ok(())
            }
            Fault::Answer(status, body) => {
                let _ = read_body(&mut client, head.rest, head.content_length).await?;
                answer(&mut client, status, "Fault", "", &body).await
            }
            Fault::AnswerWith(status, headers, body) => {
                let _ = read_body(&mut client, head.rest, head.content_length).await?;
                answer(&mut client, status, "Fault", &headers, &body).await
            }
            Fault::Crawl => {
                let mut piece = [0u8; 10];
                while client.read(&mut piece).await.is_ok_and(|n| n > 0) {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Ok(())
            }
            Fault::Gather(..) => unreachable!("gathered above"),
            Fault::Endless(status) => {
                let _ = read_body(&mut client, head.rest, head.content_length).await?;
                client
                    .write_all(
                        format!("HTTP/1.1 {status} Fault\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n")
                            .as_bytes(),
                    )
                    .await?;
                let block = b"endless error ".repeat(4096);
                while client.write_all(&block).await.is_ok() {}
                Ok(())
            }
        }
    }
}
