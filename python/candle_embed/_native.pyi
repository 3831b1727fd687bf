"""Type stub of the compiled module ``candle_embed._native`` (checked by mypy's stubtest)."""

from collections.abc import Callable, Sequence
from os import PathLike
from types import ModuleType
from typing import Any, Literal, Self, TypeAlias, final, overload, type_check_only

import numpy as np
import numpy.typing as npt

__version__: str

_IdsLike: TypeAlias = npt.ArrayLike
"""Integer ids: any integer array-like (any width, shape and strides): an ndarray, a buffer
(memoryview, array.array), an object with ``__array_interface__`` or ``__dlpack__`` (a CPU
tensor), an int or a sequence. Float inputs (``npt.ArrayLike`` below) accept the same."""

_MmapMode: TypeAlias = bool | Literal["r", "r+", "c"] | None
"""``load(..., mmap=)``: None/False read the file; True/"r" map it read-only (frozen); "r+"
writable (writes go to the file); "c" copy-on-write (writes stay in memory)."""

_OutDtype: TypeAlias = Literal["float32", "float16", "float64", "bfloat16"]
"""Output dtype of a dequantizing call (bfloat16, which NumPy lacks, comes out as float32)."""

_testing: ModuleType
"""Private: the portable paths the test suite compares the fast kernels against."""

def devices() -> list[str]:
    """Devices this build can use: "cpu", then "cuda:N" / "metal:N" when built with them."""

def set_num_threads(n: int) -> None:
    """Set the number of threads the kernels use (1..=1024)."""

def get_num_threads() -> int:
    """The number of threads the kernels use."""

@final
class SparseGrad:
    """A coalesced row-sparse gradient of a ``(num_rows, dim)`` table."""

    @property
    def indices(self) -> npt.NDArray[np.int64]:
        """Sorted unique row ids, shape ``(nnz,)``."""
    @property
    def values(self) -> npt.NDArray[Any]:
        """Summed gradient rows, shape ``(nnz, dim)``."""
    @property
    def shape(self) -> tuple[int, int]:
        """Shape of the dense gradient."""
    @property
    def nnz(self) -> int:
        """Number of rows present."""
    def is_coalesced(self) -> bool:
        """Always True."""
    def to_dense(self) -> npt.NDArray[Any]:
        """The dense ``(num_rows, dim)`` gradient."""
    @staticmethod
    def from_rows(ids: _IdsLike, values: npt.ArrayLike, num_rows: int) -> SparseGrad:
        """Coalesce row gradients (``ids.shape + (D,)``, duplicates summed) into a gradient of
        a ``(num_rows, D)`` table."""

class _Table:
    """Stub-only: the members ``Embedding`` and ``EmbeddingBag`` share (the runtime classes
    define each of them; this base exists only in the stub)."""

    @property
    def weight(self) -> npt.NDArray[Any]:
        """A copy of the table (bfloat16 tables come back as float32)."""
    @weight.setter
    def weight(self, value: npt.ArrayLike) -> None: ...
    @property
    def num_embeddings(self) -> int: ...
    @property
    def embedding_dim(self) -> int: ...
    @property
    def padding_idx(self) -> int | None: ...
    @property
    def max_norm(self) -> float | None: ...
    @property
    def norm_type(self) -> float: ...
    @property
    def frozen(self) -> bool: ...
    @property
    def dtype(self) -> str: ...
    @property
    def device(self) -> str: ...
    def save(self, path: str | PathLike[str]) -> None:
        """Save the table and its options to a safetensors file (atomically)."""
    @classmethod
    def load(
        cls, path: str | PathLike[str], *, mmap: _MmapMode = None, device: str = "cpu"
    ) -> Self:
        """Load a file written by ``save``; ``mmap`` maps it instead of reading it (rows are
        read from the file as lookups touch them: tables larger than memory work)."""
    @property
    def mmap_mode(self) -> str | None:
        """The map mode ("r", "r+" or "c") of a memory-mapped table; None for a table in memory."""
    def flush(self) -> None:
        """Write rows changed through an ``mmap="r+"`` map back to the file now."""

@final
class Embedding(_Table):
    """A ``(num_embeddings, embedding_dim)`` table looked up by integer ids (``torch.nn.Embedding``
    semantics)."""

    def __new__(
        cls,
        num_embeddings: int,
        embedding_dim: int,
        *,
        padding_idx: int | None = None,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        dtype: str = "float32",
        device: str = "cpu",
        seed: int | None = None,
    ) -> Embedding: ...
    @classmethod
    def from_pretrained(
        cls,
        weight: npt.ArrayLike,
        *,
        freeze: bool = True,
        padding_idx: int | None = None,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        device: str = "cpu",
    ) -> Embedding: ...
    def __call__(
        self,
        ids: _IdsLike,
        *,
        out: npt.NDArray[Any] | None = None,
        dropout: float = 0.0,
        seed: int | None = None,
        normalize: bool = False,
    ) -> npt.NDArray[Any]:
        """Rows at ``ids``: shape ``ids.shape + (embedding_dim,)``.

        ``dropout=p`` (in ``[0, 1)``): whole-word dropout, every occurrence of a dropped row is
        zero and kept rows are scaled by ``1/(1-p)``; the mask is a function of ``(seed, row)``
        (``seed=None`` draws a fresh seed, so pass an explicit seed to ``backward``).
        ``normalize=True``: rows scaled to unit L2 norm, ``w / max(||w||, 1e-12)``."""
    @property
    def scale_grad_by_freq(self) -> bool: ...
    def backward(
        self,
        ids: _IdsLike,
        grad_output: npt.ArrayLike,
        *,
        dropout: float = 0.0,
        seed: int | None = None,
        normalize: bool = False,
    ) -> SparseGrad:
        """The table's gradient given ``grad_output`` (shape ``ids.shape + (D,)``): a coalesced
        ``SparseGrad``; ``padding_idx`` rows get nothing, ``scale_grad_by_freq`` divides each
        row by its count in ``ids``. ``dropout`` / ``seed`` / ``normalize`` as in the forward:
        the exact gradient through them (``dropout > 0`` needs the forward's explicit ``seed``;
        dropped rows appear with zero values)."""

    def quantize(self, bits: int = 8) -> QuantizedEmbedding:
        """This table quantized row-wise (FBGEMM's fused 8- or 4-bit layout and rounding)."""

    # --- techniques ---
    def attend(self, x: npt.ArrayLike, ids: _IdsLike | None = None) -> npt.NDArray[Any]:
        """Weight tying: logits ``x @ W.T``, ``x`` of shape ``(..., D)`` -> ``(..., V)``.

        ``ids`` 1-D (``k``): only those rows, shared by every row of ``x`` -> ``(..., k)``.
        ``ids`` of shape ``x.shape[:-1] + (k,)``: each row of ``x`` scored against its own ``k``
        rows -> ``(..., k)``."""
    def attend_backward(
        self, x: npt.ArrayLike, grad_logits: npt.ArrayLike, ids: _IdsLike | None = None
    ) -> tuple[npt.NDArray[Any], SparseGrad]:
        """Backward of ``attend``: ``(grad_x, grad_weight)``; ``grad_weight`` has every row when
        ``ids`` is None, else the sorted unique ids with duplicates summed."""

# --- sparse gradients and optimizers ---

def index_add(dst: npt.ArrayLike, ids: _IdsLike, src: npt.ArrayLike) -> npt.NDArray[Any]:
    """A new array: ``dst`` with ``src[i]`` added to row ``ids[i]`` (``dst`` unchanged).
    ``src`` has shape ``ids.shape + dst.shape[1:]``; deterministic for any thread count."""

def coalesce(
    ids: _IdsLike, values: npt.ArrayLike
) -> tuple[npt.NDArray[np.int64], npt.NDArray[Any]]:
    """Sorted unique ids and, for each, the sum of its rows of ``values`` (``ids.shape + (D,)``)."""

@final
class _SparseOptimizer:
    """Native half of ``candle_embed.optim`` (use the classes there)."""

    def __new__(
        cls,
        tables: list[Embedding],
        config: SGDConfig | AdagradConfig | RowWiseAdagradConfig | SparseAdamConfig | AdamWConfig,
    ) -> _SparseOptimizer: ...
    def step(self, grads: list[SparseGrad | None]) -> None: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...
    @property
    def kind(self) -> str: ...

# Optimizer configs: calling a class with no argument gives the Rust config's `Default` (the one
# home of the defaults that candle_embed.optim's signatures show).

@type_check_only
class _OptimizerConfig:
    """What every optimizer config has (a typing aid: no such class exists at run time)."""

    @property
    def lr(self) -> float: ...
    @property
    def maximize(self) -> bool: ...
    @property
    def stochastic_rounding(self) -> bool: ...
    @property
    def seed(self) -> int: ...
    def as_dict(self) -> dict[str, Any]:
        """The hyper-parameters as a dict, by keyword."""

@final
class SGDConfig(_OptimizerConfig):
    """Hyper-parameters of ``optim.SGD`` (the core's ``SgdConfig``)."""

    def __new__(
        cls,
        *,
        lr: float = ...,
        momentum: float = ...,
        dampening: float = ...,
        nesterov: bool = ...,
        weight_decay: float = ...,
        maximize: bool = ...,
        stochastic_rounding: bool = ...,
        seed: int = ...,
    ) -> SGDConfig: ...
    @property
    def momentum(self) -> float: ...
    @property
    def dampening(self) -> float: ...
    @property
    def nesterov(self) -> bool: ...
    @property
    def weight_decay(self) -> float: ...

@final
class AdagradConfig(_OptimizerConfig):
    """Hyper-parameters of ``optim.Adagrad`` (the core's ``AdagradConfig``)."""

    def __new__(
        cls,
        *,
        lr: float = ...,
        lr_decay: float = ...,
        weight_decay: float = ...,
        initial_accumulator_value: float = ...,
        eps: float = ...,
        maximize: bool = ...,
        stochastic_rounding: bool = ...,
        seed: int = ...,
    ) -> AdagradConfig: ...
    @property
    def lr_decay(self) -> float: ...
    @property
    def weight_decay(self) -> float: ...
    @property
    def initial_accumulator_value(self) -> float: ...
    @property
    def eps(self) -> float: ...

@final
class RowWiseAdagradConfig(_OptimizerConfig):
    """Hyper-parameters of ``optim.RowWiseAdagrad`` (the core's ``RowWiseAdagradConfig``)."""

    def __new__(
        cls,
        *,
        lr: float = ...,
        eps: float = ...,
        maximize: bool = ...,
        stochastic_rounding: bool = ...,
        seed: int = ...,
    ) -> RowWiseAdagradConfig: ...
    @property
    def eps(self) -> float: ...

@final
class SparseAdamConfig(_OptimizerConfig):
    """Hyper-parameters of ``optim.SparseAdam`` (the core's ``SparseAdamConfig``)."""

    def __new__(
        cls,
        *,
        lr: float = ...,
        betas: tuple[float, float] = ...,
        eps: float = ...,
        maximize: bool = ...,
        stochastic_rounding: bool = ...,
        seed: int = ...,
    ) -> SparseAdamConfig: ...
    @property
    def betas(self) -> tuple[float, float]: ...
    @property
    def eps(self) -> float: ...

@final
class AdamWConfig(_OptimizerConfig):
    """Hyper-parameters of ``optim.AdamW`` (the core's ``AdamWConfig``)."""

    def __new__(
        cls,
        *,
        lr: float = ...,
        betas: tuple[float, float] = ...,
        eps: float = ...,
        weight_decay: float = ...,
        maximize: bool = ...,
        stochastic_rounding: bool = ...,
        seed: int = ...,
    ) -> AdamWConfig: ...
    @property
    def betas(self) -> tuple[float, float]: ...
    @property
    def eps(self) -> float: ...
    @property
    def weight_decay(self) -> float: ...

# --- EmbeddingBag ---

@final
class EmbeddingBag(_Table):
    """Pooled lookups (``torch.nn.EmbeddingBag`` semantics): each bag of ids is reduced to one
    row by ``mode`` ("sum", "mean" or "max"). 2-D ids ``(B, N)`` are B bags of N ids (offsets
    must be None); 1-D ids need 1-D ``offsets`` (any integer dtype, ``offsets[0] == 0``,
    non-decreasing, at most ``len(ids)``); with ``include_last_offset`` offsets has ``B + 1``
    entries, the last equal to ``len(ids)`` (CSR). ``padding_idx`` is left out of every bag and
    of the mean's divisor; empty bags give zeros. ``scale_grad_by_freq`` (modes "sum" and
    "mean"; ValueError with "max", as PyTorch) divides each id's gradient by its number of
    occurrences in the call."""

    def __new__(
        cls,
        num_embeddings: int,
        embedding_dim: int,
        *,
        mode: str = "mean",
        padding_idx: int | None = None,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        include_last_offset: bool = False,
        dtype: str = "float32",
        device: str = "cpu",
        seed: int | None = None,
        scale_grad_by_freq: bool = False,
    ) -> EmbeddingBag: ...
    @classmethod
    def from_pretrained(
        cls,
        weight: npt.ArrayLike,
        *,
        freeze: bool = True,
        mode: str = "mean",
        padding_idx: int | None = None,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        include_last_offset: bool = False,
        device: str = "cpu",
        scale_grad_by_freq: bool = False,
    ) -> EmbeddingBag: ...
    def __call__(
        self,
        ids: _IdsLike,
        offsets: _IdsLike | None = None,
        per_sample_weights: npt.ArrayLike | None = None,
        *,
        out: npt.NDArray[Any] | None = None,
    ) -> npt.NDArray[Any]:
        """One row per bag: shape ``(B, embedding_dim)``. ``per_sample_weights`` (shape of ids)
        weight the sum (mode "sum" only)."""
    def backward(
        self,
        ids: _IdsLike,
        grad_output: npt.ArrayLike,
        offsets: _IdsLike | None = None,
        per_sample_weights: npt.ArrayLike | None = None,
    ) -> SparseGrad:
        """Gradient of the table for ``grad_output`` ``(B, embedding_dim)``, coalesced. For
        "max" each column goes to its argmax row (first on ties), from the current table; with
        ``scale_grad_by_freq`` each id's row is divided by its count in ``ids``."""
    def backward_per_sample_weights(
        self,
        ids: _IdsLike,
        grad_output: npt.ArrayLike,
        offsets: _IdsLike | None = None,
    ) -> npt.NDArray[Any]:
        """Gradient of ``per_sample_weights`` (mode "sum"): ``<grad_output[bag(k)], W[ids[k]]>``
        for each id (0 for padding), shape of ids."""
    @property
    def mode(self) -> str: ...
    @property
    def include_last_offset(self) -> bool: ...
    @property
    def scale_grad_by_freq(self) -> bool: ...
    def quantize(self, bits: int = 8) -> QuantizedEmbeddingBag:
        """This bag quantized row-wise (FBGEMM's fused layout), bag options kept."""

# --- quantized tables ---

class _Quantized:
    """Stub-only: the members ``QuantizedEmbedding`` and ``QuantizedEmbeddingBag`` share."""

    @property
    def packed(self) -> npt.NDArray[np.uint8]:
        """A copy of the packed rows ``(num_embeddings, row_bytes)``: FBGEMM's fused layout
        (codes, then scale and bias: float32 for 8 bits, float16 for 4)."""
    def dequantize(self) -> npt.NDArray[np.float32]:
        """Every row dequantized, ``(num_embeddings, embedding_dim)``."""
    @property
    def bits(self) -> int: ...
    @property
    def num_embeddings(self) -> int: ...
    @property
    def embedding_dim(self) -> int: ...
    @property
    def row_bytes(self) -> int: ...
    @property
    def padding_idx(self) -> int | None: ...
    @property
    def mmap_mode(self) -> str | None: ...
    def save(self, path: str | PathLike[str]) -> None:
        """Save the packed rows and options to a safetensors file (atomically)."""
    @classmethod
    def load(cls, path: str | PathLike[str], *, mmap: bool | Literal["r"] | None = None) -> Self:
        """Load a file written by ``save``; ``mmap`` reads the rows in place (read-only)."""

@final
class QuantizedEmbedding(_Quantized):
    """A read-only table quantized row-wise to 8 or 4 bits in FBGEMM's fused layout; lookups
    dequantize ``scale_r * code_rj + bias_r``."""

    @classmethod
    def from_float(
        cls, weight: npt.ArrayLike, bits: int = 8, *, padding_idx: int | None = None
    ) -> QuantizedEmbedding:
        """Quantize ``weight`` ``(num_embeddings, embedding_dim)`` with FBGEMM's rounding."""
    @classmethod
    def from_packed(
        cls, packed: npt.ArrayLike, bits: int = 8, *, padding_idx: int | None = None
    ) -> QuantizedEmbedding:
        """A table holding a copy of FBGEMM fused rows (uint8 ``(rows, row_bytes)``)."""
    def __call__(
        self,
        ids: _IdsLike,
        *,
        out: npt.NDArray[Any] | None = None,
        dtype: _OutDtype = "float32",
    ) -> npt.NDArray[Any]:
        """Dequantized rows at ``ids``: shape ``ids.shape + (embedding_dim,)``."""
    def attend(self, x: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """``x @ W.T`` of the dequantized table ``W`` without dequantizing it: ``x`` of shape
        ``(..., embedding_dim)`` (read as float32) -> ``(..., num_embeddings)`` float32."""
    def row_norms(self) -> npt.NDArray[np.float32]:
        """The L2 norm of every dequantized row, float32 ``(num_embeddings,)``."""

@final
class QuantizedEmbeddingBag(_Quantized):
    """Pooled lookups over a quantized table (``EmbeddingBag``'s bag semantics), dequantized
    and reduced in one pass in float32, in FBGEMM's operation order."""

    @classmethod
    def from_float(
        cls,
        weight: npt.ArrayLike,
        bits: int = 8,
        *,
        mode: str = "mean",
        padding_idx: int | None = None,
        include_last_offset: bool = False,
    ) -> QuantizedEmbeddingBag:
        """Quantize ``weight`` with FBGEMM's rounding; bag options as ``EmbeddingBag``'s."""
    @classmethod
    def from_packed(
        cls,
        packed: npt.ArrayLike,
        bits: int = 8,
        *,
        mode: str = "mean",
        padding_idx: int | None = None,
        include_last_offset: bool = False,
    ) -> QuantizedEmbeddingBag:
        """A bag holding a copy of FBGEMM fused rows (uint8 ``(rows, row_bytes)``)."""
    def __call__(
        self,
        ids: _IdsLike,
        offsets: _IdsLike | None = None,
        per_sample_weights: npt.ArrayLike | None = None,
        *,
        out: npt.NDArray[Any] | None = None,
        dtype: _OutDtype = "float32",
    ) -> npt.NDArray[Any]:
        """One dequantized, reduced row per bag: shape ``(B, embedding_dim)``."""
    @property
    def mode(self) -> str: ...
    @property
    def include_last_offset(self) -> bool: ...

# --- rotary ---

@final
class RotaryEmbedding:
    """Rotary position embedding (RoPE) on ``(..., T, head_dim)`` arrays, both layouts, partial
    rotary and every ``rope_type`` of transformers 5.x (default, linear, dynamic, yarn,
    longrope, llama3, proportional). Frequencies are computed in float64. ``head_dim``: even,
    at most 65536 (``ValueError`` beyond).

    "dynamic" follows each call's ``max(position) + 1``; ``stateful_dynamic=True`` keeps, as
    transformers' module does, the frequencies of the longest length seen
    (``max_seq_len_cached``) until a call shorter than ``max_position_embeddings`` resets them.
    """

    def __new__(
        cls,
        head_dim: int,
        *,
        base: float = 10000.0,
        max_position_embeddings: int = 2048,
        partial_rotary_factor: float = 1.0,
        layout: str = "half",
        scaling: dict[str, Any] | None = None,
        stateful_dynamic: bool = False,
    ) -> RotaryEmbedding: ...
    @property
    def inv_freq(self) -> npt.NDArray[np.float64]:
        """Inverse frequencies at initialisation, ``(rotary_dim // 2,)``."""
    @property
    def attention_scaling(self) -> float:
        """The factor cos and sin are multiplied by (yarn, longrope)."""
    def frequencies(self, seq_len: int) -> npt.NDArray[np.float64]:
        """The inverse frequencies a call with ``max(position) + 1 == seq_len`` would use now
        (dynamic, longrope); a query that changes no state."""
    def cos_sin(
        self, positions: _IdsLike
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """``(cos, sin)``, each ``positions.shape + (rotary_dim // 2,)``, scaling applied."""
    def apply(
        self,
        x: npt.ArrayLike,
        positions: _IdsLike | None = None,
        *,
        offset: int = 0,
        out: npt.NDArray[Any] | None = None,
    ) -> npt.NDArray[Any]:
        """Rotate the first ``rotary_dim`` dims of ``x`` at ``positions`` ((T,) or (B, T)) or
        ``offset..offset+T``; float16/float32/float64 in, same dtype out."""
    def apply_backward(
        self,
        grad_output: npt.ArrayLike,
        positions: _IdsLike | None = None,
        *,
        offset: int = 0,
        out: npt.NDArray[Any] | None = None,
    ) -> npt.NDArray[Any]:
        """The transposed rotation (gradient of ``apply`` w.r.t. ``x``)."""
    @property
    def head_dim(self) -> int: ...
    @property
    def rotary_dim(self) -> int: ...
    @property
    def base(self) -> float: ...
    @property
    def max_position_embeddings(self) -> int: ...
    @property
    def partial_rotary_factor(self) -> float: ...
    @property
    def layout(self) -> str: ...
    @property
    def rope_type(self) -> str: ...
    @property
    def stateful_dynamic(self) -> bool: ...
    @property
    def max_seq_len_cached(self) -> int:
        """The length whose "dynamic" frequencies are kept in the stateful mode."""

# --- word2vec ---
@final
class _W2VCorpus:
    """A corpus read once, as interned word ids (word2vec training)."""

    @staticmethod
    def from_sentences(sentences: object, max_sentence_length: int = 10000) -> _W2VCorpus:
        """Intern an iterable of token lists."""
    @staticmethod
    def from_sources(
        sources: list[Any],
        names: list[str],
        limit: int | None = None,
        max_sentence_length: int = 10000,
    ) -> _W2VCorpus:
        """Read text sources (paths, or ``read(n) -> bytes`` callables) one after the other."""
    @property
    def examples(self) -> int:
        """Examples (gensim's ``corpus_count``)."""
    @property
    def total_words(self) -> int:
        """Raw words (gensim's ``corpus_total_words``)."""
    def sentences(self) -> list[list[str]]:
        """The stored sentences as lists of words."""

def _w2v_split(line: str) -> list[str]:
    """Python's ``str.split()`` of ``line``, as the corpus reader splits."""

@final
class _W2VModel:
    """Vocabulary and tables of a word2vec model, trained one epoch per call."""

    def __new__(
        cls,
        vector_size: int,
        sg: bool,
        hs: bool,
        negative: int,
        cbow_mean: bool,
        window: int,
        shrink_windows: bool,
        ns_exponent: float,
        seed: int,
    ) -> _W2VModel: ...
    def build_vocab(
        self,
        corpus: _W2VCorpus,
        update: bool,
        min_count: int,
        sample: float,
        max_final_vocab: int | None,
        sorted_vocab: bool,
        max_vocab_size: int | None,
        trim_rule: Callable[[str, int, int], Any] | None = None,
    ) -> dict[str, int]:
        """gensim's scan + prepare vocabulary + weights; returns the report values."""
    def build_vocab_from_freq(
        self,
        words: list[str],
        counts: list[int],
        corpus_count: int,
        update: bool,
        min_count: int,
        sample: float,
        max_final_vocab: int | None,
        sorted_vocab: bool,
        trim_rule: Callable[[str, int, int], Any] | None = None,
    ) -> dict[str, int]:
        """gensim's ``build_vocab_from_freq``."""
    def train_epoch(
        self,
        corpus: _W2VCorpus,
        epoch: int,
        epochs: int,
        start_alpha: float,
        end_alpha: float,
        total_examples: int | None,
        total_words: int | None,
        batch_words: int,
        compute_loss: bool,
        workers: int,
        progress: Callable[[int], Any] | None = None,
        deterministic: bool = False,
        minibatch: bool = False,
    ) -> dict[str, Any]:
        """Train one epoch; returns its statistics."""
    def words(self) -> list[str]:
        """The words, by index."""
    def vocab_arrays(
        self,
    ) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint32], npt.NDArray[np.uint32]]:
        """``(counts, sample_int, cum_table)``."""
    def table(self, name: str) -> npt.NDArray[np.float32] | None:
        """A copy of "vectors", "syn1neg" or "syn1"."""
    def set_inputs(self, vectors: npt.ArrayLike, lockf: npt.ArrayLike) -> None:
        """Replace the input vectors and lock factors."""
    def huffman_path(self, index: int) -> tuple[list[int], list[int]]:
        """Word ``index``'s Huffman ``(code, points)``."""
    def params(self) -> dict[str, Any]:
        """The hyper-parameters."""
    @property
    def jobs_done(self) -> int:
        """Jobs trained so far."""
    def save(self, path: str | PathLike[str], state: str) -> None:
        """Save the model and a JSON state string."""
    @staticmethod
    def load(path: str | PathLike[str]) -> tuple[_W2VModel, str]:
        """Load a saved model: ``(model, state JSON)``."""

# --- word-vector files (KeyedVectors) ---
def _read_word_vectors(
    path: str | PathLike[str],
    binary: bool = False,
    no_header: bool = False,
    limit: int | None = None,
) -> tuple[bytes, int, npt.NDArray[np.float32]]:
    """The entries of a word-vector file as stored: ``(words, count, vectors)``, ``words`` the
    undecoded bytes of every entry's word each followed by one space."""

def _write_word_vectors(
    path: str | PathLike[str],
    words: list[str],
    vectors: npt.ArrayLike,
    *,
    binary: bool = False,
    header: int | None = None,
    prefix: str = ...,
    order: npt.ArrayLike | None = None,
    append: bool = False,
) -> None:
    """Write word2vec text or binary format atomically."""

def _write_keyed_vectors(
    path: str | PathLike[str],
    vectors: npt.ArrayLike,
    attrs: Sequence[tuple[str, npt.ArrayLike]],
    metadata: dict[str, str],
) -> None:
    """Write a KeyedVectors safetensors file atomically."""

def _index_keyed_vectors(
    path: str | PathLike[str],
) -> tuple[dict[str, tuple[str, list[int], int, int]], dict[str, str]]:
    """The header of a safetensors file: ``({name: (dtype, shape, offset, nbytes)}, metadata)``."""

def _write_file_atomic(path: str | PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""

# --- similarity kernels (KeyedVectors) ---
def _row_norms(vectors: npt.ArrayLike) -> npt.NDArray[Any]:
    """The Euclidean norm of each row of a 2-D float table."""

@overload
def _similarity_scan(
    vectors: npt.ArrayLike | QuantizedEmbedding,
    norms: npt.ArrayLike,
    queries: npt.ArrayLike,
    start: int,
    end: int,
    k: None = None,
    exclude: list[list[int]] | None = None,
    positive: int | None = None,
) -> npt.NDArray[Any]:
    """``k=None``: every output's scores over rows ``start..end``: ``(outputs, end - start)``."""

@overload
def _similarity_scan(
    vectors: npt.ArrayLike | QuantizedEmbedding,
    norms: npt.ArrayLike,
    queries: npt.ArrayLike,
    start: int,
    end: int,
    k: int,
    exclude: list[list[int]] | None = None,
    positive: int | None = None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[Any], npt.NDArray[np.int64]]:
    """Each output's ``k`` best rows of ``start..end``: ``(rows, scores, counts)``."""

# --- fasttext ---
def _ft_word_vectors(
    table: npt.ArrayLike,
    nwords: int,
    words: Sequence[str],
    min_n: int,
    max_n: int,
    bucket: int,
    own_rows: bool,
    out: npt.NDArray[np.float32] | None = None,
) -> npt.NDArray[np.float32]:
    """fastText word vectors ``(len(words), dim)``: means of each word's n-gram rows
    ``nwords + hash % bucket`` of ``table`` (and of its own row ``k`` first when ``own_rows``)."""

def _ft_read_bin(path: str | PathLike[str], full_model: bool = True) -> dict[str, Any]:
    """Read a fastText ``.bin`` file: header fields, ``words`` (bytes), ``counts``,
    ``ntokens``, ``input`` and ``output`` (None unless ``full_model``)."""

def _ft_write_bin(
    path: str | PathLike[str],
    words: Sequence[bytes],
    counts: Sequence[int],
    input: npt.ArrayLike,
    output: npt.ArrayLike,
    *,
    ws: int,
    epoch: int,
    min_count: int,
    neg: int,
    word_ngrams: int,
    loss: int,
    model: int,
    bucket: int,
    minn: int,
    maxn: int,
    lr_update_rate: int,
    t: float,
    ntokens: int,
) -> None:
    """Write a fastText ``.bin`` file (version 12) atomically."""

def _ft_train(
    corpus: _W2VCorpus,
    *,
    vector_size: int = 100,
    window: int = 5,
    min_count: int = 5,
    sg: bool = True,
    hs: bool = False,
    negative: int = 5,
    cbow_mean: bool = True,
    epochs: int = 5,
    alpha: float = 0.025,
    min_alpha: float = 0.0001,
    sample: float = 1e-3,
    seed: int = 1,
    workers: int = 2,
    ns_exponent: float = 0.75,
    shrink_windows: bool = True,
    min_n: int = 3,
    max_n: int = 6,
    bucket: int = 2000000,
    batch_words: int = 10000,
    progress: Callable[[int, int], Any] | None = None,
    deterministic: bool = False,
) -> tuple[
    list[str],
    npt.NDArray[np.uint64],
    npt.NDArray[np.float32],
    npt.NDArray[np.float32] | None,
    npt.NDArray[np.float32] | None,
    dict[str, Any],
]:
    """Train FastText on the Word2Vec trainer with bags of rows:
    ``(words, counts, input, syn1, syn1neg, stats)``."""

# --- positional ---
@final
class SinusoidalPositionalEncoding:
    """Fixed sinusoidal table ``(max_len, dim)``, ``ω_i = base**(-2i/dim)``, computed in float64.

    ``layout="interleaved"``: ``[sin ω0, cos ω0, sin ω1, …]``; ``"concat"``: all sines then all
    cosines (same frequencies); ``"tensor2tensor"`` (fairseq, M2M100, Speech2Text): sines then
    cosines of ``ω_i = exp(-i·log(base)/(dim//2 - 1))``, a zero last column for an odd ``dim``.
    ``dim`` must be even except for "tensor2tensor" (ValueError otherwise).
    """

    def __new__(
        cls,
        dim: int,
        *,
        max_len: int = 4096,
        base: float = 10000.0,
        layout: str = "interleaved",
        dtype: str = "float32",
    ) -> SinusoidalPositionalEncoding: ...
    def __call__(self, x: npt.ArrayLike, *, offset: int = 0) -> npt.NDArray[Any]:
        """``x + table[offset:offset+T]`` for ``x`` of shape ``(..., T, dim)``.

        IndexError for a negative offset or positions past ``max_len``."""
    @property
    def table(self) -> npt.NDArray[Any]: ...
    @property
    def dim(self) -> int: ...
    @property
    def max_len(self) -> int: ...
    @property
    def base(self) -> float: ...
    @property
    def layout(self) -> str: ...
    @property
    def dtype(self) -> str: ...

@final
class LearnedPositionalEmbedding:
    """Learned absolute positions: an Embedding ``(max_len, dim)`` added to a sequence."""

    def __new__(
        cls, max_len: int, dim: int, *, seed: int | None = None, dtype: str = "float32"
    ) -> LearnedPositionalEmbedding: ...
    def __call__(self, x: npt.ArrayLike, offset: int = 0) -> npt.NDArray[Any]:
        """``x + W[offset:offset+T]`` for ``x`` of shape ``(..., T, dim)``."""
    def backward(self, grad: npt.ArrayLike, offset: int = 0) -> SparseGrad:
        """Rows ``offset..offset+T`` of the table gradient: ``grad`` summed over leading dims."""
    @property
    def embedding(self) -> Embedding:
        """The position table (shared with this object)."""
    @property
    def weight(self) -> npt.NDArray[Any]: ...
    @weight.setter
    def weight(self, value: npt.ArrayLike) -> None: ...
    @property
    def max_len(self) -> int: ...
    @property
    def dim(self) -> int: ...

@final
class TransformerEmbeddings:
    """BERT embeddings: LayerNorm(token[ids] + position[pos] + segment[types]) then dropout.

    ``backward(grad, state=None)`` differentiates the forward call that returned ``state``
    (``te(ids, return_state=True)``), or the **last** forward call (of any thread) when
    ``state`` is None, and returns a dict: ``token``, ``position`` (None when
    ``position="sinusoidal"``), ``segment`` (SparseGrad) and ``layer_norm_weight``,
    ``layer_norm_bias`` (dense). Dropout runs only while ``training`` is True.
    ``position_padding_idx=p``: RoBERTa's position table (row ``p`` zero, no gradient) and
    default positions ``p + cumsum(ids != padding_idx)`` (``p`` at padding tokens).
    """

    def __new__(
        cls,
        vocab_size: int,
        dim: int,
        *,
        max_positions: int = 512,
        type_vocab_size: int = 2,
        position: str = "learned",
        padding_idx: int | None = None,
        layer_norm_eps: float = 1e-12,
        dropout: float = 0.0,
        seed: int | None = None,
        dtype: str = "float32",
        position_padding_idx: int | None = None,
    ) -> TransformerEmbeddings: ...
    @overload
    def __call__(
        self,
        ids: _IdsLike,
        token_type_ids: _IdsLike | None = None,
        position_ids: _IdsLike | None = None,
        *,
        return_state: Literal[False] = False,
    ) -> npt.NDArray[Any]:
        """``ids`` of shape ``(..., T)`` -> ``(..., T, dim)``; ``position_ids`` defaults to
        ``0..T-1`` (RoBERTa's positions with ``position_padding_idx``) and may have ids' shape
        or ``(T,)``; ``token_type_ids`` defaults to 0."""
    @overload
    def __call__(
        self,
        ids: _IdsLike,
        token_type_ids: _IdsLike | None = None,
        position_ids: _IdsLike | None = None,
        *,
        return_state: Literal[True],
    ) -> tuple[npt.NDArray[Any], TransformerEmbeddingsState]:
        """``(embeddings, state)``: the state to pass to ``backward(grad, state=state)``."""
    def backward(
        self, grad: npt.ArrayLike, state: TransformerEmbeddingsState | None = None
    ) -> dict[str, Any]: ...
    @property
    def token(self) -> Embedding: ...
    @property
    def position(self) -> Embedding: ...
    @property
    def segment(self) -> Embedding: ...
    @property
    def layer_norm_weight(self) -> npt.NDArray[Any]: ...
    @layer_norm_weight.setter
    def layer_norm_weight(self, value: npt.ArrayLike) -> None: ...
    @property
    def layer_norm_bias(self) -> npt.NDArray[Any]: ...
    @layer_norm_bias.setter
    def layer_norm_bias(self, value: npt.ArrayLike) -> None: ...
    @property
    def training(self) -> bool: ...
    @training.setter
    def training(self, value: bool) -> None: ...
    @property
    def dim(self) -> int: ...
    @property
    def dropout(self) -> float: ...
    @property
    def layer_norm_eps(self) -> float: ...
    @property
    def dtype(self) -> str: ...
    @property
    def position_padding_idx(self) -> int | None: ...

@final
class TransformerEmbeddingsState:
    """What ``TransformerEmbeddings.backward`` needs from one forward call (opaque; only the
    module that made it accepts it)."""

    @property
    def shape(self) -> list[int]:
        """The shape of the forward call's ids ``(..., T)``."""

def position_ids_from_padding(
    ids: _IdsLike, padding_idx: int, *, past_length: int = 0
) -> npt.NDArray[np.int64]:
    """RoBERTa position ids: ``(cumsum(ids != pad) + past_length) * (ids != pad) + pad``."""

def alibi_slopes(num_heads: int, *, dtype: str = "float32") -> npt.NDArray[Any]:
    """ALiBi slopes (Press et al.; the paper's rule for non powers of two)."""

def alibi_bias(
    num_heads: int, q_len: int, k_len: int, *, offset: int = 0, dtype: str = "float32"
) -> npt.NDArray[Any]:
    """``-slope_h * |i + offset - j|``, shape ``(num_heads, q_len, k_len)``."""

def relative_position_bucket(
    relative_position: _IdsLike,
    *,
    bidirectional: bool = True,
    num_buckets: int = 32,
    max_distance: int = 128,
) -> npt.NDArray[np.int64]:
    """T5 bucket of each ``key - query`` distance (as transformers computes it, in float32)."""

@final
class RelativePositionBias:
    """T5 relative position bias: a ``(num_buckets, num_heads)`` table indexed by bucket."""

    def __new__(
        cls,
        num_heads: int,
        *,
        num_buckets: int = 32,
        max_distance: int = 128,
        bidirectional: bool = True,
        seed: int | None = None,
        dtype: str = "float32",
    ) -> RelativePositionBias: ...
    def __call__(self, q_len: int, k_len: int, *, offset: int = 0) -> npt.NDArray[Any]:
        """``(num_heads, q_len, k_len)``: ``W[bucket(j - (i + offset)), h]``."""
    def backward(
        self, grad: npt.ArrayLike, q_len: int, k_len: int, *, offset: int = 0
    ) -> SparseGrad: ...
    @property
    def embedding(self) -> Embedding: ...
    @property
    def weight(self) -> npt.NDArray[Any]: ...
    @weight.setter
    def weight(self, value: npt.ArrayLike) -> None: ...
    @property
    def num_heads(self) -> int: ...
    @property
    def num_buckets(self) -> int: ...
    @property
    def max_distance(self) -> int: ...
    @property
    def bidirectional(self) -> bool: ...
