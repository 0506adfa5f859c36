//! Validation of a `.wasm` file: the full wasmparser validator, run in one streaming pass whose
//! memory is bounded by the largest section it must hold (see `wasm/source.rs`), not the file.
//! Tells a core module (wasip1) from a component (wasip2) and reads a component's top-level
//! imports and exports. The layer digest is computed apart ([`digest_file`]), so a push can
//! learn it at hashing speed while validation goes on.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use wasmparser::{Chunk, Encoding, Parser, Payload, ValidPayload, Validator, WasmFeatures};

use crate::error::{Error, Result};
use crate::reference::Digest;

mod funcs;
pub mod metadata;
pub mod policy;
mod source;
// The integration tests' LEB128 encoder, shared rather than copied.
#[cfg(test)]
#[path = "../tests/it/common/leb.rs"]
mod leb;

use source::{Input, Source};

/// Reads of this size feed the hash: small enough that what is read is still in the CPU's cache
/// when hashed (1 MiB reads hash 64 MiB in 90 ms here, 64 KiB reads in 57 ms).
const HASH_READ: usize = 64 << 10;

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

/// What validation learns of a binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validated {
    /// Module or component.
    pub kind: WasmKind,
    /// For a component, its interfaces.
    pub component: Option<ComponentInfo>,
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
    /// The file at `path`, with its digest and size and what validation found.
    pub fn new(path: PathBuf, (digest, size): (Digest, u64), validated: Validated) -> Self {
        WasmFile {
            path,
            digest,
            size,
            kind: validated.kind,
            component: validated.component,
        }
    }

    /// The file name, used as the layer title.
    pub fn file_name(&self) -> String {
        file_name(&self.path)
    }
}

/// The file name of `path`, or `module.wasm` when it has none: the layer title.
pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "module.wasm".to_owned())
}

/// The sha256 and size of the file at `path`, read once in large blocks.
pub fn digest_file(path: &Path) -> Result<(Digest, u64)> {
    let mut file = File::open(path).map_err(|e| Error::io("read", path, e))?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; HASH_READ];
    let mut size = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io("read", path, e)),
        };
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((Digest::from_hasher(hasher), size))
}

/// Fully validates the file at `path`.
pub fn validate_file(path: &Path) -> Result<Validated> {
    let file = File::open(path).map_err(|e| Error::io("read", path, e))?;
    validate_reader(path, file)
}

/// Validation of bytes that arrive in chunks (a download), on a thread of its own, so the
/// bytes are checked as they arrive instead of being read again afterwards.
#[derive(Debug)]
pub struct Validation {
    tx: Option<mpsc::SyncSender<bytes::Bytes>>,
    thread: std::thread::JoinHandle<Result<Validated>>,
}

impl Validation {
    /// Starts validating; `what` names the bytes in errors.
    pub fn start(what: PathBuf) -> Self {
        // A few chunks may wait; the sender blocks beyond that, so memory stays bounded.
        let (tx, rx) = mpsc::sync_channel::<bytes::Bytes>(16);
        let thread = std::thread::spawn(move || {
            validate_reader(
                &what,
                ChunkReader {
                    rx,
                    current: bytes::Bytes::new(),
                },
            )
        });
        Validation {
            tx: Some(tx),
            thread,
        }
    }

    /// Hands over the next chunk. Returns false when validation has already ended (the bytes
    /// are invalid, or it read the end of the binary); [`Validation::finish`] tells which.
    pub fn feed(&mut self, chunk: bytes::Bytes) -> bool {
        self.tx.as_ref().is_some_and(|tx| tx.send(chunk).is_ok())
    }

    /// Ends the input and waits for the verdict.
    pub fn finish(mut self) -> Result<Validated> {
        self.tx = None;
        self.thread.join().expect("validation does not panic")
    }
}

/// The chunks a [`Validation`] receives, as a reader.
struct ChunkReader {
    rx: mpsc::Receiver<bytes::Bytes>,
    current: bytes::Bytes,
}

impl Input for ChunkReader {
    fn skip(&mut self, mut n: u64) -> std::io::Result<u64> {
        let wanted = n;
        while n > 0 {
            if self.current.is_empty() {
                match self.rx.recv() {
                    Ok(chunk) => self.current = chunk,
                    Err(_) => break,
                }
            }
            let k = (self.current.len() as u64).min(n);
            bytes::Buf::advance(&mut self.current, k as usize);
            n -= k;
        }
        Ok(wanted - n)
    }
}

impl Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.recv() {
                Ok(chunk) => self.current = chunk,
                Err(_) => return Ok(0),
            }
        }
        let n = self.current.len().min(out.len());
        out[..n].copy_from_slice(&self.current[..n]);
        bytes::Buf::advance(&mut self.current, n);
        Ok(n)
    }
}

/// Checks that the file at `path` starts like Wasm: the quick check before a push starts.
pub fn check_header(path: &Path) -> Result<()> {
    let mut file = File::open(path).map_err(|e| Error::io("read", path, e))?;
    let mut head = Vec::with_capacity(8);
    (&mut file)
        .take(8)
        .read_to_end(&mut head)
        .map_err(|e| Error::io("read", path, e))?;
    check_magic(path, &head)
}

/// A clearer message than the parser's for the two commonest mistakes.
fn check_magic(path: &Path, head: &[u8]) -> Result<()> {
    if head.is_empty() {
        return Err(invalid(path, "the file is empty"));
    }
    if !head.starts_with(b"\0asm") {
        return Err(invalid(
            path,
            "it does not start with the `\\0asm` magic bytes; give the compiled .wasm, not a source or text file",
        ));
    }
    Ok(())
}

fn invalid(path: &Path, reason: impl Into<String>) -> Error {
    Error::InvalidWasm {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// Where the parser is in one module or component of a (possibly nested) binary.
#[derive(Debug, Default)]
struct Level {
    /// Known once its version header is read.
    encoding: Option<Encoding>,
    /// Function bodies of the code section still to come.
    bodies_left: u32,
}

impl Level {
    /// Whether the next bytes start a section.
    fn at_section_start(&self) -> bool {
        self.encoding.is_some() && self.bodies_left == 0
    }
}

/// Fully validates the binary `reader` yields; `path` names it in errors.
fn validate_reader(path: &Path, reader: impl Input) -> Result<Validated> {
    let mut src = Source::new(path, reader);
    src.fill_to(8)?;
    check_magic(path, src.bytes())?;

    let mut validator = Validator::new_with_features(WasmFeatures::all());
    let mut parser = Parser::new(0);
    let mut stack: Vec<(Parser, Level)> = Vec::new();
    let mut level = Level::default();
    let mut kind = None;
    let mut component = ComponentInfo::default();

    let (parsed, invalid_body) = funcs::validate_in_parallel(|pool| -> Result<()> {
        loop {
            let shadow = if level.at_section_start() {
                src.shadow_next_section(level.encoding == Some(Encoding::Module))?
            } else {
                None
            };
            let (data, eof) = match &shadow {
                Some(section) => (&section[..], false),
                None => (src.bytes(), src.eof()),
            };
            let (consumed, payload) = match parser.parse(data, eof) {
                Err(e) => return Err(invalid(path, describe(&e))),
                Ok(Chunk::NeedMoreData(hint)) => {
                    debug_assert!(shadow.is_none(), "a shadow holds its whole section");
                    src.fill(hint as u64)?;
                    continue;
                }
                Ok(Chunk::Parsed { consumed, payload }) => (consumed, payload),
            };
            if stack.is_empty() {
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
            match &payload {
                Payload::Version { encoding, .. } => level.encoding = Some(*encoding),
                Payload::CodeSectionStart { count, .. } => level.bodies_left = *count,
                Payload::CodeSectionEntry(_) => level.bodies_left -= 1,
                _ => {}
            }
            let is_end = matches!(payload, Payload::End(_));
            match validator
                .payload(&payload)
                .map_err(|e| invalid(path, describe(&e)))?
            {
                ValidPayload::Ok | ValidPayload::End(_) => {}
                ValidPayload::Parser(nested) => {
                    let outer = std::mem::replace(&mut parser, nested);
                    stack.push((outer, std::mem::take(&mut level)));
                }
                ValidPayload::Func(func, body) => {
                    pool.submit(func, &body)
                        .map_err(|e| invalid(path, describe(&e)))?;
                }
            }
            if shadow.is_none() {
                src.consume(consumed);
            }
            if is_end {
                match stack.pop() {
                    Some((outer, outer_level)) => (parser, level) = (outer, outer_level),
                    None => break,
                }
            }
            if pool.failed() {
                return Ok(());
            }
        }

        // Bytes after the end of the binary are not part of any valid Wasm file.
        while !src.eof() {
            src.fill(1 << 20)?;
        }
        if !src.bytes().is_empty() {
            return Err(invalid(
                path,
                format!(
                    "{} unexpected bytes after the end of the binary",
                    src.bytes().len()
                ),
            ));
        }
        Ok(())
    });
    if let Some(e) = invalid_body {
        return Err(invalid(path, describe(&e)));
    }
    parsed?;

    let kind = kind.ok_or_else(|| invalid(path, "no version header"))?;
    let component = (kind == WasmKind::Component).then(|| {
        component.target = infer_world(&component.exports);
        component
    });
    Ok(Validated { kind, component })
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
    use super::leb::leb;
    use super::*;

    /// The smallest valid module: magic and version.
    const EMPTY_MODULE: &[u8] = b"\0asm\x01\0\0\0";
    /// The smallest valid component: magic and the component layer/version.
    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

    fn check(bytes: &[u8]) -> Result<Validated> {
        validate_reader(Path::new("x.wasm"), bytes)
    }

    #[test]
    fn tells_module_from_component() {
        let module = check(EMPTY_MODULE).unwrap();
        assert_eq!(module.kind, WasmKind::Module);
        assert!(module.component.is_none());
        let component = check(EMPTY_COMPONENT).unwrap();
        assert_eq!(component.kind, WasmKind::Component);
        assert_eq!(component.component, Some(ComponentInfo::default()));
    }

    fn section(id: u8, body: &[u8]) -> Vec<u8> {
        [&[id][..], &leb(body.len()), body].concat()
    }

    fn module(sections: &[Vec<u8>]) -> Vec<u8> {
        [EMPTY_MODULE.to_vec(), sections.concat()].concat()
    }

    /// A data section of one segment: `header` (flags, memory, offset expression), then
    /// `payload_len` bytes.
    fn data(header: &[u8], payload_len: usize) -> Vec<u8> {
        let payload = vec![0xA5u8; payload_len];
        section(
            11,
            &[&leb(1)[..], header, &leb(payload_len), &payload].concat(),
        )
    }

    fn one_memory() -> Vec<u8> {
        section(5, &[1, 0, 64])
    }

    /// Shadowed validation must say what wasmparser says of the whole binary in memory.
    fn agrees_with_wasmparser(bytes: &[u8]) -> std::result::Result<(), String> {
        let ours = check(bytes).map(|_| ()).map_err(|e| e.to_string());
        let theirs = Validator::new_with_features(WasmFeatures::all())
            .validate_all(bytes)
            .map(|_| ())
            .map_err(|e| describe(&e));
        match (&ours, &theirs) {
            (Ok(()), Ok(())) => {}
            (Err(ours), Err(theirs)) => {
                assert!(ours.ends_with(theirs.as_str()), "{ours} / {theirs}")
            }
            _ => panic!("ours: {ours:?}, wasmparser: {theirs:?}"),
        }
        ours
    }

    const BIG: usize = 2 * SHADOW;
    const SHADOW: usize = source::SHADOW_MIN as usize;

    #[test]
    fn large_data_and_custom_sections_validate_as_wasmparser_says() {
        let i32_at_0 = [0x00, 0x41, 0x00, 0x0b];
        // Valid: an active segment, a passive one, a custom section, in a module.
        assert!(agrees_with_wasmparser(&module(&[one_memory(), data(&i32_at_0, BIG)])).is_ok());
        assert!(agrees_with_wasmparser(&module(&[one_memory(), data(&[0x01], BIG)])).is_ok());
        let custom = section(0, &[&[3][..], b"big", &vec![7u8; BIG]].concat());
        assert!(agrees_with_wasmparser(&module(&[custom.clone(), one_memory()])).is_ok());

        // Invalid headers are found with the parser's own message and offset.
        let err = |b: Vec<u8>| agrees_with_wasmparser(&b).unwrap_err();
        assert!(
            err(module(&[
                one_memory(),
                data(&[0x02, 0x01, 0x41, 0x00, 0x0b], BIG)
            ]))
            .contains("memory")
        );
        assert!(
            err(module(&[
                one_memory(),
                data(&[0x00, 0x42, 0x00, 0x0b], BIG)
            ]))
            .contains("type mismatch")
        );
        assert!(err(module(&[data(&i32_at_0, BIG)])).contains("memory"));
        let two_segments = section(12, &[2]);
        err(module(&[one_memory(), two_segments, data(&i32_at_0, BIG)]));
        err(module(&[one_memory(), data(&[0x07], BIG)]));
        let bad_name = section(0, &[&[2][..], &[0xff, 0xfe], &vec![0u8; BIG]].concat());
        err(module(&[bad_name]));
        // Trailing bytes inside the section, after its one segment.
        let mut trailing = data(&i32_at_0, BIG);
        trailing.splice(1..4, leb(BIG + 1 + 4 + 3 + 1));
        trailing.push(0);
        err(module(&[one_memory(), trailing]));

        // A section that claims more bytes than the file has.
        let mut cut = module(&[one_memory(), data(&i32_at_0, BIG)]);
        cut.truncate(cut.len() - 10);
        assert!(check(&cut).unwrap_err().to_string().contains("truncated"));
        let mut cut = module(&[custom]);
        cut.truncate(cut.len() - 10);
        assert!(check(&cut).unwrap_err().to_string().contains("truncated"));
    }

    #[test]
    fn a_large_segment_in_a_components_module_keeps_the_offsets_right() {
        let core = module(&[one_memory(), data(&[0x00, 0x41, 0x00, 0x0b], BIG)]);
        let after = section(0, &[&[4][..], b"note", b"after the module"].concat());
        let component = [EMPTY_COMPONENT.to_vec(), section(1, &core), after].concat();
        assert!(agrees_with_wasmparser(&component).is_ok());
        assert_eq!(check(&component).unwrap().kind, WasmKind::Component);
        // The same module with a segment for a memory it lacks.
        let core = module(&[one_memory(), data(&[0x02, 0x03, 0x41, 0x00, 0x0b], BIG)]);
        let component = [EMPTY_COMPONENT.to_vec(), section(1, &core)].concat();
        agrees_with_wasmparser(&component).unwrap_err();
    }

    #[test]
    fn chunks_are_validated_as_they_arrive() {
        let bytes = module(&[one_memory(), data(&[0x00, 0x41, 0x00, 0x0b], BIG)]);
        let mut validation = Validation::start(PathBuf::from("layer"));
        for chunk in bytes.chunks(100_000) {
            assert!(validation.feed(bytes::Bytes::copy_from_slice(chunk)));
        }
        assert_eq!(validation.finish().unwrap().kind, WasmKind::Module);

        let mut validation = Validation::start(PathBuf::from("layer"));
        validation.feed(bytes::Bytes::from_static(b"not wasm at all"));
        let err = validation.finish().unwrap_err().to_string();
        assert!(err.contains("layer") && err.contains("magic"), "{err}");
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
    fn an_invalid_function_among_many_is_found() {
        let mut text = String::from("(module");
        for i in 0..5000 {
            if i == 3777 {
                text.push_str(" (func (result i32) f32.const 1)");
            } else {
                text.push_str(" (func (result i32) i32.const 1)");
            }
        }
        text.push(')');
        let bytes = wat::parse_str(&text).unwrap();
        let err = check(&bytes).unwrap_err().to_string();
        assert!(err.contains("type mismatch"), "{err}");
        let valid = wat::parse_str(text.replace("f32.const", "i32.const")).unwrap();
        assert_eq!(check(&valid).unwrap().kind, WasmKind::Module);
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
