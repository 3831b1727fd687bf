"""Look at an embedding space in 2-D: ``plot_embeddings`` projects vectors (PCA by NumPy SVD, or
t-SNE from scikit-learn) and draws a labelled scatter plot with matplotlib's Agg backend.

matplotlib (extra ``candle-embed[plot]``) and scikit-learn (extra ``candle-embed[tsne]``) are
imported only when called.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Union

import numpy as np
import numpy.typing as npt

from candle_embed import _native
from candle_embed._errors import typed

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_embeddings"]

#: Above this many points the labels would cover the plot; only the points are drawn.
MAX_LABELS = 300


_PathLike = Union[str, "os.PathLike[str]"]


def _select(source: Any, words: Sequence[Any] | None) -> tuple[npt.NDArray[np.float64], list[str]]:
    """The (N, D) float64 matrix to project and one label per row."""
    words = None if words is None else list(words)  # a huge sized iterable: MemoryError at once
    if all(hasattr(source, a) for a in ("index_to_key", "vectors", "key_to_index")):
        vectors = np.asarray(source.vectors, dtype=np.float64)
        if words is None:
            keys = list(source.index_to_key)
            return vectors[: len(keys)], [str(k) for k in keys]
        rows = []
        for w in words:
            if w not in source.key_to_index:
                raise KeyError(f"word {w!r} not in vocabulary")
            rows.append(int(source.key_to_index[w]))
        return vectors[np.asarray(rows, dtype=np.int64)], [str(w) for w in words]
    arr = np.asarray(source)
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"vectors must be a real-valued array, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"vectors must have shape (N, D), got {arr.shape}")
    if words is None:
        return arr.astype(np.float64), [str(i) for i in range(arr.shape[0])]
    if len(words) != arr.shape[0]:
        raise ValueError(f"{len(words)} words for {arr.shape[0]} vectors")
    return arr.astype(np.float64), [str(w) for w in words]


def pca_2d(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Project rows onto the first two principal components (centred SVD); (N, 2)."""
    centred = x - x.mean(axis=0, keepdims=True)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    out = np.zeros((x.shape[0], 2), dtype=np.float64)
    k = min(2, vt.shape[0])
    out[:, :k] = centred @ vt[:k].T
    return out


def _tsne_2d(x: npt.NDArray[np.float64], random_state: int) -> npt.NDArray[np.float64]:
    try:
        from sklearn.manifold import TSNE  # type: ignore[import-not-found, unused-ignore]
    except ImportError as e:
        raise ImportError(
            "method='tsne' needs scikit-learn: pip install 'candle-embed[tsne]'"
        ) from e
    n = x.shape[0]
    if n < 2:
        raise ValueError("method='tsne' needs at least 2 vectors")
    perplexity = float(min(30.0, max(1.0, (n - 1) / 3)))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=random_state)
    return np.asarray(tsne.fit_transform(x), dtype=np.float64)


def _figure() -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError(
            "plot_embeddings needs matplotlib: pip install 'candle-embed[plot]'"
        ) from e
    fig = Figure(figsize=(8, 6), dpi=100)
    FigureCanvasAgg(fig)  # Agg canvas, no global pyplot state: safe in any thread or server
    return fig


@typed
def plot_embeddings(
    vectors_or_keyed_vectors: Any,
    words: Sequence[Any] | None = None,
    method: str = "pca",
    path: _PathLike | None = None,
    *,
    title: str | None = None,
    random_state: int = 0,
) -> str | Figure:
    """Project embeddings to 2-D and draw a labelled scatter plot.

    ``vectors_or_keyed_vectors``: an (N, D) array (``words`` then gives the N labels, default
    the row numbers) or a KeyedVectors-like object with ``index_to_key`` / ``vectors`` /
    ``key_to_index`` (``words`` then selects the keys to plot, default all).
    ``method``: ``"pca"`` (NumPy SVD) or ``"tsne"`` (scikit-learn, ``candle-embed[tsne]``).
    Writes a PNG to ``path`` (atomically) and returns the path, or returns the matplotlib
    ``Figure`` when ``path`` is None. Above ``MAX_LABELS`` points only the points are drawn.
    """
    if method not in ("pca", "tsne"):
        raise ValueError(f"method must be 'pca' or 'tsne', got {method!r}")
    x, labels = _select(vectors_or_keyed_vectors, words)
    if x.shape[0] == 0:
        raise ValueError("nothing to plot: no vectors")
    if not np.all(np.isfinite(x)):
        raise ValueError("vectors contain NaN or infinity")
    xy = pca_2d(x) if method == "pca" else _tsne_2d(x, random_state)
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    ax.scatter(xy[:, 0], xy[:, 1], s=18, c="tab:blue", alpha=0.8, edgecolors="none")
    ax.margins(0.12)  # room for the labels of the outermost points
    if len(labels) <= MAX_LABELS:
        notes = [
            ax.annotate(label, (px, py), xytext=(3, 3), textcoords="offset points", fontsize=9)
            for (px, py), label in zip(xy, labels)
        ]
        _repel(fig, notes)
    axis = "PC" if method == "pca" else "t-SNE "
    ax.set_xlabel(f"{axis}1")
    ax.set_ylabel(f"{axis}2")
    ax.set_title(title or f"{len(labels)} embeddings ({method.upper()})")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    if path is None:
        figure: Figure = fig
        return figure
    target = os.fspath(path)
    png = io.BytesIO()
    fig.savefig(png, format="png")
    # the library's atomic write: temporary file, sync, rename; the file gets 0666 & ~umask
    _native._write_file_atomic(target, png.getvalue())
    return target


#: Passes of the label repel (each moves every overlapping pair half their overlap apart).
REPEL_PASSES = 60


def _repel(fig: Any, notes: list[Any]) -> None:
    """Move overlapping labels apart: a few passes over every pair of label boxes (display
    pixels), pushing each overlapping pair apart along the axis where they overlap least; a
    label moved away from its point gets a thin line to it. O(passes x labels^2), fine for
    ``MAX_LABELS``."""
    if len(notes) < 2:
        return
    fig.tight_layout()
    renderer = fig.canvas.get_renderer()
    scale = fig.dpi / 72.0  # offsets are in points, boxes in pixels
    offsets = np.array([n.xyann for n in notes], dtype=np.float64) * scale
    boxes = [n.get_window_extent(renderer) for n in notes]
    base = np.array([[b.x0, b.y0, b.x1, b.y1] for b in boxes]) - np.tile(offsets, 2)
    pad = 4.0  # pixels kept between labels
    for _ in range(REPEL_PASSES):
        moved = False
        cur = base + np.tile(offsets, 2)
        for i in range(len(notes)):
            for j in range(i + 1, len(notes)):
                dx = min(cur[i, 2], cur[j, 2]) - max(cur[i, 0], cur[j, 0]) + pad
                dy = min(cur[i, 3], cur[j, 3]) - max(cur[i, 1], cur[j, 1]) + pad
                if dx <= 0 or dy <= 0:
                    continue
                moved = True
                if dy <= dx:  # push apart vertically
                    up = 1.0 if cur[i, 1] + cur[i, 3] >= cur[j, 1] + cur[j, 3] else -1.0
                    offsets[i, 1] += up * dy / 2
                    offsets[j, 1] -= up * dy / 2
                else:
                    right = 1.0 if cur[i, 0] + cur[i, 2] >= cur[j, 0] + cur[j, 2] else -1.0
                    offsets[i, 0] += right * dx / 2
                    offsets[j, 0] -= right * dx / 2
                cur[i] = base[i] + np.tile(offsets[i], 2)
                cur[j] = base[j] + np.tile(offsets[j], 2)
        if not moved:
            break
    for note, off in zip(notes, offsets / scale):
        xy = (float(off[0]), float(off[1]))
        if np.hypot(off[0] - 3, off[1] - 3) <= 8:
            note.xyann = xy
            continue
        # moved far from its point: the same label again, with a thin line to the point
        ax = note.axes
        note.remove()
        ax.annotate(
            note.get_text(),
            note.xy,
            xytext=xy,
            textcoords="offset points",
            fontsize=9,
            arrowprops={"arrowstyle": "-", "color": "0.6", "lw": 0.5, "shrinkA": 0, "shrinkB": 2},
        )


def overlaps(fig: Any) -> int:
    """How many pairs of text labels of ``fig``'s first axes overlap (the repel's check)."""
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    from matplotlib.text import Text

    # the text's own box (an Annotation's box also covers its line to the point)
    boxes = [Text.get_window_extent(t, renderer) for t in ax.texts]
    return sum(boxes[i].overlaps(boxes[j]) for i in range(len(boxes)) for j in range(i))
