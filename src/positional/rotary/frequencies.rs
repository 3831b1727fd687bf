//! The frequencies in effect for one call: the initial ones, or those of the call's length
//! `L = max(position) + 1` for the length-dependent types (`dynamic`, `longrope`), and the
//! state of the stateful dynamic mode (transformers' `max_seq_len_cached`, see the module docs
//! of [`super`]).

use super::{RopeBasis, RopeScaling, RotaryEmbedding};
use crate::Result;

impl RotaryEmbedding {
    /// What [`RopeScaling::compute`] needs besides the scaling itself.
    pub(super) fn basis(&self) -> RopeBasis {
        RopeBasis {
            base: self.config.base,
            dim: self.rotary_dim,
            partial_rotary_factor: self.config.partial_rotary_factor,
            max_position_embeddings: self.config.max_position_embeddings,
        }
    }

    fn stateful(&self) -> bool {
        self.config.stateful_dynamic && matches!(self.config.scaling, RopeScaling::Dynamic { .. })
    }

    /// transformers' `dynamic_frequency_update` on `longest` (`max_seq_len_cached`) for a call
    /// of length `len`: grow past the longest length seen, reset below the original length.
    fn next_longest(&self, longest: usize, len: usize) -> usize {
        let original = self.config.max_position_embeddings;
        if len == 0 {
            longest // no positions: nothing to update (transformers has no such call)
        } else if len > longest {
            len
        } else if len < original && longest > original {
            original
        } else {
            longest
        }
    }

    /// The length the frequencies of a call of length `len` are computed for (0 when they do
    /// not depend on it); `update` moves the stateful dynamic mode's state as the call does.
    pub(super) fn frequency_length(&self, len: usize, update: bool) -> usize {
        if !self.config.scaling.depends_on_length() {
            return 0;
        }
        if !self.stateful() {
            return len;
        }
        let mut longest = self.longest.lock().unwrap_or_else(|e| e.into_inner());
        let next = self.next_longest(*longest, len);
        if update {
            *longest = next;
        }
        next
    }

    /// `(inv_freq, attention_scaling)` for a frequency length from [`Self::frequency_length`].
    pub(super) fn frequencies_at(&self, freq_len: usize) -> Result<(Vec<f64>, f64)> {
        if !self.config.scaling.depends_on_length() {
            return Ok((self.inv_freq.clone(), self.attention_scaling));
        }
        self.config.scaling.compute(&self.basis(), Some(freq_len))
    }

    /// `(inv_freq, attention_scaling)` a call with `seq_len = max(position) + 1` would use now:
    /// they differ from the initial ones only for `dynamic` (past `max_position_embeddings`,
    /// or past the longest length kept in the stateful mode) and `longrope` (past
    /// `original_max_position_embeddings`). A query: the stateful mode's state is not moved.
    pub fn try_frequencies(&self, seq_len: usize) -> Result<(Vec<f64>, f64)> {
        self.frequencies_at(self.frequency_length(seq_len, false))
    }

    /// [`Self::try_frequencies`] for callers without an error path. The constructor allocated
    /// the same `rotary_dim / 2` frequencies, so only an allocator out of memory right now can
    /// fail, and that ends the process as any infallible `Vec` would.
    pub fn frequencies(&self, seq_len: usize) -> (Vec<f64>, f64) {
        self.try_frequencies(seq_len).unwrap_or_else(|_| {
            std::alloc::handle_alloc_error(
                std::alloc::Layout::array::<f64>(self.rotary_dim / 2)
                    .unwrap_or(std::alloc::Layout::new::<f64>()),
            )
        })
    }

    /// The stateful dynamic mode's `max_seq_len_cached`: the length whose frequencies are kept
    /// (`max_position_embeddings` until a longer call, and after a reset).
    pub fn max_seq_len_cached(&self) -> usize {
        *self.longest.lock().unwrap_or_else(|e| e.into_inner())
    }
}
