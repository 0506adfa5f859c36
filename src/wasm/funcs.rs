//! Function bodies validated on worker threads while the parser reads on. Validating code is
//! most of the time a push spends on a large module; bodies are independent of each other, so
//! they are checked in batches on every core. The channel is bounded, so at most a few batches
//! of body bytes wait in memory at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, mpsc};

use wasmparser::{
    BinaryReader, BinaryReaderError, FuncToValidate, FuncValidatorAllocations, FunctionBody,
    ValidatorResources,
};

/// A batch is sent once it holds this many body bytes or functions.
const BATCH_BYTES: usize = 1 << 20;
const BATCH_FUNCS: usize = 1024;

struct Job {
    func: FuncToValidate<ValidatorResources>,
    offset: u64,
    features: wasmparser::WasmFeatures,
    bytes: Vec<u8>,
}

/// Where the parser hands function bodies.
pub(super) struct Pool<'a> {
    tx: Option<mpsc::SyncSender<Vec<Job>>>,
    pending: Vec<Job>,
    pending_bytes: usize,
    stop: &'a AtomicBool,
}

impl Pool<'_> {
    /// Queues `body` for validation by `func`.
    pub(super) fn submit(
        &mut self,
        func: FuncToValidate<ValidatorResources>,
        body: &FunctionBody<'_>,
    ) -> Result<(), BinaryReaderError> {
        let mut reader = body.get_binary_reader();
        let offset = reader.original_position();
        let features = reader.features();
        let bytes = reader.read_bytes(reader.bytes_remaining())?.to_vec();
        self.pending_bytes += bytes.len();
        self.pending.push(Job {
            func,
            offset,
            features,
            bytes,
        });
        if self.pending_bytes >= BATCH_BYTES || self.pending.len() >= BATCH_FUNCS {
            self.flush();
        }
        Ok(())
    }

    /// Whether a worker already found an invalid body (the parser may stop reading).
    pub(super) fn failed(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        if let Some(tx) = &self.tx {
            // A send fails only when every worker is gone, which happens only after a failure.
            let _ = tx.send(batch);
        }
    }
}

/// Runs `parse` with a pool of validating workers; returns its result and the first invalid body
/// found (by offset), if any.
pub(super) fn validate_in_parallel<R>(
    parse: impl FnOnce(&mut Pool<'_>) -> R,
) -> (R, Option<BinaryReaderError>) {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().clamp(1, 8));
    let failure: Mutex<Option<BinaryReaderError>> = Mutex::new(None);
    let stop = AtomicBool::new(false);
    let (tx, rx) = mpsc::sync_channel::<Vec<Job>>(workers * 2);
    let rx = Mutex::new(rx);
    let result = std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                let mut allocs = FuncValidatorAllocations::default();
                loop {
                    let batch = match rx.lock().expect("queue lock").recv() {
                        Ok(batch) => batch,
                        Err(_) => break,
                    };
                    if stop.load(Ordering::Relaxed) {
                        continue;
                    }
                    for job in batch {
                        let reader =
                            BinaryReader::new_features(&job.bytes, job.offset, job.features);
                        let mut validator = job.func.into_validator(std::mem::take(&mut allocs));
                        let outcome = validator.validate(&FunctionBody::new(reader));
                        allocs = validator.into_allocations();
                        if let Err(e) = outcome {
                            let mut first = failure.lock().expect("failure lock");
                            if first.as_ref().is_none_or(|f| e.offset() < f.offset()) {
                                *first = Some(e);
                            }
                            stop.store(true, Ordering::Relaxed);
                            break;
                        }
                    }
                }
            });
        }
        let mut pool = Pool {
            tx: Some(tx),
            pending: Vec::new(),
            pending_bytes: 0,
            stop: &stop,
        };
        let result = parse(&mut pool);
        pool.flush();
        // Closing the channel lets the workers finish; the scope waits for them.
        pool.tx = None;
        result
    });
    (result, failure.into_inner().expect("failure lock"))
}
