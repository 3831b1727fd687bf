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

# --- EmbeddingBag ---

@final
class EmbeddingBag:
    """Pooled lookups (``torch.nn.EmbeddingBag`` semantics): each bag of ids is reduced to one
    row by ``mode`` ("sum", "mean" or "max"). 2-D ids ``(B, N)`` are B bags of N ids (offsets
    must be None); 1-D ids need 1-D ``offsets`` (any integer dtype, ``offsets[0] == 0``,
    non-decreasing, at most ``len(ids)``); with ``include_last_offset`` offsets has ``B + 1``
    entries, the last equal to ``len(ids)`` (CSR). ``padding_idx`` is left out of every bag and
    of the mean's divisor; empty bags give zeros."""

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
        "max" each column goes to its argmax row (first on ties), from the current table."""
    def backward_per_sample_weights(
        self,
        ids: _IdsLike,
        grad_output: npt.ArrayLike,
        offsets: _IdsLike | None = None,
    ) -> npt.NDArray[Any]:
        """Gradient of ``per_sample_weights`` (mode "sum"): ``<grad_output[bag(k)], W[ids[k]]>``
        for each id (0 for padding), shape of ids."""
    def _forward_portable(
        self,
        ids: _IdsLike,
        offsets: _IdsLike | None = None,
        per_sample_weights: npt.ArrayLike | None = None,
    ) -> npt.NDArray[Any]:
        """The portable (candle ``index_select`` + ``index_add``) path, for tests."""
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
    def mode(self) -> str: ...
    @property
    def padding_idx(self) -> int | None: ...
    @property
    def include_last_offset(self) -> bool: ...
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
