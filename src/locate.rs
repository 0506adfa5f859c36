//! Locate mode: `path` names a file, or a glob that must match exactly one file.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::input;

/// Resolves `pattern` (relative to `workdir` unless absolute) to exactly one file.
pub fn locate(workdir: &Path, pattern: &str) -> Result<PathBuf> {
    let full = if Path::new(pattern).is_absolute() {
        PathBuf::from(pattern)
    } else {
        workdir.join(pattern)
    };
    let is_glob = pattern.contains(['*', '?', '[']);
    if !is_glob {
        return match std::fs::metadata(&full) {
            Ok(m) if m.is_file() => Ok(full),
            Ok(m) if m.is_dir() => Err(Error::Locate(format!(
                "`{pattern}` is a directory; give the path of a .wasm file or a glob such as `{pattern}/*.wasm`"
            ))),
            Ok(m) => Err(Error::Locate(format!(
                "`{pattern}` is not a regular file ({}); give the path of a .wasm file",
                kind_of(&m.file_type())
            ))),
            Err(_) => Err(Error::Locate(format!(
                "no file at `{pattern}` (looked in `{}`); check `path` and `working-directory`",
                workdir.display()
            ))),
        };
    }
    let full_pattern = full.to_string_lossy().into_owned();
    let paths = glob::glob(&full_pattern)
        .map_err(|e| Error::input(input::PATH, format!("`{pattern}` is not a valid glob: {e}")))?;
    let mut matches: Vec<PathBuf> = paths
        .filter_map(|p| p.ok())
        .filter(|p| p.is_file())
        .collect();
    matches.sort();
    match matches.len() {
        0 => Err(Error::Locate(format!(
            "no file matches `{pattern}` in `{}`; build the module first or fix `path`",
            workdir.display()
        ))),
        1 => Ok(matches.remove(0)),
        n => {
            let shown: Vec<String> = matches
                .iter()
                .map(|p| p.strip_prefix(workdir).unwrap_or(p).display().to_string())
                .collect();
            Err(Error::Locate(format!(
                "`{pattern}` matches {n} files ({}); make `path` match exactly one",
                shown.join(", ")
            )))
        }
    }
}

/// What a file that is not a regular file is, for a message: "a directory", "a FIFO", ...
pub fn kind_of(file_type: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_file() {
        "a regular file"
    } else {
        "a special file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_match() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("dist")).unwrap();
        std::fs::write(dir.path().join("dist/a.wasm"), b"x").unwrap();
        assert_eq!(
            locate(dir.path(), "dist/*.wasm").unwrap(),
            dir.path().join("dist/a.wasm")
        );
        assert_eq!(
            locate(dir.path(), "dist/a.wasm").unwrap(),
            dir.path().join("dist/a.wasm")
        );
        std::fs::write(dir.path().join("dist/b.wasm"), b"x").unwrap();
        let err = locate(dir.path(), "dist/*.wasm").unwrap_err().to_string();
        assert!(err.contains("matches 2 files"), "{err}");
        assert!(
            err.contains("dist/a.wasm") && err.contains("dist/b.wasm"),
            "{err}"
        );
        let err = locate(dir.path(), "out/*.wasm").unwrap_err().to_string();
        assert!(err.contains("no file matches `out/*.wasm`"), "{err}");
        let err = locate(dir.path(), "missing.wasm").unwrap_err().to_string();
        assert!(err.contains("no file at `missing.wasm`"), "{err}");
        let err = locate(dir.path(), "dist").unwrap_err().to_string();
        assert!(err.contains("is a directory"), "{err}");
    }
}
