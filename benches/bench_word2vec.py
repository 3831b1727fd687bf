"""Per-mode quality and speed of candle_embed's Word2Vec or FastText against the peers, same run.

Modes: skip-gram / CBOW x negative sampling / hierarchical softmax (``sg-ns``, ``sg-hs``,
``cbow-ns``, ``cbow-hs``), each trained by every implementation with the same gensim parameters
(dim 100, window 5, min_count 5, sample 1e-3, alpha 0.025 for sg and 0.05 for cbow as gensim's
word2vec.c, 5 epochs; ns: negative=5, hs=0; hs: hs=1, negative=0; FastText also min_n 3,
max_n 6, bucket 2M) on the same corpus file and the same number of threads. Peers: gensim's
``Word2Vec`` / ``FastText`` on ``LineSentence`` (``ls``) and ``corpus_file`` (``cf``), and for
FastText the ``fasttext`` package from PyPI when it imports (same parameters under its names;
it has no seed). Each round runs every implementation once, in turn, with seed r+1 in round r.
Every model is scored by the same evaluator (gensim's ``KeyedVectors``: the vectors are copied
into one): wordsim353 Spearman and questions-words analogy accuracy (top 300k words, gensim's
``evaluate_word_analogies`` default ``restrict_vocab``). Times are medians, scores means over
rounds; words/s counts the corpus's tokens times the epochs over the time; ``speed`` is the
peer's time over ours (>= 1: we are at least as fast).

gensim's ``corpus_file`` path with ``workers > 1`` trains at a higher learning rate than its
schedule says: every worker thread reads its share of the file but measures its progress against
the whole epoch (``word2vec_corpusfile.pyx::get_next_alpha``, each thread given the epoch's
total), so with ``w`` threads an epoch's rate decays only ``1/w`` of the way. On small corpora
that scores higher (FastText skip-gram on head500, 2 threads: +0.03 to +0.05 analogy; gensim's
``LineSentence`` path given that schedule scores as ``corpus_file`` does; BENCHMARKS.md, sixth
session; ``--gensim-paths ls-cfrate`` reproduces it). ``LineSentence`` (``ls``) follows the
schedule, as we do: compare quality with it.

Corpora: ``head500`` (gensim's text8 excerpt, ~331k words), ``lee`` (gensim's
lee_background.cor, ~60k words), ``demo`` (the built-in demo corpus, ~350k words),
``big`` (benches/make_corpus.py's cached English, >= 10M words), or any text file path.

A mode may carry a suffix naming candle_embed's training path (the peers train as always, once
per base mode): ``-det`` for ``deterministic=True`` (bit-identical for any thread count), ``-mb``
for ``minibatch=True`` (HogBatch, negative sampling only: ``sg-ns-mb``, ``cbow-ns-mb``), e.g.
``--modes sg-ns sg-ns-det sg-ns-mb``; no suffix is the default Hogwild per-pair path.

    python benches/bench_word2vec.py [--model word2vec|fasttext] [--corpus head500 lee demo big]
        [--modes sg-ns cbow-hs] [--rounds 3] [--threads 2] [--epochs 5]
        [--gensim-paths ls cf ls-cfrate]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import candle_embed as ce

MODES = {
    "sg-ns": dict(sg=1, hs=0, negative=5, alpha=0.025),
    "sg-hs": dict(sg=1, hs=1, negative=0, alpha=0.025),
    "cbow-ns": dict(sg=0, hs=0, negative=5, alpha=0.05),
    "cbow-hs": dict(sg=0, hs=1, negative=0, alpha=0.05),
}


# candle_embed-only keywords of each mode suffix (see the module docs)
VARIANTS: dict[str, dict[str, Any]] = {
    "": {},
    "-det": {"deterministic": True},
    "-mb": {"minibatch": True},
    "-mb-det": {"minibatch": True, "deterministic": True},
}
ALL_MODES = [m + v for m in MODES for v in VARIANTS if m in ("sg-ns", "cbow-ns") or "-mb" not in v]


def split_mode(mode: str) -> tuple[str, str]:
    """``sg-ns-mb-det`` -> (``sg-ns``, ``-mb-det``): the base mode and its VARIANTS suffix."""
    for suffix in sorted(VARIANTS, key=len, reverse=True):
        if suffix and mode.endswith(suffix):
            return mode[: -len(suffix)], suffix
    return mode, ""


def corpus_path(name: str, data: str) -> str:
    """A one-sentence-per-line text file for ``name`` (written once for ``demo``)."""
    if name == "head500":
        return os.path.join(data, "head500.noblanks.cor")
    if name == "lee":
        return os.path.join(data, "lee_background.cor")
    if name == "big":
        from make_corpus import cached_corpus  # type: ignore[import-not-found]

        return str(cached_corpus())
    if name == "demo":
        from candle_embed.demo_corpus import stdlib_sentences

        path = os.path.join(tempfile.gettempdir(), "candle_embed_demo_corpus.txt")
        if not os.path.exists(path):
            with open(path + ".tmp", "w", encoding="utf-8") as f:
                f.writelines(" ".join(s) + "\n" for s in stdlib_sentences())
            os.replace(path + ".tmp", path)
        return path
    return name


def scores(keys: list[str], vectors: Any, data: str) -> tuple[float, float]:
    """(wordsim353 Spearman, analogy accuracy) by gensim's evaluator."""
    from gensim.models import KeyedVectors

    kv = KeyedVectors(vectors.shape[1])
    kv.add_vectors(keys, vectors)
    rho = kv.evaluate_word_pairs(os.path.join(data, "wordsim353.tsv"))[1][0]
    acc = kv.evaluate_word_analogies(os.path.join(data, "questions-words.txt"))[0]
    return float(rho), float(acc)


def fasttext_vectors(model: Any) -> tuple[list[str], Any]:
    """The `fasttext` package's words and their vectors (word row + n-gram rows, averaged)."""
    import numpy as np

    words = list(model.get_words())
    return words, np.stack([model.get_word_vector(w) for w in words])


def implementations(
    path: str, base: str, variants: list[str], args: argparse.Namespace
) -> dict[str, Callable[[int], tuple[list[str], Any]]]:
    """Each implementation of ``base`` as ``seed -> (keys, vectors)``: ours once per variant
    suffix, then the peers (gensim's paths, and for FastText the `fasttext` package when it
    imports), all with the same hyper-parameters."""
    hp: dict[str, Any] = dict(
        vector_size=100, window=5, min_count=5, sample=1e-3, epochs=args.epochs, **MODES[base]
    )
    if args.model == "fasttext":
        from gensim.models import FastText as GModel

        hp.update(min_n=3, max_n=6, bucket=2_000_000)
        ours_cls: Any = ce.FastText
    else:
        from gensim.models import Word2Vec as GModel

        ours_cls = ce.Word2Vec
    from gensim.models.word2vec import LineSentence

    def wv(m: Any) -> tuple[list[str], Any]:
        return list(m.wv.index_to_key), m.wv.vectors

    runs: dict[str, Callable[[int], tuple[list[str], Any]]] = {}
    for v in variants:
        extra = VARIANTS[v]
        runs[f"candle_embed{v}"] = lambda seed, extra=extra: wv(
            ours_cls(corpus_file=path, seed=seed, workers=args.threads, **hp, **extra)
        )
    if "ls" in args.gensim_paths:
        runs["gensim (LineSentence)"] = lambda seed: wv(
            GModel(LineSentence(path), seed=seed, workers=args.threads, **hp)
        )
    if "cf" in args.gensim_paths:
        runs["gensim (corpus_file)"] = lambda seed: wv(
            GModel(corpus_file=path, seed=seed, workers=args.threads, **hp)
        )
    if "ls-cfrate" in args.gensim_paths:
        runs["gensim (LineSentence, corpus_file's rate)"] = lambda seed: wv(
            line_sentence_at_corpus_file_rate(GModel, path, seed, args.threads, hp)
        )
    if args.model == "fasttext":
        try:
            import fasttext  # the `fasttext` package from PyPI, when it installs
        except ImportError:
            print("(the `fasttext` package is not installed: its row is left out)")
        else:
            ft_hp = dict(
                model="skipgram" if MODES[base]["sg"] else "cbow",
                loss="hs" if MODES[base]["hs"] else "ns",
                neg=int(MODES[base]["negative"]),
                lr=float(MODES[base]["alpha"]),
                dim=100, ws=5, minCount=5, t=1e-3, epoch=args.epochs,
                minn=3, maxn=6, bucket=2_000_000, thread=args.threads, verbose=0,
            )  # fmt: skip
            # fastText has no seed parameter: its threads draw from fixed per-thread seeds
            runs["fasttext (PyPI)"] = lambda seed: fasttext_vectors(
                fasttext.train_unsupervised(path, **ft_hp)
            )
    return runs


def line_sentence_at_corpus_file_rate(
    model_cls: Any, path: str, seed: int, threads: int, hp: dict[str, Any]
) -> Any:
    """gensim's ``LineSentence`` path, trained epoch by epoch at the rate its ``corpus_file``
    path runs with ``threads`` workers (see the module docs): epoch ``e`` of ``E`` from
    ``a(e / E)`` down to ``a((e + 1 / threads) / E)``, ``a(p) = alpha - (alpha - min_alpha) p``."""
    from gensim.models.word2vec import LineSentence

    epochs, a0 = hp["epochs"], hp["alpha"]
    rate = dict(hp, epochs=1)
    a1 = rate.pop("min_alpha", 0.0001)
    m = model_cls(seed=seed, workers=threads, **rate)
    m.build_vocab(LineSentence(path))
    for e in range(epochs):
        start, end = (a0 - (a0 - a1) * (e + p) / epochs for p in (0.0, 1.0 / threads))
        m.train(LineSentence(path), total_examples=m.corpus_count, epochs=1,
                start_alpha=start, end_alpha=end)  # fmt: skip
    return m


def count_words(path: str) -> int:
    """Whitespace-separated tokens in the corpus file (the words/s denominator, per epoch)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        return sum(len(line.split()) for line in f)


def run_base(
    path: str, base: str, variants: list[str], args: argparse.Namespace, data: str
) -> dict[str, dict[str, list[float]]]:
    """Rounds interleaved over every implementation (seed r+1 in round r): time, rho, accuracy."""
    runs = implementations(path, base, variants, args)
    res: dict[str, dict[str, list[float]]] = {}
    for r in range(args.rounds):
        for name, fn in runs.items():
            t0 = time.perf_counter()
            keys, vectors = fn(r + 1)
            dt = time.perf_counter() - t0
            rho, acc = scores(keys, vectors, data)
            d = res.setdefault(name, {"t": [], "rho": [], "acc": []})
            d["t"].append(dt)
            d["rho"].append(rho)
            d["acc"].append(acc)
            print(f"  [{base} round {r + 1}] {name}: {dt:.2f} s rho {rho:.3f} acc {acc:.3f}")
    return res


def report(base: str, res: dict[str, dict[str, list[float]]], words: int, epochs: int) -> None:
    """One row per implementation; each of ours also against every peer (time ratio, gaps)."""
    med = {k: statistics.median(d["t"]) for k, d in res.items()}
    rho = {k: statistics.mean(d["rho"]) for k, d in res.items()}
    acc = {k: statistics.mean(d["acc"]) for k, d in res.items()}
    for k in res:
        wps = words * epochs / med[k]
        print(f"| {base} | {k} | {med[k]:.2f} | {wps / 1e3:,.0f}k | {rho[k]:.3f} | {acc[k]:.3f} |")
    peers = [k for k in res if not k.startswith("candle_embed")]
    for ours in (k for k in res if k.startswith("candle_embed")):
        for peer in peers:  # speed: the peer's time over ours (above 1: ours faster)
            print(
                f"  {base} {ours} vs {peer}: speed {med[peer] / med[ours]:.2f}x, "
                f"d rho {rho[ours] - rho[peer]:+.3f}, d acc {acc[ours] - acc[peer]:+.3f}"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", choices=["word2vec", "fasttext"], default="word2vec")
    ap.add_argument("--corpus", nargs="+", default=["head500"])
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=ALL_MODES)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument(
        "--gensim-paths", nargs="+", choices=["ls", "cf", "ls-cfrate"], default=["ls", "cf"]
    )
    args = ap.parse_args()

    import gensim

    data = os.path.join(os.path.dirname(gensim.__file__), "test", "test_data")
    print(f"gensim {gensim.__version__}, candle_embed {ce.__version__}, cpus {os.cpu_count()}")
    print(f"{args.model}, threads {args.threads}, epochs {args.epochs}, {args.rounds} rounds")
    bases: dict[str, list[str]] = {}
    for mode in args.modes:
        base, suffix = split_mode(mode)
        bases.setdefault(base, []).append(suffix)
    for name in args.corpus:
        path = corpus_path(name, data)
        words = count_words(path)
        print(f"\ncorpus {name}: {path} ({words:,} words)")
        results = {base: run_base(path, base, v, args, data) for base, v in bases.items()}
        print("\n| mode | implementation | time s | words/s | ws353 rho | analogy |")
        print("|---|---|---|---|---|---|")
        for base, res in results.items():
            report(base, res, words, args.epochs)


if __name__ == "__main__":
    main()
