"""The command line: ``python -m candle_embed {demo,train}`` (also the ``candle-embed`` script)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

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

_TRAIN_HELP = """\
Train skip-gram word vectors (negative sampling) on CORPUS, a UTF-8 text file with one
sentence per line and tokens separated by whitespace (gensim's LineSentence; text is used as
is: lower-case and strip punctuation beforehand if you want). The output format follows the
extension of --out: .txt or .vec = word2vec text (also what fastText's .vec is), .bin =
word2vec binary, .safetensors = tensor 'weight' plus the word list in the metadata. The file is
written atomically (temporary file, then rename). Defaults are gensim's Word2Vec(sg=1)."""

_DEMO_HELP = """\
Train word vectors on a built-in corpus that needs no download: the docstrings of the Python
standard library's own source files plus the language-reference help topics
(pydoc_data.topics) of the Python running this, about 350 000 words of technical English.
Shows a progress bar with words/s, prints the nearest neighbours of a few words and an analogy,
then writes the vectors (word2vec text format) and a PNG with a 2-D PCA plot of chosen words."""


def _add_hparams(p: argparse.ArgumentParser, epochs: int, min_count: int) -> None:
    g = p.add_argument_group("training")
    g.add_argument("--dim", type=int, default=100, help="vector size (default: 100)")
    g.add_argument("--window", type=int, default=5, help="max context distance (default: 5)")
    g.add_argument("--negative", type=int, default=5, help="noise words per pair (default: 5)")
    g.add_argument(
        "--min-count",
        type=int,
        default=min_count,
        help=f"drop words seen fewer times (default: {min_count})",
    )
    g.add_argument("--epochs", type=int, default=epochs, help=f"passes (default: {epochs})")
    g.add_argument(
        "--lr",
        type=float,
        default=0.025,
        help="initial learning rate, decayed linearly to --min-lr (default: 0.025)",
    )
    g.add_argument("--min-lr", type=float, default=0.0001, help="final rate (default: 1e-4)")
    g.add_argument(
        "--sample",
        type=float,
        default=1e-3,
        help="subsampling threshold for frequent words, 0 = off (default: 1e-3)",
    )
    g.add_argument("--seed", type=int, default=1, help="random seed (default: 1)")
    g.add_argument(
        "--threads",
        type=int,
        default=min(os.cpu_count() or 1, 4),
        help="worker threads; 1 makes a seed reproducible (default: CPU count, at most 4)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="candle-embed",
        description="candle-embed: word vectors on the library's fused skip-gram kernel.",
    )
    sub = parser.add_subparsers(dest="command", metavar="{demo,train}")
    sub.required = True
    demo = sub.add_parser(
        "demo",
        help="train on a built-in corpus (Python's own docs), show neighbours, write a plot",
        description=_DEMO_HELP,
    )
    demo.add_argument(
        "--out-dir",
        default="candle_embed_demo",
        help="where vectors.txt and pca.png go (default: ./candle_embed_demo)",
    )
    _add_hparams(demo, epochs=5, min_count=5)
    train = sub.add_parser(
        "train", help="train word vectors on a text file", description=_TRAIN_HELP
    )
    train.add_argument("corpus", help="text file: one sentence per line")
    train.add_argument(
        "--out", required=True, help="output path: .txt/.vec (text), .bin, .safetensors"
    )
    _add_hparams(train, epochs=5, min_count=5)
    return parser


def _model(args: argparse.Namespace) -> Word2Vec:
    return Word2Vec(
        vector_size=args.dim,
        window=args.window,
        min_count=args.min_count,
        negative=args.negative,
        epochs=args.epochs,
        alpha=args.lr,
        min_alpha=args.min_lr,
        sample=args.sample,
        seed=args.seed,
        workers=args.threads,
    )


def _summary(model: Word2Vec) -> str:
    s = model.stats
    return (
        f"trained {len(model.wv)} words x {model.vector_size} on {s['corpus_words']} tokens "
        f"x {model.epochs} epochs in {s['seconds']:.1f} s ({s['words_per_second']:,.0f} words/s, "
        f"{model.workers} threads)"
    )


def _show(kv: KeyedVectors, words: Sequence[str], analogies: Sequence[Sequence[str]]) -> None:
    for w in words:
        if w in kv:
            near = ", ".join(f"{k} {s:.2f}" for k, s in kv.most_similar(w, topn=6))
            print(f"  {w:>8} -> {near}")
    for a, b, c in analogies:
        if all(w in kv for w in (a, b, c)):
            best = kv.most_similar(positive=[b, c], negative=[a], topn=3)
            near = ", ".join(f"{k} {s:.2f}" for k, s in best)
            print(f"  analogy {a} : {b} :: {c} : ?  ->  {near}")


def run_demo(args: argparse.Namespace) -> int:
    from candle_embed.demo_corpus import stdlib_sentences

    t0 = time.perf_counter()
    sentences = stdlib_sentences()
    n = sum(len(s) for s in sentences)
    print(
        f"corpus: Python {sys.version.split()[0]} standard-library docstrings + help topics, "
        f"{len(sentences)} sentences, {n} words ({time.perf_counter() - t0:.1f} s to read)"
    )
    model = _model(args)
    model.build_vocab(sentences)
    model.train(
        sentences, total_examples=model.corpus_count, epochs=model.epochs, progress=not args.quiet
    )
    print(_summary(model))
    print("nearest neighbours (cosine):")
    _show(model.wv, DEMO_WORDS, DEMO_ANALOGIES)
    os.makedirs(args.out_dir, exist_ok=True)
    vec_path = os.path.join(args.out_dir, "vectors.txt")
    png_path = os.path.join(args.out_dir, "pca.png")
    model.wv.save_word2vec_format(vec_path)
    _plot(model.wv, DEMO_PLOT_WORDS, png_path)
    print(f"wrote {os.path.abspath(vec_path)} (word2vec text format)")
    print(f"wrote {os.path.abspath(png_path)} (2-D PCA of {len(DEMO_PLOT_WORDS)} words)")
    return 0


def _plot(kv: KeyedVectors, words: Sequence[str], path: str) -> None:
    from candle_embed.plot import plot_embeddings

    present = [w for w in words if w in kv]
    plot_embeddings(
        kv, words=present, method="pca", path=path, title="candle-embed demo: Python docs, 2-D PCA"
    )


def run_train(args: argparse.Namespace) -> int:
    kind = format_for_path(args.out)  # fail before training on a bad extension
    if not os.path.isfile(args.corpus):
        raise FileNotFoundError(f"corpus file not found: {args.corpus}")
    model = _model(args)
    model.build_vocab(corpus_file=args.corpus)
    model.train(
        corpus_file=args.corpus,
        total_examples=model.corpus_count,
        epochs=model.epochs,
        progress=not args.quiet,
    )
    print(_summary(model))
    model.wv._write(args.out, kind)
    print(f"wrote {os.path.abspath(args.out)} ({kind})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            return run_demo(args)
        return run_train(args)
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"candle-embed: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("candle-embed: interrupted", file=sys.stderr)
        return 130
