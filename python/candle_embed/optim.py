"""Sparse optimizers: update only the rows present in a ``SparseGrad``, in place, on many threads.

``params`` is a table or a list of them. A *table* is an ``Embedding``, or any object of yours
with a ``sparse_parameters()`` method returning a list of ``Embedding`` (its tables join in that
order). The composite modules of this package do not have that method; they expose their
tables as ``Embedding`` properties instead: ``LearnedPositionalEmbedding.embedding``,
``RelativePositionBias.embedding`` and ``TransformerEmbeddings.token`` / ``.position`` /
``.segment``, whose ``backward`` returns their ``SparseGrad`` values. ``grads`` in ``step``
is a ``SparseGrad`` (one table) or a list with one ``SparseGrad`` (or ``None``: skip) per table,
in the order of the flattened ``params``.

A step holds each table's write lock while it updates it, so a lookup running in another thread
sees every row either before or after the step, never half-updated. A failed step (wrong
gradient shape, wrong count) raises before any row changes: tables and state stay as they were.
Frozen tables (``Embedding.from_pretrained(..., freeze=True)``) are refused.

Every default shown in the signatures below is read from the native config classes
(``_native.SGDConfig()`` and so on), which take theirs from the Rust config structs'
``Default``: that is the one place defaults are written.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Union

from candle_embed import _native
from candle_embed._native import Embedding, SparseGrad, _SparseOptimizer

__all__ = ["SGD", "Adagrad", "RowWiseAdagrad", "SparseAdam", "SparseOptimizer"]


def _tables(params: Any) -> list[Embedding]:
    if isinstance(params, Embedding):
        return [params]
    sparse_parameters = getattr(params, "sparse_parameters", None)
    if callable(sparse_parameters):
        return _tables(list(sparse_parameters()))
    if isinstance(params, (list, tuple)):
        out: list[Embedding] = []
        for p in params:
            out.extend(_tables(p))
        return out
    raise TypeError(
        "params must be an Embedding, an object with sparse_parameters(), or a list of them; "
        f"got {type(params).__name__}"
    )


def _grads(grads: Any, n: int) -> list[SparseGrad | None]:
    if isinstance(grads, SparseGrad):
        flat: list[SparseGrad | None] = [grads]
    elif isinstance(grads, (list, tuple)):
        flat = []
        for g in grads:
            if g is None or isinstance(g, SparseGrad):
                flat.append(g)
            elif isinstance(g, (list, tuple)):
                flat.extend(_grads(g, len(g)))
            else:
                raise TypeError(f"gradients must be SparseGrad or None, got {type(g).__name__}")
    else:
        raise TypeError(f"grads must be a SparseGrad or a list, got {type(grads).__name__}")
    if len(flat) != n:
        raise ValueError(f"got {len(flat)} gradients for {n} tables")
    return flat


_Config = Union[
    _native.SGDConfig,
    _native.AdagradConfig,
    _native.RowWiseAdagradConfig,
    _native.SparseAdamConfig,
]

# The defaults of every signature below (the Rust configs' `Default`).
_SGD = _native.SGDConfig()
_ADAGRAD = _native.AdagradConfig()
_ROWWISE = _native.RowWiseAdagradConfig()
_ADAM = _native.SparseAdamConfig()


class SparseOptimizer:
    """Common base: ``step(grads)``, ``state_dict()``, ``load_state_dict(state)``."""

    def __init__(self, params: Any, config: _Config) -> None:
        self._params = _tables(params)
        self._native = _SparseOptimizer(self._params, config)
        self.defaults: dict[str, Any] = config.as_dict()

    @property
    def params(self) -> list[Embedding]:
        """The tables being optimized (flattened)."""
        return list(self._params)

    def step(self, grads: SparseGrad | Iterable[SparseGrad | None]) -> None:
        """Update the rows present in ``grads`` (one per table, ``None`` skips a table)."""
        self._native.step(_grads(grads, len(self._params)))

    def state_dict(self) -> dict[str, Any]:
        """A copy of the state: ``{"kind", "step": [int], "state": [{name: ndarray}]}``."""
        return self._native.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state returned by ``state_dict`` (checked completely before any change)."""
        self._native.load_state_dict(state)

    def __repr__(self) -> str:
        hp = ", ".join(f"{k}={v}" for k, v in self.defaults.items())
        return f"{type(self).__name__}({len(self._params)} tables, {hp})"


class SGD(SparseOptimizer):
    """``w[idx] -= lr * d``, ``d = g + weight_decay * w[idx]`` (touched rows only), with a
    per-row momentum buffer ``buf[idx] = momentum * buf[idx] + d`` when ``momentum > 0``."""

    def __init__(
        self,
        params: Any,
        lr: float,
        *,
        momentum: float = _SGD.momentum,
        weight_decay: float = _SGD.weight_decay,
    ) -> None:
        config = _native.SGDConfig(lr=lr, momentum=momentum, weight_decay=weight_decay)
        super().__init__(params, config)


class Adagrad(SparseOptimizer):
    """PyTorch's sparse Adagrad: ``sum[idx] += g**2``,
    ``w[idx] -= lr / (1 + (t-1) * lr_decay) * g / (sqrt(sum[idx]) + eps)``."""

    def __init__(
        self,
        params: Any,
        lr: float = _ADAGRAD.lr,
        *,
        lr_decay: float = _ADAGRAD.lr_decay,
        initial_accumulator_value: float = _ADAGRAD.initial_accumulator_value,
        eps: float = _ADAGRAD.eps,
    ) -> None:
        config = _native.AdagradConfig(
            lr=lr,
            lr_decay=lr_decay,
            initial_accumulator_value=initial_accumulator_value,
            eps=eps,
        )
        super().__init__(params, config)


class RowWiseAdagrad(SparseOptimizer):
    """FBGEMM's row-wise Adagrad: one accumulator per row, ``acc[r] += mean(g[r]**2)``,
    ``w[r] -= lr * g[r] / (sqrt(acc[r]) + eps)``."""

    def __init__(self, params: Any, lr: float = _ROWWISE.lr, *, eps: float = _ROWWISE.eps) -> None:
        super().__init__(params, _native.RowWiseAdagradConfig(lr=lr, eps=eps))


class SparseAdam(SparseOptimizer):
    """PyTorch's SparseAdam: lazy moments (untouched rows keep stale moments), bias correction
    from the table's global step count."""

    def __init__(
        self,
        params: Any,
        lr: float = _ADAM.lr,
        *,
        betas: tuple[float, float] = _ADAM.betas,
        eps: float = _ADAM.eps,
    ) -> None:
        super().__init__(params, _native.SparseAdamConfig(lr=lr, betas=betas, eps=eps))
