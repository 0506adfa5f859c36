//! Mermaid diagrams for the step summary (GitHub renders a ```` ```mermaid ```` block in a job
//! summary as a picture): what a push stored, its manifest with each tag, each registry and what
//! is attached to it; and the checks of a verify, passed and failed.
//!
//! The diagrams take small plain structs, not the use cases' types, so the summaries hook them
//! in with a line each. Every label is text from outside as far as this module knows (a tag, an
//! annotation, a registry's name, a check's detail): it is written character by character, each
//! one outside a small safe set as a Mermaid entity code (`#35;`), so a quote, a bracket, a
//! backtick, `#`, `;`, `%` or HTML ends neither the label, the statement, nor the code fence, and
//! no markup reaches the page. Node ids are numbered here and never come from outside.

use std::fmt::Write as _;

/// The longest label, in characters: a longer one is cut with `…`.
const MAX_LABEL: usize = 72;

/// What a push stored, for [`pushed`].
#[derive(Debug, Clone, Default)]
pub struct Pushed {
    /// The manifest digest.
    pub digest: String,
    /// The tags that point at it.
    pub tags: Vec<String>,
    /// Each registry repository (or layout) it went to, and whether that one holds it.
    pub registries: Vec<(String, bool)>,
    /// The referrers attached to it.
    pub attached: Vec<Attached>,
}

/// A referrer of the manifest: provenance, signature bundle, SBOM.
#[derive(Debug, Clone)]
pub struct Attached {
    /// What it is, for people: `provenance`, `signature`, `SBOM`.
    pub what: &'static str,
    /// Its `artifactType`.
    pub artifact_type: &'static str,
    /// Its manifest digest.
    pub digest: String,
}

/// How a check ended, for [`checks`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// It holds.
    Pass,
    /// It does not hold.
    Fail,
    /// It did not apply.
    Skip,
}

/// The ```` ```mermaid ```` block of a push: the manifest in the middle, each tag and registry
/// pointing at it, each referrer pointing at it as its subject.
pub fn pushed(p: &Pushed) -> String {
    let mut out = String::from("```mermaid\nflowchart LR\n");
    let _ = writeln!(out, "  m[\"manifest<br/>{}\"]", label(&short(&p.digest)));
    for (i, tag) in p.tags.iter().enumerate() {
        let _ = writeln!(out, "  t{i}([\"tag {}\"]) --> m", label(tag));
    }
    for (i, (registry, holds)) in p.registries.iter().enumerate() {
        let (edge, state) = if *holds {
            ("-->", "")
        } else {
            ("--x", "<br/>not pushed")
        };
        let _ = writeln!(out, "  r{i}[(\"{}{state}\")] {edge} m", label(registry));
    }
    for (i, a) in p.attached.iter().enumerate() {
        let _ = writeln!(
            out,
            "  a{i}[\"{}<br/>{}<br/>{}\"] -- subject --> m",
            label(a.what),
            label(a.artifact_type),
            label(&short(&a.digest))
        );
    }
    out.push_str("```\n");
    out
}

/// The ```` ```mermaid ```` block of a verify: the reference checked, and each check beside it,
/// green when it held, red when it did not, grey when it did not apply.
pub fn checks(subject: &str, checks: &[(&str, Mark)]) -> String {
    let mut out = String::from("```mermaid\nflowchart LR\n");
    let subject = match subject.rsplit_once('@') {
        Some((name, digest)) => format!("{name}@{}", short(digest)),
        None => subject.to_owned(),
    };
    let _ = writeln!(out, "  s[\"{}\"]", label(&subject));
    for (i, (name, mark)) in checks.iter().enumerate() {
        let (sign, class) = match mark {
            Mark::Pass => ("✓", "pass"),
            Mark::Fail => ("✗", "fail"),
            Mark::Skip => ("–", "skip"),
        };
        let _ = writeln!(out, "  s --> c{i}[\"{sign} {}\"]:::{class}", label(name));
    }
    out.push_str("  classDef pass fill:#dcffe4,stroke:#2da44e\n");
    out.push_str("  classDef fail fill:#ffebe9,stroke:#cf222e\n");
    out.push_str("  classDef skip fill:#f6f8fa,stroke:#8c959f\n");
    out.push_str("```\n");
    out
}

/// `sha256:` and the first 12 hex digits: the table beside the diagram has the whole digest.
fn short(digest: &str) -> String {
    match digest.split_once(':') {
        Some((algorithm, hex)) if hex.len() > 12 => format!("{algorithm}:{}…", &hex[..12]),
        _ => digest.to_owned(),
    }
}

/// `text` as the inside of a quoted Mermaid label: letters, digits and `. - _ : / @ + = , ~ …`
/// and spaces as they are, line breaks and other control characters as a space, every other
/// character as its entity code `#<decimal>;`; cut at [`MAX_LABEL`] characters.
pub fn label(text: &str) -> String {
    let mut out = String::new();
    let count = text.chars().count();
    for (i, c) in text.chars().enumerate() {
        if i == MAX_LABEL && count > MAX_LABEL + 1 {
            out.push('…');
            break;
        }
        match c {
            c if c.is_ascii_alphanumeric() => out.push(c),
            ' ' | '.' | '-' | '_' | ':' | '/' | '@' | '+' | '=' | ',' | '~' | '…' => out.push(c),
            c if c.is_control() => out.push(' '),
            c => {
                let _ = write!(out, "#{};", u32::from(c));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn a_label_cannot_end_itself_its_statement_or_the_fence() {
        let hostile = "1.0\"] --> x[\"<img src=x onerror=alert(1)>`;#%%{init}`\n```";
        let escaped = label(hostile);
        for c in [
            '"', '[', ']', '<', '>', '`', ';', '%', '{', '}', '(', ')', '\n', '|',
        ] {
            assert!(
                !escaped.replace("#", "").replace(';', "").contains(c) || c == ';',
                "`{c}` survives in {escaped}"
            );
        }
        // Every `;` and `#` is part of an entity code.
        assert!(escaped.split('#').skip(1).all(|code| {
            let (digits, _) = code.split_once(';').unwrap();
            !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
        }));
        assert!(escaped.starts_with("1.0#34;#93; --#62; x#91;#34;#60;img src=x"));
        assert_eq!(label("ghcr.io/acme/app:1.2.3"), "ghcr.io/acme/app:1.2.3");
        assert_eq!(label("café"), "caf#233;");
    }

    #[test]
    fn a_long_label_is_cut() {
        let long = "a".repeat(200);
        let cut = label(&long);
        assert_eq!(cut.chars().count(), MAX_LABEL + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(label(&"a".repeat(MAX_LABEL + 1)), "a".repeat(MAX_LABEL + 1));
    }

    #[test]
    fn a_push_with_provenance_signature_and_sbom() {
        let attached = |what, artifact_type| Attached {
            what,
            artifact_type,
            digest: DIGEST.to_owned(),
        };
        let diagram = pushed(&Pushed {
            digest: DIGEST.to_owned(),
            tags: ["1.2.3", "latest", "x\"]; click m call alert()"]
                .map(String::from)
                .to_vec(),
            registries: vec![
                ("ghcr.io/acme/app".to_owned(), true),
                ("docker.io/acme/app".to_owned(), false),
            ],
            attached: vec![
                attached("provenance", "application/vnd.in-toto+json"),
                attached("signature", "application/vnd.dev.sigstore.bundle.v0.3+json"),
                attached("SBOM", "application/vnd.cyclonedx+json"),
            ],
        });
        insta::assert_snapshot!(diagram);
    }

    #[test]
    fn a_verify_with_a_failed_check() {
        let diagram = checks(
            &format!("ghcr.io/acme/app@{DIGEST}"),
            &[
                ("manifest digest", Mark::Pass),
                ("provenance source", Mark::Fail),
                ("annotation `x`; <b>", Mark::Skip),
            ],
        );
        insta::assert_snapshot!(diagram);
    }
}
