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
Frozen tables (``Embedding.from_pretrained(..., freeze=True)``) are refused. Every error raised
here is a ``candle_embed.CandleEmbedError`` (and the builtin class it names).

Every default shown in the signatures below is read from the native config classes
(``_native.SGDConfig()`` and so on), which take theirs from the Rust config structs'
``Default``: that is the one place defaults are written.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar, Union

from candle_embed import _native
from candle_embed._errors import CandleEmbedTypeError, CandleEmbedValueError
from candle_embed._native import Embedding, SparseGrad, _SparseOptimizer

__all__ = ["SGD", "Adagrad", "AdamW", "RowWiseAdagrad", "SparseAdam", "SparseOptimizer"]


# How deep params / grads lists may nest: deeper is refused (a list that contains itself, or an
# object whose sparse_parameters() returns itself, would otherwise recurse without end).
_MAX_DEPTH = 32


def _check_depth(depth: int, what: str) -> None:
    if depth > _MAX_DEPTH:
        raise CandleEmbedValueError(
            f"{what} nest more than {_MAX_DEPTH} levels deep (a list that contains itself?)"
        )


def _tables(params: Any, depth: int = 0) -> list[Embedding]:
    _check_depth(depth, "params")
    if isinstance(params, Embedding):
        return [params]
    sparse_parameters = getattr(params, "sparse_parameters", None)
    if callable(sparse_parameters):
        tables = sparse_parameters()
        if not isinstance(tables, (list, tuple)):
            raise CandleEmbedTypeError(
                f"sparse_parameters() must return a list, got {type(tables).__name__}"
            )
        return _tables(list(tables), depth + 1)
    if isinstance(params, (list, tuple)):
        out: list[Embedding] = []
        for p in params:
            out.extend(_tables(p, depth + 1))
        return out
    raise CandleEmbedTypeError(
        "params must be an Embedding, an object with sparse_parameters(), or a list of them; "
        f"got {type(params).__name__}"
    )


def _flat_grads(grads: Any, depth: int) -> list[SparseGrad | None]:
    _check_depth(depth, "grads")
    if grads is None or isinstance(grads, SparseGrad):
        return [grads]
    if not isinstance(grads, (list, tuple)):
        raise CandleEmbedTypeError(
            f"gradients must be SparseGrad or None, got {type(grads).__name__}"
        )
    flat: list[SparseGrad | None] = []
    for g in grads:
        flat.extend(_flat_grads(g, depth + 1))
    return flat


def _grads(grads: Any, n: int) -> list[SparseGrad | None]:
    if not isinstance(grads, (SparseGrad, list, tuple)):
        raise CandleEmbedTypeError(
            f"grads must be a SparseGrad or a list, got {type(grads).__name__}"
        )
    flat = _flat_grads(grads, 0)
    if len(flat) != n:
        raise CandleEmbedValueError(f"got {len(flat)} gradients for {n} tables")
    return flat


_C = TypeVar("_C")
_Config = Union[
    _native.SGDConfig,
    _native.AdagradConfig,
    _native.RowWiseAdagradConfig,
    _native.SparseAdamConfig,
    _native.AdamWConfig,
]

# The defaults of every signature below (the Rust configs' `Default`).
_SGD = _native.SGDConfig()
_ADAGRAD = _native.AdagradConfig()
_ROWWISE = _native.RowWiseAdagradConfig()
_ADAM = _native.SparseAdamConfig()
_ADAMW = _native.AdamWConfig()


def _config(config_type: type[_C], arguments: dict[str, Any]) -> _C:
    """The native config from an optimizer's ``__init__`` arguments (its ``locals()``): every
    keyword of the signature is a field of the config with the same name."""
    fields = {k: v for k, v in arguments.items() if k not in ("self", "params", "__class__")}
    return config_type(**fields)


class SparseOptimizer:
    """Common base: ``step(grads)``, ``state_dict()``, ``load_state_dict(state)``.

    Every optimizer also takes ``maximize`` (ascend: the gradient is negated before the rule,
    as PyTorch does), ``stochastic_rounding`` (float16/bfloat16 tables: each updated element,
    computed in float32, is rounded to the table dtype stochastically, FBGEMM's rule, so that
    updates smaller than the dtype's spacing still move the row on average; float32/float64
    tables are unaffected) and ``seed`` (the rounding's random bits derive from it, the
    table's index, its step count and the row: a run is reproducible for any thread count).
    """

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
        """Restore a state returned by ``state_dict``, checked completely before any change:
        the kind and table count, step counts in ``[0, 2**53]``, each table's buffer names,
        shapes and dtypes (float buffers may come in any float dtype and are converted;
        ``last_step`` must be integers in ``[0, step]``), and values finite, with no negative
        sums of squares (``sum``, ``exp_avg_sq``). A refused state raises a
        ``CandleEmbedError`` (``TypeError`` for a wrong type or dtype, ``ValueError``
        otherwise) and leaves the optimizer unchanged."""
        self._native.load_state_dict(state)

    def __repr__(self) -> str:
        hp = ", ".join(f"{k}={v}" for k, v in self.defaults.items())
        return f"{type(self).__name__}({len(self._params)} tables, {hp})"


class SGD(SparseOptimizer):
    """PyTorch's SGD on the touched rows: ``g' = g + weight_decay * w[idx]``; with momentum,
    ``buf[idx] = momentum * buf[idx] + (1 - dampening) * g'`` (``buf = g'`` on the table's
    first step), ``d = g' + momentum * buf[idx]`` (nesterov) or ``d = buf[idx]``;
    ``w[idx] -= lr * d``. Each row's buffer decays only on steps that touch it."""

    def __init__(
        self,
        params: Any,
        lr: float,
        *,
        momentum: float = _SGD.momentum,
        dampening: float = _SGD.dampening,
        nesterov: bool = _SGD.nesterov,
        weight_decay: float = _SGD.weight_decay,
        maximize: bool = _SGD.maximize,
        stochastic_rounding: bool = _SGD.stochastic_rounding,
        seed: int = _SGD.seed,
    ) -> None:
        super().__init__(params, _config(_native.SGDConfig, locals()))


class Adagrad(SparseOptimizer):
    """PyTorch's Adagrad on the touched rows: ``g' = g + weight_decay * w[idx]``,
    ``sum[idx] += g'**2``, ``w[idx] -= lr / (1 + (t-1) * lr_decay) * g' / (sqrt(sum[idx]) + eps)``
    (``sum`` starts at ``initial_accumulator_value``)."""

    def __init__(
        self,
        params: Any,
        lr: float = _ADAGRAD.lr,
        *,
        lr_decay: float = _ADAGRAD.lr_decay,
        weight_decay: float = _ADAGRAD.weight_decay,
        initial_accumulator_value: float = _ADAGRAD.initial_accumulator_value,
        eps: float = _ADAGRAD.eps,
        maximize: bool = _ADAGRAD.maximize,
        stochastic_rounding: bool = _ADAGRAD.stochastic_rounding,
        seed: int = _ADAGRAD.seed,
    ) -> None:
        super().__init__(params, _config(_native.AdagradConfig, locals()))


class RowWiseAdagrad(SparseOptimizer):
    """FBGEMM's row-wise Adagrad: one accumulator per row, ``acc[r] += mean(g[r]**2)``,
    ``w[r] -= lr * g[r] / (sqrt(acc[r]) + eps)``."""

    def __init__(
        self,
        params: Any,
        lr: float = _ROWWISE.lr,
        *,
        eps: float = _ROWWISE.eps,
        maximize: bool = _ROWWISE.maximize,
        stochastic_rounding: bool = _ROWWISE.stochastic_rounding,
        seed: int = _ROWWISE.seed,
    ) -> None:
        super().__init__(params, _config(_native.RowWiseAdagradConfig, locals()))


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
        maximize: bool = _ADAM.maximize,
        stochastic_rounding: bool = _ADAM.stochastic_rounding,
        seed: int = _ADAM.seed,
    ) -> None:
        super().__init__(params, _config(_native.SparseAdamConfig, locals()))


class AdamW(SparseOptimizer):
    """Sparse AdamW (decoupled weight decay), exact for rows touched rarely: a row touched
    ``k`` steps after its last touch is first multiplied by ``(1 - lr * weight_decay)**k``, the
    decay dense AdamW would have applied over those steps; then PyTorch's AdamW update on the
    touched rows (``denom = sqrt(v) / sqrt(1 - beta2**t) + eps``, ``w -= lr / (1 - beta1**t) *
    m / denom``). Moments follow SparseAdam's lazy rule (untouched rows keep stale moments).
    State: ``exp_avg``, ``exp_avg_sq`` and ``last_step`` (int64 per row, 0: never touched)."""

    def __init__(
        self,
        params: Any,
        lr: float = _ADAMW.lr,
        *,
        betas: tuple[float, float] = _ADAMW.betas,
        eps: float = _ADAMW.eps,
        weight_decay: float = _ADAMW.weight_decay,
        maximize: bool = _ADAMW.maximize,
        stochastic_rounding: bool = _ADAMW.stochastic_rounding,
        seed: int = _ADAMW.seed,
    ) -> None:
        super().__init__(params, _config(_native.AdamWConfig, locals()))
