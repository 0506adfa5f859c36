//! A secret value (password, token, key) that never prints: `Debug` and `Display` show `***`.
//! The only way to the text is [`Secret::expose`], which callers use at the last moment.
//!
//! Every secret made here is also remembered for masking: the front door installs a hook
//! ([`set_mask_hook`]) that tells the runner to mask it (`::add-mask::`) the moment it is known,
//! and the log writers pass every line through [`redact`], so a secret found late (in a docker
//! config, from a credential helper, minted by a token exchange) never reaches any output.

use std::borrow::Cow;
use std::fmt;
use std::sync::{Mutex, OnceLock};

/// A value that must never appear in any output or log.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

/// Secrets shorter than this are not masked: masking `a` would garble every log line.
const MIN_MASKED_LEN: usize = 4;

static KNOWN: Mutex<Vec<String>> = Mutex::new(Vec::new());
static HOOK: OnceLock<fn(&str)> = OnceLock::new();

impl Secret {
    /// Wraps `value` and registers it for masking.
    pub fn new(value: impl Into<String>) -> Self {
        let value = value.into();
        register(&value);
        Secret(value)
    }

    /// The secret text, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Installs the function told about each secret registered from now on (the action prints
/// `::add-mask::`; secrets known before were masked by the front door itself).
pub fn set_mask_hook(hook: fn(&str)) {
    let _ = HOOK.set(hook);
}

/// Remembers `value` as a secret; the hook hears of each value once. A multi-line secret (a
/// PEM key) is also remembered line by line, as the runner masks it.
pub fn register(value: &str) {
    let value = value.trim();
    if value.len() < MIN_MASKED_LEN {
        return;
    }
    let mut known = KNOWN.lock().expect("mask list");
    if known.iter().any(|k| k == value) {
        return;
    }
    for part in std::iter::once(value).chain(value.lines().map(str::trim)) {
        if part.len() >= MIN_MASKED_LEN && !known.iter().any(|k| k == part) {
            known.push(part.to_owned());
        }
    }
    // Longest first, so a secret containing another is replaced whole.
    known.sort_by_key(|k| std::cmp::Reverse(k.len()));
    drop(known);
    if let Some(hook) = HOOK.get() {
        hook(value);
    }
}

/// Remembers the forms a user name and password travel in besides the password itself:
/// `user:password`, and its base64 as HTTP basic auth and docker's `auth` carry it (standard
/// and URL-safe, padded or not), so a registry that quotes its `Authorization` header back is
/// redacted and masked too.
pub fn register_basic(username: &str, password: &Secret) {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let pair = format!("{username}:{}", password.expose());
    register(&pair);
    for engine in [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD] {
        register(&engine.encode(&pair));
    }
}

/// Whether `text` holds a known secret.
pub fn appears_in(text: &str) -> bool {
    let known = KNOWN.lock().expect("mask list");
    known.iter().any(|k| text.contains(k.as_str()))
}

/// `text` with every known secret replaced by `***`.
pub fn redact(text: &str) -> Cow<'_, str> {
    let known = KNOWN.lock().expect("mask list");
    if !known.iter().any(|k| text.contains(k.as_str())) {
        return Cow::Borrowed(text);
    }
    let mut out = text.to_owned();
    for k in known.iter() {
        out = out.replace(k.as_str(), "***");
    }
    Cow::Owned(out)
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s} {s:?} {s:#?}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn known_secrets_are_redacted_from_text() {
        let _s = Secret::new("tok-abc-123456");
        assert_eq!(
            redact("Authorization: Bearer tok-abc-123456"),
            "Authorization: Bearer ***"
        );
        assert!(matches!(redact("nothing here"), Cow::Borrowed(_)));
        let _key = Secret::new("-----BEGIN KEY-----\nMHcCAQEEIB0secretline\n-----END KEY-----\n");
        assert_eq!(redact("line: MHcCAQEEIB0secretline"), "line: ***");
    }

    #[test]
    fn basic_credentials_are_redacted_in_every_encoding() {
        // `bot:pass>?>` encodes with `+`, `/` and padding: each form differs.
        let password = Secret::new("pass>?>");
        register_basic("bot", &password);
        for form in [
            "Ym90OnBhc3M+Pz4=",
            "Ym90OnBhc3M+Pz4",
            "Ym90OnBhc3M-Pz4=",
            "Ym90OnBhc3M-Pz4",
            "bot:pass>?>",
        ] {
            assert_eq!(redact(&format!("Basic {form}.")), "Basic ***.", "{form}");
        }
    }
}
