"""Type stub of the compiled module ``candle_embed._native`` (checked by mypy's stubtest)."""

from os import PathLike
from typing import Any, TypeAlias, final

import numpy as np
import numpy.typing as npt

__version__: str

_IdsLike: TypeAlias = npt.ArrayLike
"""Integer ids: an integer ndarray (any width, any shape, any strides), an int or a sequence."""

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

@final
class Embedding:
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
    def __call__(self, ids: _IdsLike, *, out: npt.NDArray[Any] | None = None) -> npt.NDArray[Any]:
        """Rows at ``ids``: shape ``ids.shape + (embedding_dim,)``."""
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
    def scale_grad_by_freq(self) -> bool: ...
    @property
    def frozen(self) -> bool: ...
    @property
    def dtype(self) -> str: ...
    @property
    def device(self) -> str: ...
    def save(self, path: str | PathLike[str]) -> None:
        """Save table and config to a safetensors file (atomically)."""
    @classmethod
    def load(cls, path: str | PathLike[str], *, device: str = "cpu") -> Embedding:
        """Load a table saved by ``save``."""
    def _lookup_portable(self, ids: _IdsLike) -> npt.NDArray[Any]:
        """The portable (candle ``index_select``) path, for tests."""

# --- positional ---
@final
class SinusoidalPositionalEncoding:
    """Fixed sinusoidal table ``(max_len, dim)``, ``ω_i = base**(-2i/dim)``, computed in float64.

    ``layout="interleaved"``: ``[sin ω0, cos ω0, sin ω1, …]``; ``"concat"``: all sines then all
    cosines (same frequencies). ``dim`` must be even (ValueError otherwise).
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
    def _table_portable(self) -> npt.NDArray[Any]:
        """The table from the portable path (candle ops), for tests."""

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

    ``backward(grad)`` differentiates the **last** forward call (its ids and LayerNorm
    statistics are cached) and returns a dict: ``token``, ``position`` (None when
    ``position="sinusoidal"``), ``segment`` (SparseGrad) and ``layer_norm_weight``,
    ``layer_norm_bias`` (dense). Dropout runs only while ``training`` is True.
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
    ) -> TransformerEmbeddings: ...
    def __call__(
        self,
        ids: _IdsLike,
        token_type_ids: _IdsLike | None = None,
        position_ids: _IdsLike | None = None,
    ) -> npt.NDArray[Any]:
        """``ids`` of shape ``(..., T)`` -> ``(..., T, dim)``; ``position_ids`` defaults to
        ``0..T-1`` and may have ids' shape or ``(T,)``; ``token_type_ids`` defaults to 0."""
    def backward(self, grad: npt.ArrayLike) -> dict[str, Any]: ...
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

def _alibi_bias_portable(
    num_heads: int, q_len: int, k_len: int, *, offset: int = 0, dtype: str = "float32"
) -> npt.NDArray[Any]:
    """The portable (candle ops) ALiBi bias, for tests."""

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
    def _bias_portable(self, q_len: int, k_len: int, *, offset: int = 0) -> npt.NDArray[Any]: ...
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
