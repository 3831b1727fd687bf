//! Tuning of the memory-bound CPU kernels (gather, bag): how far ahead table rows are
//! prefetched (the quantized bags their own distance), and from which output size the gather writes with streaming (non-temporal)
//! stores. Process-wide, read once per call; no result depends on them (every setting gives
//! bit-identical results), only the speed does. Each default says why it is what it is; the
//! quiet-machine sweep of `benches/bench_speed.py` checks them (BENCHMARKS.md). Benchmarks set
//! other values through [`set`] (from Python: `candle_embed._native._testing.set_cpu_tuning`).

use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes of table rows requested ahead of the row being read: about the product of memory
/// latency and one core's bandwidth, so that a row has arrived when its turn comes
/// (16 rows of 512 bytes; 4 rows of 2 KiB; 32 rows of 256 bytes).
pub const DEFAULT_PREFETCH_BYTES: usize = 8 << 10;

/// Bytes of table rows the quantized bag kernels request ahead (into L2,
/// [`super::prefetch::RowsAhead`]): 64 rows (the cap) of their rows of tens to hundreds of
/// bytes. Measured with the L3 flushed before each block (sixth session): the int8 bag at D=64
/// and D=128 (72- and 136-byte rows) as fast at 4-32 KiB, and 1.12-1.20x faster into L2 than
/// into L1 at this distance.
pub const DEFAULT_LOOKAHEAD_BYTES: usize = 32 << 10;

/// Outputs of at least this many bytes are written with streaming stores (when aligned): at
/// that size they leave the core's L2 anyway, and an ordinary store would first read every
/// output line from memory (read-for-ownership) only to overwrite it.
pub const DEFAULT_STREAM_MIN_BYTES: usize = 4 << 20;

/// Fewest and most rows a prefetch distance may span.
const MIN_ROWS: usize = 2;
const MAX_ROWS: usize = 64;

static PREFETCH_BYTES: AtomicUsize = AtomicUsize::new(DEFAULT_PREFETCH_BYTES);
static LOOKAHEAD_BYTES: AtomicUsize = AtomicUsize::new(DEFAULT_LOOKAHEAD_BYTES);
static STREAM_MIN_BYTES: AtomicUsize = AtomicUsize::new(DEFAULT_STREAM_MIN_BYTES);

/// The current settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tuning {
    /// Bytes of rows the gather and the float bags prefetch ahead ([`DEFAULT_PREFETCH_BYTES`]; 0:
    /// no prefetch).
    pub prefetch_bytes: usize,
    /// Bytes of rows the quantized bags prefetch ahead ([`DEFAULT_LOOKAHEAD_BYTES`]; 0: none).
    pub lookahead_bytes: usize,
    /// Smallest gather output written with streaming stores ([`DEFAULT_STREAM_MIN_BYTES`];
    /// `usize::MAX`: never, 0: always when aligned).
    pub stream_min_bytes: usize,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            prefetch_bytes: DEFAULT_PREFETCH_BYTES,
            lookahead_bytes: DEFAULT_LOOKAHEAD_BYTES,
            stream_min_bytes: DEFAULT_STREAM_MIN_BYTES,
        }
    }
}

/// The settings in effect.
pub fn get() -> Tuning {
    Tuning {
        prefetch_bytes: PREFETCH_BYTES.load(Ordering::Relaxed),
        lookahead_bytes: LOOKAHEAD_BYTES.load(Ordering::Relaxed),
        stream_min_bytes: STREAM_MIN_BYTES.load(Ordering::Relaxed),
    }
}

/// Change the settings for the whole process (calls already running keep theirs).
pub fn set(t: Tuning) {
    PREFETCH_BYTES.store(t.prefetch_bytes, Ordering::Relaxed);
    LOOKAHEAD_BYTES.store(t.lookahead_bytes, Ordering::Relaxed);
    STREAM_MIN_BYTES.store(t.stream_min_bytes, Ordering::Relaxed);
}

impl Tuning {
    /// How many rows of `row_bytes` ahead the gather and the float bags prefetch: `prefetch_bytes / row_bytes`,
    /// kept in `2..=64` (0 when prefetching is off).
    pub fn prefetch_rows(&self, row_bytes: usize) -> usize {
        rows_ahead(self.prefetch_bytes, row_bytes)
    }

    /// How many rows of `row_bytes` ahead the quantized bags prefetch, by the same rule from
    /// `lookahead_bytes`.
    pub fn lookahead_rows(&self, row_bytes: usize) -> usize {
        rows_ahead(self.lookahead_bytes, row_bytes)
    }
}

/// `bytes / row_bytes` rows, kept in `2..=64` (0 when `bytes` is 0: prefetching off).
fn rows_ahead(bytes: usize, row_bytes: usize) -> usize {
    if bytes == 0 {
        return 0;
    }
    (bytes / row_bytes.max(1)).clamp(MIN_ROWS, MAX_ROWS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefetch_distance_follows_row_size() {
        let t = Tuning::default();
        assert_eq!(t.prefetch_rows(512), 16); // the distance the kernels had before
        assert_eq!(t.prefetch_rows(256), 32);
        assert_eq!(t.prefetch_rows(2048), 4);
        assert_eq!(t.prefetch_rows(4), 64);
        assert_eq!(t.prefetch_rows(1 << 20), 2);
        let off = Tuning {
            prefetch_bytes: 0,
            ..t
        };
        assert_eq!(off.prefetch_rows(512), 0);
        assert_eq!(t.lookahead_rows(512), 64);
        assert_eq!(t.lookahead_rows(2048), 16);
    }
}
