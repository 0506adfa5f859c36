//! What a verify found: every check with its name, result and detail; the action outputs,
//! the step summary's table, and the error that names each failed check.

use std::fmt::Write as _;

use crate::error::{Error, Result};
use crate::reference::{Digest, ImageRef};

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It holds.
    Pass,
    /// It does not hold.
    Fail,
    /// It could not apply (nothing to compare against).
    Skip,
}

impl Outcome {
    /// The diagram's mark for it.
    fn mark(self) -> crate::mermaid::Mark {
        match self {
            Outcome::Pass => crate::mermaid::Mark::Pass,
            Outcome::Fail => crate::mermaid::Mark::Fail,
            Outcome::Skip => crate::mermaid::Mark::Skip,
        }
    }
}

/// One check: its name, how it ended, and what was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The check's name, as the summary and the error show it.
    pub name: String,
    /// How it ended.
    pub outcome: Outcome,
    /// What was found.
    pub detail: String,
}

impl Check {
    pub(super) fn pass(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Check {
            name: name.into(),
            outcome: Outcome::Pass,
            detail: detail.into(),
        }
    }

    pub(super) fn fail(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Check {
            name: name.into(),
            outcome: Outcome::Fail,
            detail: detail.into(),
        }
    }

    pub(super) fn skip(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Check {
            name: name.into(),
            outcome: Outcome::Skip,
            detail: detail.into(),
        }
    }
}

/// The result of a verify: every check run, in order.
#[derive(Debug, Clone)]
pub struct VerifyReport {
    /// The reference as given.
    pub image: ImageRef,
    /// The manifest digest checked (known once the manifest was fetched).
    pub digest: Option<Digest>,
    /// The checks.
    pub checks: Vec<Check>,
}

impl VerifyReport {
    /// Whether no check failed. A check that a signature makes required (the provenance's, with
    /// `require-signature`) fails when it cannot be made, so a skipped check here is one that
    /// nothing required.
    pub fn verified(&self) -> bool {
        self.digest.is_some() && self.checks.iter().all(|c| c.outcome != Outcome::Fail)
    }

    /// The pinned reference, `image@digest`, or the reference as given.
    pub fn reference(&self) -> String {
        match &self.digest {
            Some(d) => self.image.pinned(d),
            None => self.image.to_string(),
        }
    }

    /// `Ok(self)` when verified, else the error naming every failed check.
    pub fn into_result(self) -> Result<Self> {
        if self.verified() {
            return Ok(self);
        }
        let failures = self
            .checks
            .iter()
            .filter(|c| c.outcome == Outcome::Fail)
            .map(|c| format!("{}: {}", c.name, c.detail))
            .collect::<Vec<_>>()
            .join("; ");
        Err(Error::Verification {
            reference: self.reference(),
            failures,
        })
    }

    /// The action outputs (only written when verified).
    pub fn outputs(&self) -> Vec<(&'static str, String)> {
        let digest = self
            .digest
            .as_ref()
            .map(Digest::to_string)
            .unwrap_or_default();
        vec![
            ("digest", digest),
            ("image", self.image.location.to_string()),
            ("ref", self.reference()),
            ("verified", self.verified().to_string()),
        ]
    }

    /// The Markdown step summary: a table of check, result, detail.
    pub fn summary(&self) -> String {
        let mut md = String::new();
        let heading = if self.verified() {
            "Wasm OCI artifact verified"
        } else {
            "Wasm OCI artifact verification FAILED"
        };
        let _ = writeln!(md, "### {heading}\n\n`{}`\n", self.reference());
        let count = |o: Outcome| self.checks.iter().filter(|c| c.outcome == o).count();
        let _ = writeln!(
            md,
            "{} passed, {} skipped (not checked, not counted as passed), {} failed\n",
            count(Outcome::Pass),
            count(Outcome::Skip),
            count(Outcome::Fail)
        );
        let _ = writeln!(md, "| check | result | detail |\n|---|---|---|");
        for c in &self.checks {
            let result = match c.outcome {
                Outcome::Pass => "✅ pass",
                Outcome::Fail => "❌ FAIL",
                Outcome::Skip => "➖ skip",
            };
            // Details quote what the artifact says: inert text ([`crate::markdown`]).
            let _ = writeln!(
                md,
                "| {} | {result} | {} |",
                crate::markdown::message(&c.name),
                crate::markdown::message(&c.detail)
            );
        }
        let marks: Vec<_> = (self.checks.iter())
            .map(|c| (c.name.as_str(), c.outcome.mark()))
            .collect();
        let _ = write!(
            md,
            "\n{}",
            crate::mermaid::checks(&self.reference(), &marks)
        );
        md
    }
}
