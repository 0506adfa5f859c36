//! Compiler diagnostics from cargo's JSON messages, reported where users look: each error or
//! warning with a source location becomes a tracing event carrying `file`, `line` and `col`
//! (relative to `GITHUB_WORKSPACE`), which action mode prints as an `::error file=...::`
//! annotation on that line and the CLI prints as rustc's own rendered text.

use std::path::{Path, PathBuf};

use cargo_metadata::diagnostic::{Diagnostic, DiagnosticLevel, DiagnosticSpan};
use tracing::{error, info, warn};

use crate::context::Env;

/// Reports diagnostics and counts them.
#[derive(Debug)]
pub struct Diagnostics {
    /// rustc's working directory: span file names are relative to it.
    workspace_root: PathBuf,
    /// Annotation paths are made relative to this (the repository checkout).
    repository_root: Option<PathBuf>,
    errors: usize,
    target_missing: bool,
}

impl Diagnostics {
    /// Diagnostics of a build in `workspace_root`; `env` gives `GITHUB_WORKSPACE`.
    pub fn new(workspace_root: &Path, env: &Env) -> Self {
        let repository_root = env
            .get("GITHUB_WORKSPACE")
            .filter(|w| !w.trim().is_empty())
            .map(|w| canonical(Path::new(w)));
        Diagnostics {
            workspace_root: canonical(workspace_root),
            repository_root,
            errors: 0,
            target_missing: false,
        }
    }

    /// Compiler errors with a location reported so far.
    pub fn errors(&self) -> usize {
        self.errors
    }

    /// Whether rustc said the target's standard library is missing.
    pub fn target_missing(&self) -> bool {
        self.target_missing
    }

    /// Reports one diagnostic.
    pub fn report(&mut self, diagnostic: &Diagnostic) {
        let rendered = diagnostic
            .rendered
            .as_deref()
            .unwrap_or(&diagnostic.message)
            .trim_end();
        if diagnostic.code.as_ref().is_some_and(|c| c.code == "E0463")
            && rendered.contains("target may not be installed")
        {
            self.target_missing = true;
        }
        let is_error = matches!(
            diagnostic.level,
            DiagnosticLevel::Error | DiagnosticLevel::Ice
        );
        let is_warning = matches!(diagnostic.level, DiagnosticLevel::Warning);
        let Some(span) = primary_span(diagnostic).filter(|_| is_error || is_warning) else {
            // "aborting due to 1 previous error" and the like: text only, a log line per line
            // (the log escapes a line break inside one).
            for line in rendered.lines() {
                info!("{line}");
            }
            return;
        };
        let file = self.relative(&span.file_name);
        let title = match &diagnostic.code {
            Some(code) => format!(
                "{}[{}]: {}",
                level_word(is_error),
                code.code,
                diagnostic.message
            ),
            None => format!("{}: {}", level_word(is_error), diagnostic.message),
        };
        let (line, col, end_line, end_column) = (
            span.line_start,
            span.column_start,
            span.line_end,
            span.column_end,
        );
        if is_error {
            self.errors += 1;
            error!(file = %file, line, col, end_line, end_column, title = %title, "{rendered}");
        } else {
            warn!(file = %file, line, col, end_line, end_column, title = %title, "{rendered}");
        }
    }

    /// A span's file as the repository sees it: relative to `GITHUB_WORKSPACE` when it is inside,
    /// else as rustc named it.
    fn relative(&self, file_name: &str) -> String {
        let absolute = canonical(&self.workspace_root.join(file_name));
        if let Some(root) = &self.repository_root
            && let Ok(rel) = absolute.strip_prefix(root)
        {
            return rel.to_string_lossy().into_owned();
        }
        file_name.to_owned()
    }
}

fn level_word(is_error: bool) -> &'static str {
    if is_error { "error" } else { "warning" }
}

/// The primary span, followed out of macro expansions to where the user wrote the call.
fn primary_span(diagnostic: &Diagnostic) -> Option<&DiagnosticSpan> {
    let mut span = diagnostic.spans.iter().find(|s| s.is_primary)?;
    while let Some(expansion) = &span.expansion {
        if !span.file_name.starts_with('<') {
            break;
        }
        span = &expansion.span;
    }
    Some(span)
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diagnostic(json: serde_json::Value) -> Diagnostic {
        serde_json::from_value(json).unwrap()
    }

    fn span(file: &str, line: usize, col: usize) -> serde_json::Value {
        serde_json::json!({
            "file_name": file, "byte_start": 0, "byte_end": 1,
            "line_start": line, "line_end": line, "column_start": col, "column_end": col + 3,
            "is_primary": true, "text": [], "label": null,
            "suggested_replacement": null, "suggestion_applicability": null, "expansion": null
        })
    }

    #[test]
    fn paths_are_relative_to_the_repository_and_errors_counted() {
        let repo = tempfile::tempdir().unwrap();
        let crate_dir = repo.path().join("crates/app");
        std::fs::create_dir_all(crate_dir.join("src")).unwrap();
        std::fs::write(crate_dir.join("src/lib.rs"), "").unwrap();
        let env: Env = [(
            "GITHUB_WORKSPACE".to_owned(),
            repo.path().display().to_string(),
        )]
        .into();
        let mut d = Diagnostics::new(&crate_dir, &env);
        assert_eq!(d.relative("src/lib.rs"), "crates/app/src/lib.rs");
        assert_eq!(
            d.relative("/rustc/abc/library/core/src/lib.rs"),
            "/rustc/abc/library/core/src/lib.rs"
        );

        d.report(&diagnostic(serde_json::json!({
            "message": "mismatched types", "code": {"code": "E0308", "explanation": null},
            "level": "error", "spans": [span("src/lib.rs", 1, 21)], "children": [],
            "rendered": "error[E0308]: mismatched types\n --> src/lib.rs:1:21\n"
        })));
        d.report(&diagnostic(serde_json::json!({
            "message": "aborting due to 1 previous error", "code": null,
            "level": "error", "spans": [], "children": [], "rendered": "error: aborting"
        })));
        assert_eq!(d.errors(), 1);
        assert!(!d.target_missing());
    }
}
