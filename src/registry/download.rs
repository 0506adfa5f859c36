//! Where a downloaded blob lands: a temporary file in the destination's directory, renamed onto
//! the destination only after its digest and size matched (and, for a `.wasm`, after it
//! validated). On any error the temporary file is removed, so a reader never finds half a blob,
//! or a wrong one, under the destination's name.
//!
//! The bytes are handled in one pass as they arrive: the network task only hands each chunk
//! over; a writer thread appends it to the file and hashes it, and a validating thread checks it
//! as Wasm, so receiving, hashing and validating overlap and nothing is read twice.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::Digest as _;

use super::ReadTarget;
use super::progress::Progress;
use crate::artifact::Descriptor;
use crate::error::{Error, Result};
use crate::reference::Digest;
use crate::wasm::{Validated, Validation};

/// Chunks waiting for the writer; the network task waits beyond that, so memory stays bounded.
const QUEUE: usize = 16;

/// The mode a new file is created with: `0666` less the umask, as any program creates a file
/// (tempfile's own default, `0600`, would keep a pulled `.wasm` or a layout from the next step's
/// user: a container action runs as root, the runner's steps as uid 1001).
pub fn file_permissions() -> std::fs::Permissions {
    std::os::unix::fs::PermissionsExt::from_mode(0o666)
}

/// The directory `dest` will be in (`.` for a bare file name): where its temporary file goes,
/// so the final rename never crosses a file system.
pub fn parent_dir(dest: &Path) -> &Path {
    match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Streams the `.wasm` blob `descriptor` describes from `target` into a temporary file next to
/// `dest`, hashing and validating it on the way (validation errors name it `layer <digest>`),
/// and checks its digest and size. The verdict of validation is in [`Downloaded::validated`];
/// the caller persists the file, or drops it to leave nothing behind.
pub async fn fetch_validating<T: ReadTarget>(
    target: &T,
    descriptor: &Descriptor,
    dest: &Path,
) -> Result<Downloaded> {
    if crate::artifact::image::is_layer(&descriptor.media_type) {
        return crate::artifact::image::fetch_module(target, descriptor, dest).await;
    }
    let what = PathBuf::from(format!("layer {}", descriptor.digest));
    let mut download = Download::create_validating(dest, what)?;
    let name = dest.file_name().unwrap_or_default().to_string_lossy();
    download.progress = Some(Progress::new(
        format!("download of {name}"),
        descriptor.size,
    ));
    target.get_blob_into(descriptor, &mut download).await?;
    let checked = descriptor.clone();
    tokio::task::spawn_blocking(move || download.finish(&checked))
        .await
        .expect("the download's writer does not panic")
}

/// What the writer thread ends with.
struct Written {
    tmp: tempfile::NamedTempFile,
    digest: Digest,
    size: u64,
    validated: Option<Result<Validated>>,
}

/// A download in progress into a temporary file next to `dest`.
#[derive(Debug)]
pub struct Download {
    dest: PathBuf,
    tx: Option<tokio::sync::mpsc::Sender<bytes::Bytes>>,
    writer: Option<std::thread::JoinHandle<Result<Written>>>,
    received: u64,
    /// What validation errors name it, when it is validated.
    validate: Option<PathBuf>,
    /// Logged as the chunks arrive, for a long download.
    progress: Option<Progress>,
}

impl Download {
    /// Starts a download of a `.wasm` that is validated as it arrives; `what` names it in
    /// validation errors.
    pub fn create_validating(dest: &Path, what: PathBuf) -> Result<Self> {
        Self::start(dest, Some(what))
    }

    /// Starts a download that is only checked by digest (an image layer the module is then
    /// taken out of).
    pub fn create(dest: &Path) -> Result<Self> {
        Self::start(dest, None)
    }

    fn start(dest: &Path, validate: Option<PathBuf>) -> Result<Self> {
        let named = validate.clone();
        let mut tmp = tempfile::Builder::new()
            .prefix(".wasm-oci-download-")
            .permissions(file_permissions())
            .tempfile_in(parent_dir(dest))
            .map_err(|e| Error::io("create", dest, e))?;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(QUEUE);
        let path = dest.to_owned();
        let writer = std::thread::spawn(move || {
            let mut validation = validate.map(Validation::start);
            // Hashing is the costliest step: it has a thread of its own.
            let (to_hasher, chunks) = std::sync::mpsc::sync_channel::<bytes::Bytes>(QUEUE);
            let hasher = std::thread::spawn(move || {
                let mut hasher = sha2::Sha256::new();
                let mut size = 0u64;
                for chunk in chunks {
                    hasher.update(&chunk);
                    size += chunk.len() as u64;
                }
                (Digest::from_hasher(hasher), size)
            });
            while let Some(chunk) = rx.blocking_recv() {
                tmp.as_file_mut()
                    .write_all(&chunk)
                    .map_err(|e| Error::io("write", &path, e))?;
                let _ = to_hasher.send(chunk.clone());
                if let Some(v) = &mut validation {
                    // A validator that stopped has its verdict; the bytes still count.
                    v.feed(chunk);
                }
            }
            drop(to_hasher);
            let (digest, size) = hasher.join().expect("hashing does not panic");
            Ok(Written {
                tmp,
                digest,
                size,
                validated: validation.map(Validation::finish),
            })
        });
        Ok(Download {
            dest: dest.to_owned(),
            tx: Some(tx),
            writer: Some(writer),
            received: 0,
            validate: named,
            progress: None,
        })
    }

    /// Starts over, for a transfer tried again: what arrived is dropped (its temporary file
    /// removed), and the next chunk written is the blob's first.
    pub fn restart(&mut self) -> Result<()> {
        let fresh = Self::start(&self.dest, self.validate.clone())?;
        drop(std::mem::replace(self, fresh));
        Ok(())
    }

    /// Appends the next chunk; waits while the writer is behind.
    pub async fn write(&mut self, chunk: bytes::Bytes) -> Result<()> {
        self.received += chunk.len() as u64;
        if let Some(progress) = &mut self.progress {
            progress.advance(chunk.len() as u64);
        }
        let sent = match &self.tx {
            Some(tx) => tx.send(chunk).await.is_ok(),
            None => false,
        };
        if sent {
            return Ok(());
        }
        // The writer stopped: its error says why.
        match self.join() {
            Err(e) => Err(e),
            Ok(_) => Err(Error::io(
                "write",
                &self.dest,
                std::io::Error::other("the download's writer stopped"),
            )),
        }
    }

    /// How many bytes have arrived so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// The destination.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    fn join(&mut self) -> Result<Written> {
        self.tx = None;
        self.writer
            .take()
            .expect("a download is joined once")
            .join()
            .expect("the download's writer does not panic")
    }

    /// Waits for the last bytes to be written and checks them against `descriptor`. On a
    /// mismatch the temporary file is removed.
    pub fn finish(mut self, descriptor: &Descriptor) -> Result<Downloaded> {
        let written = self.join()?;
        let (actual, size) = (&written.digest, written.size);
        if size < descriptor.size && actual != &descriptor.digest {
            return Err(Error::Incomplete {
                what: format!("blob {}", descriptor.digest),
                expected: descriptor.size,
                received: size,
            });
        }
        if actual != &descriptor.digest || size != descriptor.size {
            return Err(Error::DigestMismatch {
                what: format!("blob {}", descriptor.digest),
                expected: format!("{} ({} bytes)", descriptor.digest, descriptor.size),
                actual: format!("{actual} ({size} bytes)"),
            });
        }
        Ok(Downloaded {
            tmp: written.tmp,
            dest: std::mem::take(&mut self.dest),
            validated: written.validated,
            content: (written.digest, written.size),
        })
    }
}

impl Drop for Download {
    /// A download dropped unfinished (an error on the way) waits for its writer, whose
    /// temporary file is removed as it ends: the process may exit right after.
    fn drop(&mut self) {
        if self.writer.is_some() {
            let _ = self.join();
        }
    }
}

/// A download whose digest and size matched, not yet at its destination.
#[derive(Debug)]
pub struct Downloaded {
    tmp: tempfile::NamedTempFile,
    dest: PathBuf,
    /// The verdict of validation, for a download that validated.
    pub validated: Option<Result<Validated>>,
    content: (Digest, u64),
}

impl Downloaded {
    /// A file taken out of a download (the module of an image layer), with its own digest and
    /// size.
    pub fn new(
        tmp: tempfile::NamedTempFile,
        dest: PathBuf,
        validated: Option<Result<Validated>>,
        content: (Digest, u64),
    ) -> Self {
        Downloaded {
            tmp,
            dest,
            validated,
            content,
        }
    }

    /// The digest and size of the file that goes to the destination: the blob's, or the
    /// module's when it was taken out of an image layer.
    pub fn content(&self) -> (Digest, u64) {
        self.content.clone()
    }

    /// The temporary file it is in.
    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// Moves the file onto the destination (an atomic rename: a reader sees the whole file or
    /// none).
    pub fn persist(self) -> Result<()> {
        // A file replaced keeps its mode (an executable bit, a narrower mode chosen for it).
        if let Ok(existing) = std::fs::metadata(&self.dest) {
            std::fs::set_permissions(self.tmp.path(), existing.permissions())
                .map_err(|e| Error::io("write", &self.dest, e))?;
        }
        self.tmp
            .persist(&self.dest)
            .map_err(|e| Error::io("write", &self.dest, e.error))?;
        crate::owner::hand_over(&self.dest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn descriptor(bytes: &[u8]) -> Descriptor {
        Descriptor {
            media_type: "application/wasm".into(),
            digest: Digest::of(bytes),
            size: bytes.len() as u64,
            artifact_type: None,
            annotations: Default::default(),
        }
    }

    fn download(dest: &Path, bytes: &'static [u8]) -> Download {
        let mut d = Download::create_validating(dest, "layer".into()).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        for chunk in bytes.chunks(3) {
            runtime
                .block_on(d.write(bytes::Bytes::copy_from_slice(chunk)))
                .unwrap();
        }
        d
    }

    #[test]
    fn a_wrong_or_short_blob_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("m.wasm");
        let good = descriptor(b"0123456789");

        let err = download(&dest, b"01234").finish(&good).unwrap_err();
        assert!(
            err.to_string().contains("cut short: 5 of 10 bytes"),
            "{err}"
        );
        let err = download(&dest, b"abcdefghij").finish(&good).unwrap_err();
        assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "no file, no temporary"
        );

        // A download started over holds only what came after.
        let mut again = download(&dest, b"01234");
        again.restart().unwrap();
        assert_eq!(again.received(), 0);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "one temporary"
        );
        drop(again);

        let ok = download(&dest, b"0123456789");
        assert_eq!(ok.received(), 10);
        ok.finish(&good).unwrap().persist().unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"0123456789");
    }

    #[test]
    fn a_wasm_download_is_validated_on_the_way() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("m.wasm");
        const MODULE: &[u8] = b"\0asm\x01\0\0\0";
        let done = download(&dest, MODULE).finish(&descriptor(MODULE)).unwrap();
        let validated = done.validated.as_ref().unwrap().as_ref().unwrap();
        assert_eq!(validated.kind, crate::wasm::WasmKind::Module);

        const NOT_WASM: &[u8] = b"#!/bin/sh\necho hi\n";
        let done = download(&dest, NOT_WASM)
            .finish(&descriptor(NOT_WASM))
            .unwrap();
        let err = done.validated.unwrap().unwrap_err().to_string();
        assert!(err.contains("magic"), "{err}");
    }
}
