//! The bytes of a `.wasm` as the validator reads them: a window over a reader that holds only
//! what the parser has not consumed yet, and shadows of the large sections whose contents the
//! validator never reads.
//!
//! wasmparser's streaming parser wants a whole section in memory before it hands it over, except
//! for the code section (one function body at a time) and nested modules. A module whose bulk is
//! a data segment (embedded assets, an interpreter's heap image) or a custom section (debug
//! info) would be held whole. So such a section is given to the parser as a shadow of the same
//! length: every byte the validator reads (the custom section's name; each data segment's
//! flags, memory index, offset expression and length) copied, and the payload bytes, which no
//! validation rule looks at, left as untouched pages of an anonymous map, which cost no memory.
//! Offsets stay exact, so errors point at the real byte and nested modules end where they should.

use std::io::Read;
use std::path::Path;

use memmap2::MmapMut;
use wasmparser::{BinaryReader, ConstExpr};

use crate::error::{Error, Result};

/// Largest single read; a corrupt size field can ask for gigabytes.
const READ_STEP: usize = 1 << 20;

/// Custom and data sections at least this large are shadowed.
pub(super) const SHADOW_MIN: u32 = 1 << 20;

/// A data segment's header (flags, memory index, offset expression, length) fits in this many
/// bytes unless its offset expression is unusually long; then the section is copied as it is.
const SEGMENT_HEADER_WINDOW: usize = 64 << 10;

/// A custom section's name is at most this long (wasmparser's own limit, plus its length).
const NAME_WINDOW: usize = 100_000 + 5;

/// Where the bytes come from: a reader that can also pass over bytes without handing them out
/// (a file seeks; received chunks are dropped), so a skipped payload costs nothing.
pub(super) trait Input: Read + Sized {
    /// Passes over `n` bytes; returns how many there were (fewer at the end of the input).
    fn skip(&mut self, n: u64) -> std::io::Result<u64> {
        std::io::copy(&mut self.by_ref().take(n), &mut std::io::sink())
    }
}

impl Input for &[u8] {}

impl Input for std::fs::File {
    fn skip(&mut self, n: u64) -> std::io::Result<u64> {
        use std::io::{Seek, SeekFrom};
        let at = self.stream_position()?;
        let len = self.metadata()?.len();
        let to = at.saturating_add(n).min(len.max(at));
        self.seek(SeekFrom::Start(to))?;
        Ok(to - at)
    }
}

/// Unconsumed bytes read ahead of the parser: `buf[start..end]`. The buffer is zeroed once
/// when it grows, not at every read.
pub(super) struct Source<'p, R> {
    path: &'p Path,
    reader: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
}

impl<'p, R: Input> Source<'p, R> {
    pub(super) fn new(path: &'p Path, reader: R) -> Self {
        Source {
            path,
            reader,
            buf: Vec::new(),
            start: 0,
            end: 0,
            eof: false,
        }
    }

    /// The bytes read and not consumed yet.
    pub(super) fn bytes(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Whether the input has ended (what [`Source::bytes`] holds is all there is).
    pub(super) fn eof(&self) -> bool {
        self.eof
    }

    pub(super) fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.bytes().len());
        self.start += n;
    }

    /// Reads one more step of about `hint` bytes (at least 4 KiB, at most 1 MiB).
    pub(super) fn fill(&mut self, hint: u64) -> Result<()> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let have = self.end;
        let step = usize::try_from(hint)
            .unwrap_or(READ_STEP)
            .clamp(4096, READ_STEP);
        if self.buf.len() < have + step {
            self.buf.resize(have + step, 0);
        }
        let n = loop {
            match self.reader.read(&mut self.buf[have..have + step]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io("read", self.path, e)),
            }
        };
        self.end = have + n;
        self.eof = n == 0;
        Ok(())
    }

    /// Reads until `n` bytes are buffered or the input ends.
    pub(super) fn fill_to(&mut self, n: usize) -> Result<()> {
        while self.bytes().len() < n && !self.eof {
            self.fill((n - self.bytes().len()) as u64)?;
        }
        Ok(())
    }

    /// Moves the next `n` bytes into `out`.
    fn copy_into(&mut self, out: &mut [u8]) -> Result<()> {
        let mut done = 0;
        while done < out.len() {
            if self.bytes().is_empty() {
                self.fill((out.len() - done) as u64)?;
                if self.eof {
                    return Err(self.truncated());
                }
            }
            let n = self.bytes().len().min(out.len() - done);
            out[done..done + n].copy_from_slice(&self.bytes()[..n]);
            self.consume(n);
            done += n;
        }
        Ok(())
    }

    /// Passes over the next `n` bytes without keeping them: those buffered are dropped, the
    /// rest are never read.
    fn skip(&mut self, n: usize) -> Result<()> {
        let buffered = self.bytes().len().min(n);
        self.consume(buffered);
        let rest = (n - buffered) as u64;
        if rest > 0 {
            let skipped = loop {
                match self.reader.skip(rest) {
                    Ok(k) => break k,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(Error::io("read", self.path, e)),
                }
            };
            if skipped < rest {
                return Err(self.truncated());
            }
        }
        Ok(())
    }

    fn truncated(&self) -> Error {
        Error::InvalidWasm {
            path: self.path.to_owned(),
            reason: "the file is truncated (unexpected end of file)".to_owned(),
        }
    }

    /// At a section boundary of a module (`in_module`) or component: when the next section is a
    /// custom or data section of at least [`SHADOW_MIN`] bytes, consumes it and returns its
    /// shadow; otherwise consumes nothing.
    pub(super) fn shadow_next_section(&mut self, in_module: bool) -> Result<Option<MmapMut>> {
        self.fill_to(6)?;
        let mut header = BinaryReader::new(self.bytes(), 0);
        let (Ok(id), Ok(len)) = (header.read_u8(), header.read_var_u32()) else {
            return Ok(None);
        };
        let is_data = in_module && id == 11;
        if !(id == 0 || is_data) || len < SHADOW_MIN {
            return Ok(None);
        }
        let header_len = header.current_position();
        let total = header_len + len as usize;
        let mut shadow = MmapMut::map_anon(total).map_err(|e| Error::io("map", self.path, e))?;
        let mut at = 0;
        self.copy(&mut shadow, &mut at, header_len)?;
        if is_data {
            self.shadow_data(&mut shadow, &mut at)?;
        } else {
            self.fill_to(NAME_WINDOW.min(len as usize))?;
            let window = &self.bytes()[..self.bytes().len().min(len as usize)];
            let mut name = BinaryReader::new(window, 0);
            if name.read_string().is_ok() {
                let name_len = name.current_position();
                self.copy(&mut shadow, &mut at, name_len)?;
                self.skip(total - at)?;
                at = total;
            }
        }
        // Whatever was not understood is copied as it is, for the parser to judge.
        let rest = total - at;
        self.copy(&mut shadow, &mut at, rest)?;
        Ok(Some(shadow))
    }

    /// The segments of a data section: headers copied, payloads skipped. Stops, leaving the
    /// rest to be copied, at the first header it cannot read.
    fn shadow_data(&mut self, shadow: &mut [u8], at: &mut usize) -> Result<()> {
        let end = shadow.len();
        self.fill_to(5.min(end - *at))?;
        let mut reader = BinaryReader::new(&self.bytes()[..self.bytes().len().min(end - *at)], 0);
        let Ok(count) = reader.read_var_u32() else {
            return Ok(());
        };
        let count_len = reader.current_position();
        self.copy(shadow, at, count_len)?;
        for _ in 0..count {
            let left = end - *at;
            self.fill_to(SEGMENT_HEADER_WINDOW.min(left))?;
            let window = &self.bytes()[..self.bytes().len().min(left)];
            let Some((header_len, payload_len)) = segment_header(window) else {
                return Ok(());
            };
            if payload_len > left - header_len {
                return Ok(());
            }
            self.copy(shadow, at, header_len)?;
            self.skip(payload_len)?;
            *at += payload_len;
        }
        Ok(())
    }

    fn copy(&mut self, shadow: &mut [u8], at: &mut usize, n: usize) -> Result<()> {
        self.copy_into(&mut shadow[*at..*at + n])?;
        *at += n;
        Ok(())
    }
}

/// The length of a data segment's header and of its payload, read from `window`.
fn segment_header(window: &[u8]) -> Option<(usize, usize)> {
    let mut reader = BinaryReader::new(window, 0);
    match reader.read_var_u32().ok()? {
        0 => {
            reader.read::<ConstExpr<'_>>().ok()?;
        }
        1 => {}
        2 => {
            reader.read_var_u32().ok()?;
            reader.read::<ConstExpr<'_>>().ok()?;
        }
        _ => return None,
    }
    let payload_len = reader.read_var_u32().ok()? as usize;
    Some((reader.current_position(), payload_len))
}
