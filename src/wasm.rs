//! Validation of a `.wasm` file before anything is sent: the full wasmparser validator, run in
//! one streaming pass that also computes the layer digest, so memory stays bounded by the largest
//! section, not the file. Tells a core module (wasip1) from a component (wasip2) and reads a
//! component's top-level imports and exports.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use wasmparser::{
    Chunk, Encoding, FuncValidatorAllocations, Parser, Payload, ValidPayload, Validator,
    WasmFeatures,
};

use crate::error::{Error, Result};
use crate::reference::Digest;

/// Largest single read while parsing; a corrupt size field can ask for gigabytes.
const READ_STEP: u64 = 1 << 20;

/// Whether the binary is a core module or a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WasmKind {
    /// A core WebAssembly module (WASI preview 1).
    Module,
    /// A component (WASI preview 2).
    Component,
}

impl WasmKind {
    /// The `os` value of the Wasm OCI config.
    pub fn os(self) -> &'static str {
        match self {
            WasmKind::Module => "wasip1",
            WasmKind::Component => "wasip2",
        }
    }
}

/// The interfaces a component imports and exports, and its target world where it can be told.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentInfo {
    /// Top-level export names, such as `wasi:cli/run@0.2.0`.
    pub exports: Vec<String>,
    /// Top-level import names, such as `wasi:io/streams@0.2.0`.
    pub imports: Vec<String>,
    /// The WASI world the exports identify (`wasi:cli/command@0.2.0`, `wasi:http/proxy@0.2.0`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// A validated Wasm file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WasmFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// The sha256 of its bytes: the layer digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// Module or component.
    pub kind: WasmKind,
    /// For a component, its interfaces.
    pub component: Option<ComponentInfo>,
}

impl WasmFile {
    /// The file name, used as the layer title.
    pub fn file_name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "module.wasm".to_owned())
    }
}

/// Reads, hashes and fully validates the file at `path`.
pub fn inspect(path: &Path) -> Result<WasmFile> {
    let file = File::open(path).map_err(|e| Error::io("read", path, e))?;
    inspect_reader(path, file)
}

fn invalid(path: &Path, reason: impl Into<String>) -> Error {
    Error::InvalidWasm {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

fn inspect_reader(path: &Path, mut reader: impl Read) -> Result<WasmFile> {
    let mut hasher = sha2::Sha256::new();
    let mut size = 0u64;
    let mut buf: Vec<u8> = Vec::new();
    let mut eof = false;

    let mut fill = |buf: &mut Vec<u8>, want: u64| -> Result<bool> {
        let start = buf.len();
        let step = want.clamp(4096, READ_STEP) as usize;
        buf.resize(start + step, 0);
        let n = loop {
            match reader.read(&mut buf[start..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io("read", path, e)),
            }
        };
        buf.truncate(start + n);
        hasher.update(&buf[start..]);
        size += n as u64;
        Ok(n == 0)
    };

    // A clearer message than the parser's for the two commonest mistakes.
    while buf.len() < 8 && !eof {
        eof = fill(&mut buf, 8)?;
    }
    if buf.is_empty() {
        return Err(invalid(path, "the file is empty"));
    }
    if !buf.starts_with(b"\0asm") {
        return Err(invalid(
            path,
            "it does not start with the `\\0asm` magic bytes; give the compiled .wasm, not a source or text file",
        ));
    }

    let mut validator = Validator::new_with_features(WasmFeatures::all());
    let mut allocs = FuncValidatorAllocations::default();
    let mut parser = Parser::new(0);
    let mut stack: Vec<Parser> = Vec::new();
    let mut kind = None;
    let mut component = ComponentInfo::default();

    loop {
        let (consumed, done) = match parser.parse(&buf, eof) {
            Err(e) => return Err(invalid(path, describe(&e))),
            Ok(Chunk::NeedMoreData(hint)) => {
                eof = fill(&mut buf, hint as u64)?;
                continue;
            }
            Ok(Chunk::Parsed { consumed, payload }) => {
                let depth = stack.len();
                if depth == 0 {
                    match &payload {
                        Payload::Version { encoding, .. } => {
                            kind = Some(match encoding {
                                Encoding::Module => WasmKind::Module,
                                Encoding::Component => WasmKind::Component,
                            });
                        }
                        Payload::ComponentImportSection(reader) => {
                            for import in reader.clone() {
                                let import = import.map_err(|e| invalid(path, describe(&e)))?;
                                push_unique(&mut component.imports, import.name.name);
                            }
                        }
                        Payload::ComponentExportSection(reader) => {
                            for export in reader.clone() {
                                let export = export.map_err(|e| invalid(path, describe(&e)))?;
                                push_unique(&mut component.exports, export.name.name);
                            }
                        }
                        _ => {}
                    }
                }
                let is_end = matches!(payload, Payload::End(_));
                match validator
                    .payload(&payload)
                    .map_err(|e| invalid(path, describe(&e)))?
                {
                    ValidPayload::Ok | ValidPayload::End(_) => {}
                    ValidPayload::Parser(nested) => {
                        stack.push(std::mem::replace(&mut parser, nested));
                    }
                    ValidPayload::Func(func, body) => {
                        let mut func = func.into_validator(std::mem::take(&mut allocs));
                        func.validate(&body)
                            .map_err(|e| invalid(path, describe(&e)))?;
                        allocs = func.into_allocations();
                    }
                }
                let done = if is_end {
                    match stack.pop() {
                        Some(outer) => {
                            parser = outer;
                            false
                        }
                        None => true,
                    }
                } else {
                    false
                };
                (consumed, done)
            }
        };
        buf.drain(..consumed);
        if done {
            break;
        }
    }

    // Bytes after the end of the binary are not part of any valid Wasm file.
    while !eof {
        eof = fill(&mut buf, READ_STEP)?;
    }
    if !buf.is_empty() {
        return Err(invalid(
            path,
            format!("{} unexpected bytes after the end of the binary", buf.len()),
        ));
    }

    let kind = kind.ok_or_else(|| invalid(path, "no version header"))?;
    let component = (kind == WasmKind::Component).then(|| {
        component.target = infer_world(&component.exports);
        component
    });
    Ok(WasmFile {
        path: path.to_owned(),
        digest: Digest::from_hasher(hasher),
        size,
        kind,
        component,
    })
}

fn push_unique(names: &mut Vec<String>, name: &str) {
    if !names.iter().any(|n| n == name) {
        names.push(name.to_owned());
    }
}

fn describe(e: &wasmparser::BinaryReaderError) -> String {
    let message = e.message();
    let message = if message.contains("unexpected end-of-file") {
        "the file is truncated (unexpected end of file)".to_owned()
    } else {
        message.to_owned()
    };
    format!("{message} (at byte offset {:#x})", e.offset())
}

/// The standard WASI world a component's exports identify, where they identify one.
fn infer_world(exports: &[String]) -> Option<String> {
    let versioned = |iface: &str, world: &str| {
        exports.iter().find_map(|e| {
            let rest = e.strip_prefix(iface)?;
            match rest.strip_prefix('@') {
                Some(version) => Some(format!("{world}@{version}")),
                None if rest.is_empty() => Some(world.to_owned()),
                None => None,
            }
        })
    };
    versioned("wasi:http/incoming-handler", "wasi:http/proxy")
        .or_else(|| versioned("wasi:cli/run", "wasi:cli/command"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest valid module: magic and version.
    const EMPTY_MODULE: &[u8] = b"\0asm\x01\0\0\0";
    /// The smallest valid component: magic and the component layer/version.
    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

    fn check(bytes: &[u8]) -> Result<WasmFile> {
        inspect_reader(Path::new("x.wasm"), bytes)
    }

    #[test]
    fn tells_module_from_component() {
        let module = check(EMPTY_MODULE).unwrap();
        assert_eq!(module.kind, WasmKind::Module);
        assert_eq!(module.size, 8);
        assert_eq!(module.digest, Digest::of(EMPTY_MODULE));
        assert!(module.component.is_none());
        let component = check(EMPTY_COMPONENT).unwrap();
        assert_eq!(component.kind, WasmKind::Component);
        assert_eq!(component.component, Some(ComponentInfo::default()));
    }

    #[test]
    fn refuses_what_is_not_wasm() {
        let err = |b: &[u8]| check(b).unwrap_err().to_string();
        assert!(err(b"").contains("empty"));
        assert!(err(b"fn main() {}").contains("magic"));
        assert!(err(&EMPTY_MODULE[..6]).contains("truncated"));
        // A type section that claims 100 bytes but ends at once.
        assert!(err(b"\0asm\x01\0\0\0\x01\x64").contains("truncated"));
        // A function section that names a type that does not exist: parses, but is invalid.
        let invalid = b"\0asm\x01\0\0\0\x03\x02\x01\x05";
        assert!(err(invalid).contains("x.wasm"));
        // Trailing bytes.
        assert!(
            err(b"\0asm\x01\0\0\0\0").contains("after the end")
                || err(b"\0asm\x01\0\0\0\0").contains("offset")
        );
    }

    #[test]
    fn a_huge_declared_section_does_not_allocate_it() {
        // Section 1 claiming 0xFFFFFFF bytes; the reader must fail on EOF, not allocate 256 MiB.
        let bytes = b"\0asm\x01\0\0\0\x01\xff\xff\xff\x7f";
        assert!(check(bytes).unwrap_err().to_string().contains("truncated"));
    }

    #[test]
    fn worlds_are_inferred_from_exports() {
        let w = |e: &[&str]| infer_world(&e.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            w(&["wasi:cli/run@0.2.0"]).as_deref(),
            Some("wasi:cli/command@0.2.0")
        );
        assert_eq!(
            w(&["wasi:http/incoming-handler@0.2.3"]).as_deref(),
            Some("wasi:http/proxy@0.2.3")
        );
        assert_eq!(w(&["my:pkg/calc"]), None);
    }
}
