"""Per-mode quality and speed of candle_embed.Word2Vec against gensim's Word2Vec, same run.

Modes: skip-gram / CBOW x negative sampling / hierarchical softmax (``sg-ns``, ``sg-hs``,
``cbow-ns``, ``cbow-hs``), each trained by both libraries with the same gensim parameters
(dim 100, window 5, min_count 5, sample 1e-3, alpha 0.025 for sg and 0.05 for cbow as gensim's
word2vec.c, 5 epochs; ns: negative=5, hs=0; hs: hs=1, negative=0) on the same corpus file and
the same number of threads. Rounds are interleaved (ours, gensim, ours, ...) with seed r+1 in
round r. Both models are scored by the same evaluator (gensim's ``KeyedVectors``: ours is copied
into one): wordsim353 Spearman and questions-words analogy accuracy (top 300k words, gensim's
``evaluate_word_analogies`` default ``restrict_vocab``). Times are medians, scores means over
rounds; ``speed`` is gensim's time over ours (>= 1: we are at least as fast).

Corpora: ``head500`` (gensim's text8 excerpt, ~331k words), ``lee`` (gensim's
lee_background.cor, ~60k words), ``demo`` (the built-in demo corpus, ~350k words),
``big`` (benches/make_corpus.py's cached English, >= 10M words), or any text file path.

A mode may carry a suffix naming candle_embed's training path (gensim trains as always):
``-det`` for ``deterministic=True`` (bit-identical for any thread count), ``-mb`` for
``minibatch=True`` (HogBatch windows; skip-gram negative sampling only: ``sg-ns-mb``,
``sg-ns-mb-det``), e.g. ``--modes sg-ns sg-ns-det sg-ns-mb``; no suffix is the default Hogwild
per-pair path.

    python benches/bench_word2vec.py [--corpus head500 lee demo] [--modes sg-ns cbow-hs]
        [--rounds 3] [--threads 2] [--epochs 5] [--no-gensim-corpus-file]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
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


def split_mode(mode: str) -> tuple[str, dict[str, Any]]:
    """``sg-ns-mb-det`` -> (``sg-ns``, ``{"minibatch": True, "deterministic": True}``)."""
    for suffix, extra in sorted(VARIANTS.items(), key=lambda kv: -len(kv[0])):
        if suffix and mode.endswith(suffix):
            return mode[: -len(suffix)], extra
    return mode, {}


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


def run_mode(path: str, mode: str, args: argparse.Namespace, data: str) -> dict[str, Any]:
    from gensim.models import Word2Vec as GWord2Vec
    from gensim.models.word2vec import LineSentence

    base, extra = split_mode(mode)
    hp = dict(
        vector_size=100, window=5, min_count=5, sample=1e-3, epochs=args.epochs, **MODES[base]
    )
    runs = {
        "candle_embed": lambda seed: ce.Word2Vec(
            corpus_file=path, seed=seed, workers=args.threads, **hp, **extra
        ),
        "gensim (LineSentence)": lambda seed: GWord2Vec(
            LineSentence(path), seed=seed, workers=args.threads, **hp
        ),
    }
    if args.gensim_corpus_file:
        runs["gensim (corpus_file)"] = lambda seed: GWord2Vec(
            corpus_file=path, seed=seed, workers=args.threads, **hp
        )
    res: dict[str, dict[str, list[float]]] = {}
    for r in range(args.rounds):
        for name, fn in runs.items():
            t0 = time.perf_counter()
            m = fn(r + 1)
            dt = time.perf_counter() - t0
            rho, acc = scores(list(m.wv.index_to_key), m.wv.vectors, data)
            d = res.setdefault(name, {"t": [], "rho": [], "acc": []})
            d["t"].append(dt)
            d["rho"].append(rho)
            d["acc"].append(acc)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--corpus", nargs="+", default=["head500"])
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=ALL_MODES)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--no-gensim-corpus-file", dest="gensim_corpus_file", action="store_false")
    args = ap.parse_args()

    import gensim

    data = os.path.join(os.path.dirname(gensim.__file__), "test", "test_data")
    print(f"gensim {gensim.__version__}, candle_embed {ce.__version__}, cpus {os.cpu_count()}")
    print(f"threads {args.threads}, epochs {args.epochs}, {args.rounds} rounds (seeds 1..)")
    for name in args.corpus:
        path = corpus_path(name, data)
        print(f"\ncorpus {name}: {path}")
        head = f"{'mode':12} {'implementation':22} {'time s':>8} {'speed':>6}"
        print(head + f" {'ws353 rho':>9} {'analogy':>8} {'d rho':>7} {'d acc':>7}")
        for mode in args.modes:
            res = run_mode(path, mode, args, data)
            ours = res["candle_embed"]
            for impl, d in res.items():
                t = statistics.median(d["t"])
                speed = t / statistics.median(ours["t"])
                rho, acc = statistics.mean(d["rho"]), statistics.mean(d["acc"])
                if impl == "candle_embed":
                    gaps = f"{'':>7} {'':>7}"
                else:  # ours minus this peer: within +-0.02 is issue #13's bar
                    drho = statistics.mean(ours["rho"]) - rho
                    dacc = statistics.mean(ours["acc"]) - acc
                    gaps = f"{drho:+7.3f} {dacc:+7.3f}"
                print(f"{mode:12} {impl:22} {t:8.2f} {speed:6.2f} {rho:9.3f} {acc:8.3f} {gaps}")


if __name__ == "__main__":
    main()
