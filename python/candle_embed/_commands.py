"""The ``demo`` and ``train`` commands of ``candle-embed`` (``candle_embed.cli`` parses and
reports errors). Inputs and outputs are checked before training starts, so a bad corpus or an
unwritable output costs nothing and names the user's path."""

from __future__ import annotations

import argparse
import lzma
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from candle_embed._files import open_decompressed
from candle_embed._progress import ProgressLine
from candle_embed.cli import CliError
from candle_embed.keyed_vectors import KeyedVectors, format_for_path
from candle_embed.word2vec import Word2Vec

DEMO_WORDS = ["list", "file", "thread", "integer", "error"]
DEMO_ANALOGIES = [("open", "close", "start"), ("file", "files", "directory")]  # a : b :: c : ?
DEMO_PLOT_WORDS = [
    "list", "tuple", "dict", "set", "string", "bytes", "integer", "float",
    "file", "directory", "path", "socket", "thread", "process", "lock", "queue",
    "error", "exception", "warning", "append", "insert", "remove", "read", "write",
    "open", "close", "send", "receive", "start", "stop",
]  # fmt: skip

#: The extensions ``train --out`` takes (a typo such as ``.tx`` is caught before training).
OUT_EXTENSIONS = (".txt", ".vec", ".bin", ".safetensors")
#: How much of a corpus is looked at before training (decompressed).
SNIFF_BYTES = 1 << 16


def _head(path: str) -> bytes:
    """The first ``SNIFF_BYTES`` of the file's text (decompressed for gzip, bzip2 and xz)."""
    with open_decompressed(path) as (f, compressed):
        try:
            return f.read(SNIFF_BYTES)
        except (OSError, EOFError, lzma.LZMAError) as e:
            if not compressed:
                raise
            raise CliError(f"{path}: cannot decompress it ({e})") from None


def check_corpus(path: str) -> None:
    """A readable, non-empty UTF-8 text file, or a ``CliError`` saying what it is instead."""
    if os.path.isdir(path):
        raise CliError(
            f"{path} is a directory, not a text file (give one file, one sentence per line)"
        )
    if not os.path.exists(path):
        raise CliError(f"corpus file not found: {path}")
    if not os.path.isfile(path):
        raise CliError(f"{path} is not a regular file")
    try:
        head = _head(path)
    except OSError as e:
        raise CliError(f"cannot read {path}: {e.strerror or e}") from None
    if not head.strip():
        raise CliError(f"{path} is empty: there is nothing to train on")
    if b"\0" in head:
        raise CliError(f"{path} looks binary (it contains NUL bytes): give UTF-8 text")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 3:  # not just a character cut by the sniff's end
            line = head.count(b"\n", 0, e.start) + 1
            raise CliError(
                f"{path} is not UTF-8 text (byte 0x{head[e.start]:02x} at offset {e.start}, "
                f"line {line}); convert it first, e.g. iconv -f latin1 -t utf-8"
            ) from None


def check_output_dir(directory: str, what: str) -> None:
    """``directory`` exists and a file can be created in it, else a ``CliError`` naming it."""
    if not os.path.isdir(directory):
        raise CliError(f"{what}: directory {directory} does not exist")
    probe = os.path.join(directory, f".candle-embed-probe-{os.getpid()}")
    try:
        fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except OSError as e:
        raise CliError(f"{what}: cannot write in {directory} ({e.strerror or e})") from None
    os.close(fd)
    os.unlink(probe)


def check_output(path: str) -> str:
    """The format ``--out`` picks; a directory, a missing or unwritable directory is a
    ``CliError`` naming the path."""
    if os.path.isdir(path):
        raise CliError(f"--out {path} is a directory; give a file name such as {path}/vectors.txt")
    if os.path.exists(path) and not os.path.isfile(path):
        raise CliError(f"--out {path} exists and is not a regular file")
    if not path.lower().endswith(OUT_EXTENSIONS):
        raise CliError(
            f"--out {path}: unknown extension; use .txt or .vec (word2vec text), .bin "
            "(word2vec binary) or .safetensors"
        )
    check_output_dir(os.path.dirname(os.path.abspath(path)), f"--out {path}")
    return format_for_path(path)


def word2vec_params(args: argparse.Namespace) -> dict[str, Any]:
    """gensim's Word2Vec parameters from the flags. The architecture flags are passed only when
    given, so the defaults never depend on them."""
    negative = args.negative if args.negative is not None else (0 if args.hs else 5)
    if negative == 0 and not args.hs:
        raise CliError("--negative 0 needs --hs (otherwise nothing is trained)")
    if args.cbow_mean is not None and not args.cbow:
        raise CliError("--cbow-mean applies to --cbow only")
    if args.min_lr > args.lr:
        raise CliError(f"--min-lr {args.min_lr} is above --lr {args.lr}")
    params: dict[str, Any] = {
        "vector_size": args.dim,
        "window": args.window,
        "min_count": args.min_count,
        "negative": negative,
        "epochs": args.epochs,
        "alpha": args.lr,
        "min_alpha": args.min_lr,
        "sample": args.sample,
        "seed": args.seed,
        "workers": args.threads,
    }
    if args.cbow:
        params["sg"] = 0
    if args.cbow_mean is not None:
        params["cbow_mean"] = args.cbow_mean
    if args.hs:
        params["hs"] = 1
    if args.ns_exponent is not None:
        params["ns_exponent"] = args.ns_exponent
    if args.loss:
        params["compute_loss"] = True
    return params


def checked_params(args: argparse.Namespace) -> dict[str, Any]:
    """``word2vec_params``, validated by building an untrained model (cheap): a value Word2Vec
    refuses (e.g. a mode this build does not implement) is a ``CliError`` before any corpus is
    read."""
    params = word2vec_params(args)
    try:
        Word2Vec(**params)
    except (TypeError, ValueError) as e:
        raise CliError(f"bad training parameters: {e}") from None
    return params


def train(
    args: argparse.Namespace,
    sentences: Sequence[Sequence[str]] | None = None,
    corpus_file: str | None = None,
) -> Word2Vec:
    """Train with the flags' parameters, a progress line on stderr unless ``--quiet``. The model
    is built with its corpus (gensim's ``Word2Vec(sentences, ...)``: vocabulary, then training)."""
    params = checked_params(args)
    bar = None if args.quiet else ProgressLine("word2vec")
    try:
        return Word2Vec(
            sentences, corpus_file, progress=bar if bar is not None else False, **params
        )
    finally:
        if bar is not None:
            bar.close()


def summary(model: Word2Vec) -> str:
    """One line: what was trained, on how much, how fast (and the loss with --loss)."""
    s: dict[str, Any] = getattr(model, "stats", {}) or {}
    line = f"trained {len(model.wv)} words x {model.vector_size}"
    if "corpus_words" in s:
        line += f" on {s['corpus_words']:,} tokens x {model.epochs} epochs"
    if "seconds" in s:
        line += f" in {s['seconds']:.1f} s"
    if "words_per_second" in s:
        line += f" ({s['words_per_second']:,.0f} words/s, {model.workers} threads)"
    loss = getattr(model, "get_latest_training_loss", None)
    if getattr(model, "compute_loss", False) and callable(loss):
        line += f", training loss {loss():.6g}"
    return line


def show(kv: KeyedVectors, words: Sequence[str], analogies: Sequence[Sequence[str]]) -> None:
    """Print the nearest neighbours of ``words`` and the answers to ``analogies``."""
    for w in words:
        if w in kv:
            near = ", ".join(f"{k} {s:.2f}" for k, s in kv.most_similar(w, topn=6))
            print(f"  {w:>8} -> {near}")
    for a, b, c in analogies:
        if all(w in kv for w in (a, b, c)):
            best = kv.most_similar(positive=[b, c], negative=[a], topn=3)
            near = ", ".join(f"{k} {s:.2f}" for k, s in best)
            print(f"  analogy {a} : {b} :: {c} : ?  ->  {near}")


def _plot(kv: KeyedVectors, path: str) -> str:
    """Write the demo's PCA plot; the reason when it cannot (matplotlib missing)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return "skipped pca.png: matplotlib is not installed (pip install 'candle-embed[plot]')"
    from candle_embed.plot import plot_embeddings

    present = [w for w in DEMO_PLOT_WORDS if w in kv]
    title = "candle-embed demo: Python docs, 2-D PCA"
    plot_embeddings(kv, words=present, method="pca", path=path, title=title)
    return f"wrote {os.path.abspath(path)} (2-D PCA of {len(present)} words)"


def run_demo(args: argparse.Namespace) -> int:
    """``candle-embed demo``."""
    from candle_embed.demo_corpus import stdlib_sentences

    out_dir = args.out_dir
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise CliError(f"--out-dir {out_dir} exists and is not a directory")
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as e:
        raise CliError(f"--out-dir {out_dir}: cannot create it ({e.strerror or e})") from None
    check_output_dir(out_dir, f"--out-dir {out_dir}")
    checked_params(args)  # bad flags before reading the corpus
    t0 = time.perf_counter()
    sentences = stdlib_sentences()
    n = sum(len(s) for s in sentences)
    print(
        f"corpus: Python {sys.version.split()[0]} standard-library docstrings + help topics, "
        f"{len(sentences)} sentences, {n} words ({time.perf_counter() - t0:.1f} s to read)"
    )
    model = train(args, sentences=sentences)
    print(summary(model))
    print("nearest neighbours (cosine):")
    show(model.wv, DEMO_WORDS, DEMO_ANALOGIES)
    vec_path = os.path.join(out_dir, "vectors.txt")
    model.wv.save_word2vec_format(vec_path)
    print(f"wrote {os.path.abspath(vec_path)} (word2vec text format)")
    print(_plot(model.wv, os.path.join(out_dir, "pca.png")))
    from candle_embed.fasttext.demo import demo_lines  # subword vectors: words never seen

    print("\n".join(demo_lines(sentences, seed=args.seed, workers=args.threads)))
    return 0


def run_train(args: argparse.Namespace) -> int:
    """``candle-embed train CORPUS --out PATH``."""
    kind = check_output(args.out)
    check_corpus(args.corpus)
    checked_params(args)
    model = train(args, corpus_file=args.corpus)
    print(summary(model))
    model.wv.save(args.out)
    print(f"wrote {os.path.abspath(args.out)} ({kind})")
    return 0
