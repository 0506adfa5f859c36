//! Where log events go. In action mode a tracing layer turns them into workflow commands on
//! stdout (`::warning::`, `::debug::` only when `RUNNER_DEBUG=1`) and each `phase` span into a
//! `::group::`; in CLI mode they go to stderr through tracing-subscriber's formatter.
//!
//! Secrets: every line written passes through [`crate::secret::redact`], and the HTTP stack's
//! own targets (hyper, h2, rustls, reqwest) are held at `info` whatever `RUST_LOG` says: at
//! debug and trace they dump connection internals and frames where credentials travel.

use std::fmt::Write as _;
use std::io::Write as _;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

use super::runner::escape_data;
use crate::context::Env;

/// Which front door is logging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// GitHub Action: workflow commands on stdout.
    Action,
    /// CLI: human logs on stderr; stdout carries only the result.
    Cli,
}

/// Targets that never log below `info`: they would print request and response internals.
const HTTP_TARGETS: &[&str] = &[
    "hyper",
    "hyper_util",
    "h2",
    "rustls",
    "reqwest",
    "tower",
    "want",
];

/// The filter: `RUST_LOG` when set, else debug with `RUNNER_DEBUG=1`, else info for this crate.
/// HTTP internals (hyper, h2, rustls, reqwest) stay at `info` whatever is asked.
pub fn filter(env: &Env) -> EnvFilter {
    let debug = env.get("RUNNER_DEBUG").map(String::as_str) == Some("1");
    let base = if debug {
        "wasm_oci=debug,info"
    } else {
        "wasm_oci=info,warn"
    };
    let mut directives: Vec<String> = match env.get("RUST_LOG").filter(|s| !s.trim().is_empty()) {
        Some(spec) if EnvFilter::try_new(spec).is_ok() => spec
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .filter(|d| {
                let target = d.split(['=', '[']).next().unwrap_or("");
                !HTTP_TARGETS
                    .iter()
                    .any(|t| target == *t || target.starts_with(&format!("{t}::")))
            })
            .map(str::to_owned)
            .collect(),
        _ => base.split(',').map(str::to_owned).collect(),
    };
    directives.extend(HTTP_TARGETS.iter().map(|t| format!("{t}=info")));
    EnvFilter::new(directives.join(","))
}

/// Installs the global subscriber for `mode`.
pub fn init(mode: Mode, env: &Env) {
    // A long transfer: a bar on the CLI's terminal, lines everywhere else.
    if mode == Mode::Cli && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        crate::registry::progress::show_as(crate::registry::progress::Display::Bar);
    }
    let registry = tracing_subscriber::registry().with(filter(env));
    let result = match mode {
        Mode::Action => registry.with(WorkflowLayer).try_init(),
        Mode::Cli => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(|| RedactingStderr(Vec::new()))
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                    .with_target(false)
                    .without_time(),
            )
            .try_init(),
    };
    let _ = result;
}

/// Collects one formatted event and writes it to stderr with secrets redacted.
struct RedactingStderr(Vec<u8>);

impl std::io::Write for RedactingStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for RedactingStderr {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.0);
        let _ = std::io::stderr()
            .lock()
            .write_all(super::runner::defuse(&crate::secret::redact(&text)).as_bytes());
    }
}

/// Formats events as workflow commands on stdout.
struct WorkflowLayer;

#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
    name: Option<String>,
    /// Annotation properties (`file`, `line`, `col`, `endLine`, `endColumn`, `title`).
    properties: Vec<(&'static str, String)>,
}

/// Event fields that become annotation properties, and their workflow-command names.
const PROPERTIES: &[(&str, &str)] = &[
    ("file", "file"),
    ("line", "line"),
    ("col", "col"),
    ("end_line", "endLine"),
    ("end_column", "endColumn"),
    ("title", "title"),
];

impl Fields {
    fn property(&mut self, field: &Field, value: String) -> bool {
        match PROPERTIES.iter().find(|(f, _)| *f == field.name()) {
            Some((_, name)) => {
                self.properties.push((name, value));
                true
            }
            None => false,
        }
    }

    /// ` file=src/lib.rs,line=3,col=5` for an annotation, or nothing.
    fn annotation_properties(&self) -> String {
        let props: Vec<String> = self
            .properties
            .iter()
            .map(|(k, v)| {
                let v = crate::secret::redact(v);
                format!("{k}={}", super::runner::escape_property(&v))
            })
            .collect();
        if props.is_empty() {
            String::new()
        } else {
            format!(" {}", props.join(","))
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.property(field, value.to_owned()) {
            return;
        }
        match field.name() {
            "message" => self.message.push_str(value),
            "name" => self.name = Some(value.to_owned()),
            other => {
                let _ = write!(self.rest, " {other}={value}");
            }
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if self.property(field, format!("{value:?}")) {
            return;
        }
        match field.name() {
            "message" => {
                let _ = write!(self.message, "{value:?}");
            }
            "name" => self.name = Some(format!("{value:?}")),
            other => {
                let _ = write!(self.rest, " {other}={value:?}");
            }
        }
    }
}

fn emit(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", crate::secret::redact(line));
}

impl<S> tracing_subscriber::Layer<S> for WorkflowLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        _id: &tracing::span::Id,
        _ctx: Context<'_, S>,
    ) {
        if attrs.metadata().name() == "phase" {
            let mut fields = Fields::default();
            attrs.record(&mut fields);
            emit(&format!(
                "::group::{}",
                escape_data(fields.name.as_deref().unwrap_or("step"))
            ));
        }
    }

    fn on_close(&self, id: tracing::span::Id, ctx: Context<'_, S>) {
        if ctx.span(&id).is_some_and(|s| s.name() == "phase") {
            emit("::endgroup::");
        }
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        // Secrets are redacted before escaping, which would hide a secret holding `%` or a
        // line break from the redaction.
        let text =
            crate::secret::redact(&format!("{}{}", fields.message, fields.rest)).into_owned();
        let props = fields.annotation_properties();
        // Only this program's own failures are annotations: a library's error event (a TLS
        // verifier's complaint) is followed by our error, which says it once.
        let ours = event.metadata().target().starts_with("wasm_oci");
        let line = match *event.metadata().level() {
            Level::ERROR if ours => format!("::error{props}::{}", escape_data(&text)),
            Level::ERROR => format!("::warning::{}", escape_data(&text)),
            Level::WARN => format!("::warning{props}::{}", escape_data(&text)),
            Level::INFO if event.metadata().target() == crate::NOTICE => {
                format!("::notice{props}::{}", escape_data(&text))
            }
            Level::INFO => super::runner::escape_log(&text),
            Level::DEBUG | Level::TRACE => format!("::debug::{}", escape_data(&text)),
        };
        emit(&line);
    }
}
