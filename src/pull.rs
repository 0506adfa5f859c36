//! The pull use case: fetch the manifest (by digest, or by tag with a warning that tags move),
//! choose the Wasm layer, stream it to disk through a digest check, validate it as Wasm, and
//! only then put it at the output path. Nothing partial, wrong or invalid is ever left there.

use std::path::{Path, PathBuf};

use serde_json::json;
use tracing::{info, warn};

use crate::artifact::Descriptor;
use crate::context::Env;
use crate::error::{Error, Result};
use crate::input;
use crate::inputs::Inputs;
use crate::phase;
use crate::reference::{Digest, ImageRef};
use crate::registry::ReadTarget;
use crate::registry::download::fetch_validating;
use crate::request::ReadRequest;
use crate::resolve::{self, ArtifactFormat, Source};
use crate::wasm::WasmFile;

/// Everything a pull needs.
#[derive(Debug, Clone)]
pub struct PullRequest {
    /// What to pull and from where.
    pub read: ReadRequest,
    /// Where to write: a file, or an existing directory to write the layer's title into.
    /// Default: the working directory, under the layer's title.
    pub output: Option<PathBuf>,
}

impl PullRequest {
    /// Parses `inputs`.
    pub fn from_inputs(inputs: &Inputs, env: &Env) -> Result<Self> {
        Ok(PullRequest {
            read: ReadRequest::from_inputs(inputs, env)?,
            output: inputs.get(input::OUTPUT).map(PathBuf::from),
        })
    }
}

/// What a pull wrote.
#[derive(Debug, Clone)]
pub struct PullOutcome {
    /// The reference pulled.
    pub image: ImageRef,
    /// The manifest digest.
    pub digest: Digest,
    /// The layer written.
    pub layer: Descriptor,
    /// The artifact's format.
    pub format: ArtifactFormat,
    /// The file, validated.
    pub wasm: WasmFile,
}

impl PullOutcome {
    /// The action outputs.
    pub fn outputs(&self) -> Vec<(&'static str, String)> {
        vec![
            ("path", self.wasm.path.display().to_string()),
            ("digest", self.digest.to_string()),
            ("image", self.image.location.to_string()),
            ("ref", self.image.pinned(&self.digest)),
            ("wasm-digest", self.wasm.digest.to_string()),
            ("size", self.wasm.size.to_string()),
            (
                "metadata",
                json!({
                    "path": self.wasm.path,
                    "digest": self.digest.to_string(),
                    "ref": self.image.pinned(&self.digest),
                    "wasm-digest": self.wasm.digest.to_string(),
                    "size": self.wasm.size,
                    "kind": self.wasm.kind,
                    "os": self.wasm.kind.os(),
                    "component": self.wasm.component,
                    "format": self.format,
                })
                .to_string(),
            ),
        ]
    }

    /// The Markdown step summary.
    pub fn summary(&self) -> String {
        use crate::markdown::code;
        format!(
            "### Wasm OCI artifact pulled\n\n| | |\n|---|---|\n| Reference | {} |\n| Digest | {} |\n| File | {} |\n| Wasm digest | {} |\n| Size | {} bytes |\n| Kind | {} |\n",
            code(&self.image.to_string()),
            code(&self.digest.to_string()),
            code(&self.wasm.path.display().to_string()),
            code(&self.wasm.digest.to_string()),
            self.wasm.size,
            code(self.wasm.kind.os())
        )
    }
}

/// Runs a pull.
pub async fn pull(request: &PullRequest) -> Result<PullOutcome> {
    let read = &request.read;
    let source = Source::open(&read.image.location, &read.connection).await?;
    let (fetched, layer) = {
        let _phase = phase("Resolve");
        let fetched = resolve::fetch_manifest(&source, &read.image).await?;
        if read.image.digest.is_none() {
            warn!(
                "pulled by tag: tags move; pin the digest instead: {}",
                read.image.pinned(&fetched.digest)
            );
        }
        let layer = resolve::choose_layer(&read.image, &fetched.manifest, read.layer.as_deref())?;
        info!(
            "{} is {}; layer {} ({} bytes)",
            read.image, fetched.digest, layer.digest, layer.size
        );
        (fetched, layer)
    };

    let _phase = phase("Download");
    let dest = destination(request, &read.image, &layer)?;
    let wasm = download_checked(&source, &layer, &dest).await?;
    info!(
        "wrote {} ({} bytes, {})",
        dest.display(),
        wasm.size,
        wasm.digest
    );
    Ok(PullOutcome {
        image: read.image.clone(),
        digest: fetched.digest,
        format: ArtifactFormat::of(&fetched.manifest),
        layer,
        wasm,
    })
}

/// Where the file goes: `output` (a file, or a directory, existing or ending in `/`, to put the
/// title in), else the working directory under the title.
fn destination(request: &PullRequest, image: &ImageRef, layer: &Descriptor) -> Result<PathBuf> {
    // Asked only when the title is used: an unusable one is warned about then.
    let name = || resolve::file_name_for(image, layer);
    let working = &request.read.working_directory;
    // Relative to the working directory, without a leading `./` when that is the current one.
    let under = |p: &Path| {
        if working == Path::new(".") {
            p.to_owned()
        } else {
            working.join(p)
        }
    };
    let path = match &request.output {
        None => under(Path::new(&name())),
        Some(out) => {
            let out = under(out);
            let names_a_directory = out.to_string_lossy().ends_with(std::path::MAIN_SEPARATOR);
            if out.is_dir() || names_a_directory {
                out.join(name())
            } else {
                out
            }
        }
    };
    // The file is renamed onto `path`: that would replace a device node, a FIFO or a directory
    // that is there (`-o /dev/null` as root made the null device a regular file).
    if let Ok(existing) = std::fs::metadata(&path)
        && !existing.is_file()
    {
        return Err(Error::io(
            "write",
            &path,
            std::io::Error::other(format!(
                "it is {}, not a regular file; give a file path or a directory for `output`",
                crate::locate::kind_of(&existing.file_type())
            )),
        ));
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| Error::io("create", parent, e))?;
    }
    Ok(path)
}

/// Streams `layer` into a temporary file next to `dest`, hashing and validating it as Wasm on
/// the way, and renames it onto `dest`. On any error nothing is left at `dest`.
pub async fn download_checked<T: ReadTarget>(
    target: &T,
    layer: &Descriptor,
    dest: &Path,
) -> Result<WasmFile> {
    let mut downloaded = fetch_validating(target, layer, dest).await?;
    let validated = downloaded
        .validated
        .take()
        .expect("a validating download has a verdict")?;
    // The layer's, or for an image the module's taken out of its layer.
    let content = downloaded.content();
    downloaded.persist()?;
    Ok(WasmFile::new(dest.to_owned(), content, validated))
}
