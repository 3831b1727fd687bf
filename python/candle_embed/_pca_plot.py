"""A 2-D PCA scatter plot of chosen words (matplotlib, headless). Private fallback used by the
demo until ``candle_embed.plot_embeddings`` exists."""

from __future__ import annotations

import os
from collections.abc import Sequence
from os import PathLike, fspath

import numpy as np
import numpy.typing as npt

from candle_embed.keyed_vectors import KeyedVectors


def pca_2d(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Project rows of ``x`` onto their first two principal components."""
    c = x - x.mean(axis=0, keepdims=True)
    _, _, vt = np.linalg.svd(c, full_matrices=False)
    return np.asarray(c @ vt[:2].T)


def plot_words(
    kv: KeyedVectors, words: Sequence[str], path: str | PathLike[str], title: str = ""
) -> str:
    """Write a PNG with ``words`` (those in the vocabulary) at their 2-D PCA coordinates."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    present = [w for w in words if w in kv]
    if len(present) < 2:
        raise ValueError("need at least two words in the vocabulary to plot")
    xy = pca_2d(np.stack([kv.get_vector(w, norm=True) for w in present]).astype(np.float64))
    fig, ax = plt.subplots(figsize=(8, 6), dpi=110)
    ax.scatter(xy[:, 0], xy[:, 1], s=14, color="tab:blue")
    for (x, y), w in zip(xy, present):
        ax.annotate(w, (x, y), xytext=(3, 3), textcoords="offset points", fontsize=9)
    ax.set_title(title or "word vectors, 2-D PCA")
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    fig.tight_layout()
    target = fspath(path)
    tmp = os.path.join(
        os.path.dirname(target) or ".", f".{os.path.basename(target)}.{os.getpid()}.tmp"
    )
    try:
        fig.savefig(tmp, format="png")
        os.replace(tmp, target)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.remove(tmp)
    return target
