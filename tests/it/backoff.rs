//! Parallel requests to one registry share one backoff: at most a few are in flight at once,
//! and a 429 or 503 answer to any of them (with its `Retry-After`) pauses all of them. The
//! fault proxy in front of the real registry gathers the requests the client sends at once, so
//! what is checked is what arrived and in which order, never how long anything took.

use crate::common;

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::proxy::{Fault, FaultProxy};
use common::*;
use wasm_oci::registry::remote::{Access, Connection, Remote};
use wasm_oci::registry::{ManifestRef, ReadTarget};

/// How many reads go out together: more than the bound on requests in flight.
const READS: usize = 20;

/// The bound on requests in flight to one registry.
const IN_FLIGHT: usize = 8;

fn remote(proxy: &FaultProxy) -> Remote {
    let mut env = wasm_oci::context::Env::new();
    env.insert("WASM_OCI_RETRY_INITIAL_DELAY".into(), "0.05".into());
    Remote::new(
        format!("{}/acme/app", proxy.host()).parse().unwrap(),
        &Connection {
            insecure: true,
            policy: wasm_oci::registry::retry::Policy::from_env(&env).unwrap(),
            env,
            ..Default::default()
        },
    )
    .unwrap()
}

/// [`READS`] manifest reads at once (none of the tags exists); each must end in "not found".
fn read_in_parallel(remote: &Remote) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(remote.login(Access::Read)).unwrap();
    let found = runtime.block_on(futures_util::future::join_all((0..READS).map(|i| {
        let tag = ManifestRef::Tag(format!("t{i}").parse().unwrap());
        async move { remote.get_manifest(&tag).await }
    })));
    for (i, read) in found.into_iter().enumerate() {
        assert!(read.unwrap().is_none(), "t{i}");
    }
}

#[test]
fn parallel_requests_to_a_registry_are_bounded() {
    let registry = Registry::start();
    let gathered = AtomicUsize::new(0);
    // The first requests are held until one more than the bound has arrived: a client without
    // a bound sends all of them at once, one with a bound never gets that far.
    let proxy = FaultProxy::start(registry.port, move |_, _, path| {
        if path.contains("/manifests/") && gathered.fetch_add(1, Ordering::SeqCst) <= IN_FLIGHT {
            Fault::Gather(IN_FLIGHT + 1, Box::new(Fault::Pass))
        } else {
            Fault::Pass
        }
    });
    read_in_parallel(&remote(&proxy));
    let peak = proxy.peak_gathered();
    assert!(
        (2..=IN_FLIGHT).contains(&peak),
        "{peak} requests were in flight at once: {:#?}",
        proxy.log()
    );
}

/// The first [`IN_FLIGHT`] reads are held until all have arrived and then answered `status`
/// with `Retry-After: 1`. Any read that arrives within that second is too early: it is answered
/// the same, marked `X-Early`, and counted.
fn a_refusal_pauses_every_request(status: u16) {
    let registry = Registry::start();
    let answered = AtomicUsize::new(0);
    let pause_ends = Mutex::new(None::<Instant>);
    let proxy = FaultProxy::start(registry.port, move |_, _, path| {
        if !path.contains("/manifests/") {
            return Fault::Pass;
        }
        let body = r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}"#.to_owned();
        let mut ends = pause_ends.lock().unwrap();
        if answered.fetch_add(1, Ordering::SeqCst) < IN_FLIGHT {
            // The pause starts no later than the first answer goes out.
            ends.get_or_insert_with(|| Instant::now() + Duration::from_secs(1));
            let refusal = Fault::AnswerWith(status, "Retry-After: 1\r\n".into(), body);
            return Fault::Gather(IN_FLIGHT, Box::new(refusal));
        }
        if ends.is_some_and(|end| Instant::now() < end) {
            return Fault::AnswerWith(status, "Retry-After: 1\r\nX-Early: 1\r\n".into(), body);
        }
        Fault::Pass
    });
    read_in_parallel(&remote(&proxy));
    let log = proxy.log();
    let refused = log.iter().filter(|l| l.contains("Gather")).count();
    assert_eq!(refused, IN_FLIGHT, "{log:#?}");
    let early: Vec<_> = log.iter().filter(|l| l.contains("X-Early")).collect();
    assert!(
        early.is_empty(),
        "requests went out during the pause the registry asked for: {early:#?}"
    );
    // Every read went out again after the pause, and found nothing.
    let passed = log
        .iter()
        .filter(|l| l.contains("/manifests/") && l.ends_with("Pass"))
        .count();
    assert_eq!(passed, READS, "{log:#?}");
}

#[test]
fn a_429_pauses_every_request_to_the_registry() {
    a_refusal_pauses_every_request(429);
}

#[test]
fn a_503_pauses_every_request_to_the_registry() {
    a_refusal_pauses_every_request(503);
}
