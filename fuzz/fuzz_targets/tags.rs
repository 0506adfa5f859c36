//! Tags derived from the git ref: any ref and commit give valid tags or a refusal, never a
//! panic, and never the same tag twice.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasm_oci::context::{Env, GithubContext};
use wasm_oci::provenance::tags;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The first line is the ref, the second the commit.
    let mut lines = text.splitn(2, '\n');
    let mut env = Env::new();
    env.insert(
        "GITHUB_REF".to_owned(),
        lines.next().unwrap_or_default().to_owned(),
    );
    if let Some(sha) = lines.next() {
        env.insert("GITHUB_SHA".to_owned(), sha.to_owned());
    }
    let ctx = GithubContext::from_env(&env);
    if let Ok(derived) = tags::from_git_ref(&ctx) {
        assert!(!derived.is_empty());
        for (i, tag) in derived.iter().enumerate() {
            assert!(!derived[..i].contains(tag), "{tag} derived twice");
        }
    }
    let sanitized = tags::sanitize(text);
    assert!(sanitized.len() <= 128);
});
