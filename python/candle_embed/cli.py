"""The command line: ``candle-embed {demo,train}`` (also ``python -m candle_embed``).

Every failure is one line on stderr (``candle-embed: error: ...``) and a non-zero exit status:
2 for a bad argument or input (most found before any training), 1 for a failure while running
(out of memory included), 130 for Ctrl-C. Never a traceback. The commands themselves are in
``candle_embed._commands``.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from candle_embed import __version__

_TRAIN_HELP = """\
Train word2vec vectors on CORPUS, a UTF-8 text file with one sentence per line and tokens
separated by whitespace (gensim's LineSentence; text is used as is: lower-case and strip
punctuation beforehand if you want). Skip-gram with negative sampling by default; --cbow,
--hs and --loss select gensim's other modes. The output format follows the extension of
--out: .txt or .vec = word2vec text (what fastText's .vec is), .bin = word2vec binary,
.safetensors = one safetensors file that KeyedVectors.load reads (memory-mapped with
mmap="r"). The file is written atomically. Defaults are gensim's."""

_DEMO_HELP = """\
Train word vectors on a built-in corpus that needs no download: the docstrings of the Python
standard library's own source files plus the language-reference help topics
(pydoc_data.topics) of the Python running this, about 350 000 words of technical English.
Shows a progress line with words/s, prints the nearest neighbours of a few words and an
analogy, then writes the vectors (word2vec text format) and, when matplotlib is installed, a
PNG with a 2-D PCA plot of chosen words."""


class CliError(Exception):
    """A bad argument or input found before training: reported in one line, exit status 2."""


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines included) made one space."""
    return " ".join(text.split())


class _Parser(argparse.ArgumentParser):
    """argparse with its errors in one line (argparse prints the usage lines first)."""

    def error(self, message: str) -> NoReturn:
        hint = f"see '{self.prog} --help'"
        self.exit(2, f"{self.prog}: error: {one_line(message)} ({hint})\n")


def _ranged(kind: Callable[[str], Any], lo: Any, hi: Any) -> Callable[[str], Any]:
    """An argparse ``type`` accepting ``kind`` values in ``[lo, hi]`` (the message gives the
    range; argparse names the flag)."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not lo <= value <= hi or value != value:
            raise argparse.ArgumentTypeError(f"must be between {lo} and {hi}, got {text}")
        return value

    return parse


#: The largest --dim: more is no use for word vectors, and a table of it is already 256 KiB a
#: word. Memory for the table is checked when it is allocated (an error, not a crash).
MAX_DIM = 65536


# The numeric training options: flag, type, range (inclusive), default, help.
_NUMBERS: tuple[tuple[str, Callable[[str], Any], Any, Any, Any, str], ...] = (
    ("--dim", int, 1, MAX_DIM, 100, f"vector size, 1 to {MAX_DIM} (vector_size; default: 100)"),
    ("--window", int, 1, 10_000, 5, "max context distance, 1 to 10000 (window; default: 5)"),
    (
        "--negative", int, 0, 1000, None,
        "noise words per pair, 0 to 1000 (negative; default: 5, or 0 with --hs)",
    ),
    ("--min-count", int, 0, 2**62, 5, "drop words seen fewer times (min_count; default: 5)"),
    ("--epochs", int, 1, 100_000, 5, "passes over the corpus, 1 to 100000 (epochs; default: 5)"),
    (
        "--lr", float, 1e-12, 10.0, 0.025,
        "initial learning rate, decayed linearly to --min-lr (alpha; default: 0.025)",
    ),
    ("--min-lr", float, 0.0, 10.0, 0.0001, "final learning rate (min_alpha; default: 0.0001)"),
    (
        "--sample", float, 0.0, 1.0, 1e-3,
        "subsampling threshold of frequent words, 0 = off (sample; default: 0.001)",
    ),
    ("--seed", int, 0, 2**64 - 1, 1, "random seed (seed; default: 1)"),
    (
        "--threads", int, 1, 1024, min(os.cpu_count() or 1, 4),
        "worker threads; 1 makes a seed reproducible (workers; default: CPUs, at most 4)",
    ),
    (
        "--ns-exponent", float, -10.0, 10.0, None,
        "exponent of the noise distribution (ns_exponent; default: 0.75)",
    ),
)  # fmt: skip


def _add_hparams(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("training (gensim's Word2Vec parameter in brackets)")
    add = g.add_argument
    for flag, kind, lo, hi, default, text in _NUMBERS:
        add(flag, type=_ranged(kind, lo, hi), default=default, help=text)
    add("--cbow", action="store_true", help="continuous bag of words instead of skip-gram (sg=0)")
    add(
        "--cbow-mean",
        type=int,
        choices=(0, 1),
        default=None,
        help="with --cbow: 1 = mean of the context vectors, 0 = their sum (cbow_mean; default: 1)",
    )
    add("--hs", action="store_true", help="hierarchical softmax (hs=1); with --negative N > 0 both")
    add(
        "--loss",
        action="store_true",
        help="track the training loss and print it (compute_loss=True)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress line")


def build_parser() -> argparse.ArgumentParser:
    """The ``candle-embed`` argument parser."""
    parser = _Parser(
        prog="candle-embed",
        description="candle-embed: word vectors on the library's Rust kernels.",
    )
    parser.add_argument("--version", action="version", version=f"candle-embed {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="{demo,train}", parser_class=_Parser)
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
    _add_hparams(demo)
    train = sub.add_parser(
        "train", help="train word vectors on a text file", description=_TRAIN_HELP
    )
    train.add_argument("corpus", help="UTF-8 text file (.gz, .bz2, .xz too): one sentence per line")
    train.add_argument(
        "--out", required=True, help="output path: .txt/.vec (text), .bin (binary), .safetensors"
    )
    _add_hparams(train)
    return parser


def _report_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    print(f"candle-embed: warning: {one_line(str(message))}", file=sys.stderr)


def _describe(e: BaseException) -> str:
    text = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
    return one_line(text) or type(e).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    from candle_embed import _commands

    try:
        with warnings.catch_warnings():
            warnings.showwarning = _report_warning
            if args.command == "demo":
                return _commands.run_demo(args)
            return _commands.run_train(args)
    except CliError as e:
        print(f"candle-embed {args.command}: error: {one_line(str(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("candle-embed: interrupted", file=sys.stderr)
        return 130
    except MemoryError as e:
        print(f"candle-embed: error: not enough memory ({_describe(e)})", file=sys.stderr)
        return 1
    except (ValueError, TypeError, KeyError) as e:  # the input (e.g. no word left by min_count)
        print(f"candle-embed {args.command}: error: {_describe(e)}", file=sys.stderr)
        return 2
    except Exception as e:
        print(f"candle-embed: error: {_describe(e)}", file=sys.stderr)
        return 1
