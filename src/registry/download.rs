//! Where a downloaded blob lands: a temporary file in the destination's directory, renamed onto
//! the destination only after its digest and size matched. On any error the temporary file is
//! removed, so a reader never finds half a blob, or a wrong one, under the destination's name.

use std::path::{Path, PathBuf};

use crate::artifact::Descriptor;
use crate::error::{Error, Result};
use crate::reference::Digest;

/// The directory `dest` will be in (`.` for a bare file name): where its temporary file goes,
/// so the final rename never crosses a file system.
pub fn parent_dir(dest: &Path) -> &Path {
    match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A download in progress into a temporary file next to `dest`.
#[derive(Debug)]
pub struct Download {
    tmp: tempfile::NamedTempFile,
    dest: PathBuf,
}

impl Download {
    /// Starts a download that will end at `dest`.
    pub fn create(dest: &Path) -> Result<Self> {
        let tmp = tempfile::Builder::new()
            .prefix(".wasm-oci-download-")
            .tempfile_in(parent_dir(dest))
            .map_err(|e| Error::io("create", dest, e))?;
        Ok(Download {
            tmp,
            dest: dest.to_owned(),
        })
    }

    /// The temporary file, for writing.
    pub fn file(&mut self) -> &mut std::fs::File {
        self.tmp.as_file_mut()
    }

    /// The destination.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Checks what arrived against `descriptor` and, when it matches, moves it onto the
    /// destination. On a mismatch the temporary file is removed.
    pub fn finish(self, descriptor: &Descriptor, actual: &Digest, size: u64) -> Result<()> {
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
        self.persist()
    }

    /// Moves the file onto the destination; the caller has checked it.
    pub fn persist(self) -> Result<()> {
        self.tmp
            .as_file()
            .sync_all()
            .map_err(|e| Error::io("write", &self.dest, e))?;
        self.tmp
            .persist(&self.dest)
            .map_err(|e| Error::io("write", &self.dest, e.error))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

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

    #[test]
    fn a_wrong_or_short_blob_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("m.wasm");
        let good = descriptor(b"0123456789");

        let mut short = Download::create(&dest).unwrap();
        short.file().write_all(b"01234").unwrap();
        let err = short.finish(&good, &Digest::of(b"01234"), 5).unwrap_err();
        assert!(
            err.to_string().contains("cut short: 5 of 10 bytes"),
            "{err}"
        );

        let mut wrong = Download::create(&dest).unwrap();
        wrong.file().write_all(b"abcdefghij").unwrap();
        let err = wrong
            .finish(&good, &Digest::of(b"abcdefghij"), 10)
            .unwrap_err();
        assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "no file, no temporary"
        );

        let mut ok = Download::create(&dest).unwrap();
        ok.file().write_all(b"0123456789").unwrap();
        ok.finish(&good, &good.digest, 10).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"0123456789");
    }
}
