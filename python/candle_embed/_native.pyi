"""Type stub of the compiled module ``candle_embed._native`` (checked by mypy's stubtest)."""

from collections.abc import Callable, Iterable, Sequence
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

# --- word2vec ---
def _w2v_train(
    sentences: Iterable[Sequence[str]] | None = None,
    corpus_file: str | PathLike[str] | None = None,
    *,
    vector_size: int = 100,
    window: int = 5,
    min_count: int = 5,
    negative: int = 5,
    epochs: int = 5,
    alpha: float = 0.025,
    min_alpha: float = 0.0001,
    sample: float = 1e-3,
    seed: int = 1,
    workers: int = 2,
    progress: Callable[[int, int], Any] | None = None,
) -> tuple[list[str], npt.NDArray[np.uint64], npt.NDArray[np.float32], dict[str, Any]]:
    """Train skip-gram vectors: ``(words, counts, vectors, stats)``."""

def _read_word_vectors(
    path: str | PathLike[str], fmt_kind: str, limit: int | None = None
) -> tuple[list[str], npt.NDArray[np.float32]]:
    """Read "text", "binary", "glove" or "safetensors" word vectors."""

def _write_word_vectors(
    path: str | PathLike[str], words: list[str], vectors: npt.ArrayLike, fmt_kind: str
) -> None:
    """Write "text", "binary" or "safetensors" word vectors atomically."""
