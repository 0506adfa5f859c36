//! The metadata a module or component carries about itself: its name and the custom sections of
//! WebAssembly/tool-conventions' Annotations.md (`version`, `description`, `authors`,
//! `licenses`, `source`, `homepage`, `revision`), read by the `wasm-metadata` crate as wkg reads
//! them on publish. Only the top level counts, as for wkg: a component's nested modules keep
//! their own.
//!
//! The file is not read whole: its sections are walked by their sizes, and only the top-level
//! custom sections of those names are read, into a small binary of just them that
//! `wasm-metadata` then parses.

use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::Path;

use serde::Serialize;

/// The custom sections worth reading: the two name sections and the annotation sections.
const SECTIONS: &[&str] = &[
    "name",
    "component-name",
    "version",
    "description",
    "authors",
    "licenses",
    "source",
    "homepage",
    "revision",
];

/// What a binary's metadata sections say. Every field is optional; most binaries have none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EmbeddedMetadata {
    /// The module or component name (the `name` or `component-name` section).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `version`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `description`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `authors`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authors: Option<String>,
    /// `licenses`, an SPDX expression.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub licenses: Option<String>,
    /// `source`, the source repository's URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// `homepage`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub homepage: Option<String>,
    /// `revision`, the commit it was built from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
}

impl EmbeddedMetadata {
    /// Whether no field is set.
    pub fn is_empty(&self) -> bool {
        self == &EmbeddedMetadata::default()
    }

    /// Reads the metadata of the (already validated) binary at `path`. The error is the reason,
    /// for the caller to word.
    pub fn read(path: &Path) -> Result<Self, String> {
        let file = File::open(path).map_err(|e| e.to_string())?;
        let sections = top_level_sections(BufReader::new(file))?;
        let payload = wasm_metadata::Payload::from_binary(&sections).map_err(|e| e.to_string())?;
        let m = payload.metadata();
        let text = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
        Ok(EmbeddedMetadata {
            name: text(m.name.clone()),
            version: text(m.version.as_ref().map(ToString::to_string)),
            description: text(m.description.as_ref().map(ToString::to_string)),
            authors: text(m.authors.as_ref().map(ToString::to_string)),
            licenses: text(m.licenses.as_ref().map(ToString::to_string)),
            source: text(m.source.as_ref().map(ToString::to_string)),
            homepage: text(m.homepage.as_ref().map(ToString::to_string)),
            revision: text(m.revision.as_ref().map(ToString::to_string)),
        })
    }
}

/// The binary's 8-byte header followed by its top-level custom sections named in
/// [`SECTIONS`], byte for byte; every other section is passed over unread.
fn top_level_sections<R: Read + Seek>(mut reader: BufReader<R>) -> Result<Vec<u8>, String> {
    let mut out = vec![0u8; 8];
    reader
        .read_exact(&mut out)
        .map_err(|_| "no Wasm header".to_owned())?;
    loop {
        let mut id = [0u8; 1];
        match reader.read(&mut id) {
            Ok(0) => return Ok(out),
            Ok(_) => {}
            Err(e) => return Err(e.to_string()),
        }
        let (size, _) = read_leb(&mut reader)?;
        if id[0] != 0 {
            skip(&mut reader, size)?;
            continue;
        }
        let (name_len, leb_len) = read_leb(&mut reader)?;
        let mut name = vec![0u8; usize::try_from(name_len).map_err(|e| e.to_string())?];
        reader.read_exact(&mut name).map_err(|e| e.to_string())?;
        let rest = size
            .checked_sub(leb_len + name_len)
            .ok_or("a custom section is shorter than its name")?;
        if !SECTIONS.iter().any(|s| s.as_bytes() == name) {
            skip(&mut reader, rest)?;
            continue;
        }
        let mut body = Vec::new();
        (&mut reader)
            .take(rest)
            .read_to_end(&mut body)
            .map_err(|e| e.to_string())?;
        if body.len() as u64 != rest {
            return Err("a custom section is truncated".to_owned());
        }
        out.push(0);
        write_leb(&mut out, size);
        write_leb(&mut out, name_len);
        out.extend_from_slice(&name);
        out.extend_from_slice(&body);
    }
}

/// Reads an unsigned LEB128 number; returns it and how many bytes it took.
fn read_leb(reader: &mut impl Read) -> Result<(u64, u64), String> {
    let (mut value, mut shift, mut len) = (0u64, 0u32, 0u64);
    loop {
        let mut byte = [0u8; 1];
        reader
            .read_exact(&mut byte)
            .map_err(|_| "a section header is truncated".to_owned())?;
        len += 1;
        if shift >= 35 {
            return Err("a section size is too large".to_owned());
        }
        value |= u64::from(byte[0] & 0x7f) << shift;
        if byte[0] & 0x80 == 0 {
            return Ok((value, len));
        }
        shift += 7;
    }
}

fn write_leb(out: &mut Vec<u8>, mut n: u64) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Passes over `n` bytes without reading them.
fn skip<R: Read + Seek>(reader: &mut BufReader<R>, n: u64) -> Result<(), String> {
    let n = i64::try_from(n).map_err(|e| e.to_string())?;
    reader.seek_relative(n).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_metadata::{AddMetadata, AddMetadataField, Description, Licenses, Revision, Source};

    #[test]
    fn reads_what_wasm_metadata_wrote_and_passes_over_the_rest() {
        let module = wat::parse_str(
            r#"(module $calc (memory 1) (data (i32.const 0) "payload")
                (func (export "f") (result i32) i32.const 1))"#,
        )
        .unwrap();
        let mut add = AddMetadata::default();
        add.description = AddMetadataField::Set(Description::new("adds numbers"));
        add.licenses = AddMetadataField::Set(Licenses::new("MIT OR Apache-2.0").unwrap());
        add.source = AddMetadataField::Set(Source::new("https://github.com/acme/calc").unwrap());
        add.revision = AddMetadataField::Set(Revision::new("abc123"));
        let wasm = add.to_wasm(&module).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("calc.wasm");
        std::fs::write(&path, &wasm).unwrap();
        let read = EmbeddedMetadata::read(&path).unwrap();
        assert_eq!(read.name.as_deref(), Some("calc"));
        assert_eq!(read.description.as_deref(), Some("adds numbers"));
        assert_eq!(read.licenses.as_deref(), Some("MIT OR Apache-2.0"));
        assert_eq!(read.source.as_deref(), Some("https://github.com/acme/calc"));
        assert_eq!(read.revision.as_deref(), Some("abc123"));
        assert_eq!(read.version, None);

        std::fs::write(&path, &module).unwrap();
        let plain = EmbeddedMetadata::read(&path).unwrap();
        assert_eq!(plain.description, None);
        assert_eq!(plain.name.as_deref(), Some("calc"));
    }
}
