"""Quality and speed of candle_embed.Word2Vec against gensim Word2Vec(sg=1), same run.

Corpus: gensim's text8 excerpt (test_data/head500.noblanks.cor, ~331k words, one long line per
"sentence"), evaluated on wordsim353 (Spearman). Same hyper-parameters for both (gensim's
defaults: dim 100, window 5, negative 5, min_count 5, sample 1e-3, 5 epochs, alpha 0.025),
same number of threads. Rounds are interleaved (ours, gensim, ours, ...) with a different seed
per round; times are medians, Spearman is the mean over rounds (and its spread).

    python benches/bench_word2vec.py [--rounds 3] [--threads 1 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import candle_embed as ce


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--epochs", type=int, default=5)
    args = ap.parse_args()

    import gensim
    from gensim.models import Word2Vec as GWord2Vec
    from gensim.models.word2vec import LineSentence

    data = os.path.join(os.path.dirname(gensim.__file__), "test", "test_data")
    corpus = os.path.join(data, "head500.noblanks.cor")
    ws = os.path.join(data, "wordsim353.tsv")
    hp = dict(vector_size=100, window=5, min_count=5, negative=5, sample=1e-3, epochs=args.epochs)
    print(f"corpus {corpus}\nhyper-parameters {hp}, sg=1, hs=0")
    print(f"gensim {gensim.__version__}, candle_embed {ce.__version__}, cpus {os.cpu_count()}")

    for threads in args.threads:
        res: dict[str, dict[str, list[float]]] = {}
        for r in range(args.rounds):
            seed = r + 1
            runs = {
                "candle_embed": lambda seed=seed, threads=threads: (
                    ce.Word2Vec(corpus_file=corpus, seed=seed, workers=threads, **hp).wv
                ),
                "gensim (LineSentence)": lambda seed=seed, threads=threads: (
                    GWord2Vec(LineSentence(corpus), sg=1, hs=0, seed=seed, workers=threads, **hp).wv
                ),
                "gensim (corpus_file)": lambda seed=seed, threads=threads: (
                    GWord2Vec(corpus_file=corpus, sg=1, hs=0, seed=seed, workers=threads, **hp).wv
                ),
            }
            for name, fn in runs.items():
                t0 = time.perf_counter()
                wv = fn()
                dt = time.perf_counter() - t0
                rho = wv.evaluate_word_pairs(ws)[1][0]
                d = res.setdefault(name, {"t": [], "rho": []})
                d["t"].append(dt)
                d["rho"].append(float(rho))
        ours = statistics.median(res["candle_embed"]["t"])
        ours_rho = statistics.mean(res["candle_embed"]["rho"])
        print(f"\nthreads={threads}, {args.rounds} rounds")
        print(f"{'':24} {'time s (median)':>16} {'ours/peer':>10} {'ws353 rho':>10} {'spread':>8}")
        for name, d in res.items():
            t = statistics.median(d["t"])
            rho = statistics.mean(d["rho"])
            spread = max(d["rho"]) - min(d["rho"])
            print(f"{name:24} {t:16.2f} {ours / t:10.2f} {rho:10.3f} {spread:8.3f}")
        for name in res:
            if name != "candle_embed":
                gap = ours_rho - statistics.mean(res[name]["rho"])
                print(f"  rho(ours) - rho({name}) = {gap:+.3f}")


if __name__ == "__main__":
    main()
