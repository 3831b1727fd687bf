"""Float64 NumPy references of the optimizers' documented update rules, written out from the
PyTorch docs' algorithm boxes and source (``torch/optim/sgd.py`` ``_single_tensor_sgd``,
``adagrad.py`` ``_single_tensor_adagrad``, ``adam.py`` / ``adamw.py`` ``_single_tensor_adam``
with decoupled weight decay) and FBGEMM's row-wise Adagrad, never from the code under test.

``*_dense`` functions run PyTorch's dense rule on whole tables, one dense gradient per step.
``*_lazy`` functions run the sparse rules the optimizers document: the same per-element math on
the coalesced gradient's rows only, untouched rows and their state left alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np

Steps = list[tuple[np.ndarray, np.ndarray]]  # (ids, gradient rows) per step


def coalesced(ids: np.ndarray, g: np.ndarray, v: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique ids and the float64 sum of their gradient rows."""
    dense = np.zeros((v, g.shape[1]))
    np.add.at(dense, ids, g.astype(np.float64))
    u = np.unique(ids)
    return u, dense[u]


def sgd_dense(
    w: np.ndarray,
    grads: list[np.ndarray],
    lr: float,
    momentum: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    maximize: bool = False,
) -> np.ndarray:
    """torch.optim.SGD: the buffer is created as the first step's d_p (``buf is None``)."""
    w = w.astype(np.float64)
    buf = None
    for g in grads:
        d = -g if maximize else g.copy()
        if weight_decay:
            d = d + weight_decay * w
        if momentum:
            buf = d.copy() if buf is None else momentum * buf + (1 - dampening) * d
            d = d + momentum * buf if nesterov else buf
        w = w - lr * d
    return w


def sgd_lazy(
    w: np.ndarray,
    steps: Steps,
    v: int,
    lr: float,
    momentum: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    maximize: bool = False,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    w = w.astype(np.float64)
    buf = np.zeros_like(w)
    for t, (ids, g) in enumerate(steps, start=1):
        u, gv = coalesced(ids, g, v)
        d = (-gv if maximize else gv) + weight_decay * w[u]
        if momentum:
            buf[u] = d if t == 1 else momentum * buf[u] + (1 - dampening) * d
            d = d + momentum * buf[u] if nesterov else buf[u]
        w[u] -= lr * d
    return w, ({"momentum_buffer": buf} if momentum else {})


def adagrad_dense(
    w: np.ndarray,
    grads: list[np.ndarray],
    lr: float,
    lr_decay: float = 0.0,
    weight_decay: float = 0.0,
    initial_accumulator_value: float = 0.0,
    eps: float = 1e-10,
    maximize: bool = False,
) -> np.ndarray:
    """torch.optim.Adagrad's dense rule."""
    w = w.astype(np.float64)
    s = np.full_like(w, initial_accumulator_value)
    for t, g in enumerate(grads, start=1):
        g = -g if maximize else g
        if weight_decay:
            g = g + weight_decay * w
        clr = lr / (1 + (t - 1) * lr_decay)
        s += g * g
        w = w - clr * g / (np.sqrt(s) + eps)
    return w


def adagrad_lazy(
    w: np.ndarray,
    steps: Steps,
    v: int,
    lr: float,
    lr_decay: float = 0.0,
    weight_decay: float = 0.0,
    initial_accumulator_value: float = 0.0,
    eps: float = 1e-10,
    maximize: bool = False,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    w = w.astype(np.float64)
    s = np.full_like(w, initial_accumulator_value)
    for t, (ids, g) in enumerate(steps, start=1):
        u, gv = coalesced(ids, g, v)
        gv = (-gv if maximize else gv) + weight_decay * w[u]
        s[u] += gv**2
        w[u] -= lr / (1 + (t - 1) * lr_decay) * gv / (np.sqrt(s[u]) + eps)
    return w, {"sum": s}


def rowwise_lazy(
    w: np.ndarray, steps: Steps, v: int, lr: float, eps: float = 1e-10, maximize: bool = False
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """FBGEMM's EXACT_ROWWISE_ADAGRAD."""
    w = w.astype(np.float64)
    acc = np.zeros(w.shape[0])
    for ids, g in steps:
        u, gv = coalesced(ids, g, v)
        gv = -gv if maximize else gv
        acc[u] += (gv**2).mean(axis=1)
        w[u] -= lr * gv / (np.sqrt(acc[u])[:, None] + eps)
    return w, {"sum": acc}


def sparse_adam_lazy(
    w: np.ndarray,
    steps: Steps,
    v: int,
    lr: float,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    maximize: bool = False,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """torch.optim.SparseAdam (``_functional.sparse_adam``)."""
    b1, b2 = betas
    w = w.astype(np.float64)
    m, s = np.zeros_like(w), np.zeros_like(w)
    for t, (ids, g) in enumerate(steps, start=1):
        u, gv = coalesced(ids, g, v)
        gv = -gv if maximize else gv
        m[u] += (1 - b1) * (gv - m[u])
        s[u] += (1 - b2) * (gv**2 - s[u])
        w[u] -= lr * np.sqrt(1 - b2**t) / (1 - b1**t) * m[u] / (np.sqrt(s[u]) + eps)
    return w, {"exp_avg": m, "exp_avg_sq": s}


def adamw_dense(
    w: np.ndarray,
    grads: list[np.ndarray],
    lr: float,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 1e-2,
    maximize: bool = False,
) -> tuple[np.ndarray, dict[str, Any]]:
    """torch.optim.AdamW: decay, moments, bias-corrected update, every row every step."""
    b1, b2 = betas
    w = w.astype(np.float64)
    m, s = np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        g = -g if maximize else g
        w = w * (1 - lr * weight_decay)
        m = m + (1 - b1) * (g - m)  # exp_avg.lerp_(grad, 1 - beta1)
        s = b2 * s + (1 - b2) * g * g
        denom = np.sqrt(s) / np.sqrt(1 - b2**t) + eps
        w = w - lr / (1 - b1**t) * m / denom
    return w, {"exp_avg": m, "exp_avg_sq": s}


def adamw_lazy(
    w: np.ndarray,
    steps: Steps,
    v: int,
    lr: float,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 1e-2,
    maximize: bool = False,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The sparse AdamW the optimizer documents: a touched row is first decayed by
    ``(1 - lr*wd)**k``, k = steps since its last touch, then updated by AdamW's formula;
    untouched rows keep their weights and (stale) moments."""
    b1, b2 = betas
    w = w.astype(np.float64)
    m, s = np.zeros_like(w), np.zeros_like(w)
    last = np.zeros(w.shape[0], np.int64)
    for t, (ids, g) in enumerate(steps, start=1):
        u, gv = coalesced(ids, g, v)
        gv = -gv if maximize else gv
        w[u] *= ((1 - lr * weight_decay) ** (t - last[u]))[:, None]
        last[u] = t
        m[u] += (1 - b1) * (gv - m[u])
        s[u] = b2 * s[u] + (1 - b2) * gv**2
        w[u] -= lr / (1 - b1**t) * m[u] / (np.sqrt(s[u]) / np.sqrt(1 - b2**t) + eps)
    return w, {"exp_avg": m, "exp_avg_sq": s, "last_step": last}
