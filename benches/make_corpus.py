"""Assemble >= 10 million words of natural English from Debian documentation packages.

The Word2Vec and FastText benchmarks need a corpus much larger than the demo one (~350k words)
and still no network beyond the Debian mirror this machine installs from. This script fetches
documentation packages with ``apt-get download`` (no root, nothing installed: each ``.deb`` is
unpacked with ``dpkg-deb -x`` into a temporary folder), turns their HTML, man pages, POD, info
and plain-text files into prose (markup, code blocks and ``<pre>`` dropped), and writes one
lower-cased sentence per line, tokenized as the demo corpus (``candle_embed.demo_corpus``):
``[a-z]+('[a-z]+)?`` words, sentences split at ``. ! ? : ;`` and blank lines, at least 3 words.

The result is cached outside git, in ``~/.cache/candle-embed/`` (or ``$CANDLE_EMBED_CACHE``):
``debian-english.txt`` and ``debian-english.json`` (packages, versions, words and sentences per
package). A second run reuses the cache unless ``--force``. Packages are read in the order
below until ``--min-words`` is reached; fewer words than that is an error.

    python benches/make_corpus.py [--min-words 10000000] [--force]
"""

from __future__ import annotations

import argparse
import gzip
import html.parser
import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

from candle_embed.demo_corpus import _SENTENCE, _WORD  # the demo corpus's tokenizer

# English documentation in Debian main, prose-heavy first. debian-handbook ships every
# translation: only its en-US tree is read (see _wanted).
PACKAGES = [
    "python3.11-doc",
    "perl-doc",
    "postgresql-doc-15",
    "debian-handbook",
    "debian-reference-en",
    "python-django-doc",
    "git-doc",
    "manpages",
    "manpages-dev",
    "debian-policy",
    "nodejs-doc",
    "sqlite3-doc",
    "gnu-standards",
    "fortunes",
]
_TEXT_SUFFIXES = (".html", ".htm", ".pod", ".txt", ".info", ".rst")
_OTHER_LANGS = re.compile(r"/(?:man|doc)/(?:[a-z]{2}(?:[_-][A-Za-z]{2})?)(?:\.[\w-]+)?/")
_ROFF_ESCAPE = re.compile(r"\\(?:f[BIRPCW]|f\[[A-Z]*\]|\(..|\*.|\[[^]]*\]|[-e&|^0 ]|s[-+]?\d)")
_POD_CODE = re.compile(r"[A-Z]<+\s*([^<>]*?)\s*>+")


def cache_dir() -> Path:
    return Path(os.environ.get("CANDLE_EMBED_CACHE", Path.home() / ".cache" / "candle-embed"))


def cached_corpus() -> Path:
    """The cached corpus file, built first when missing (used by the benchmarks)."""
    path = cache_dir() / "debian-english.txt"
    if not path.exists():
        build(10_000_000, force=False)
    return path


class _HtmlText(html.parser.HTMLParser):
    """The visible prose of an HTML page: no script, style, pre, code or navigation."""

    _SKIP = {"script", "style", "pre", "code", "nav", "head", "kbd", "samp"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag in self._SKIP:
            self.skip += 1
        elif tag in ("p", "div", "li", "td", "br", "h1", "h2", "h3", "h4", "dt", "dd"):
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self.skip:
            self.skip -= 1

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)


def html_text(src: str) -> str:
    p = _HtmlText()
    p.feed(src)
    p.close()
    return "".join(p.parts)


def roff_text(src: str) -> str:
    """A man page's words: macro lines keep their arguments, example blocks (.EX/.nf) go."""
    out: list[str] = []
    literal = False
    for line in src.splitlines():
        if line.startswith((".EX", ".nf")):
            literal = True
        elif line.startswith((".EE", ".fi")):
            literal = False
        elif literal or line.startswith(('.\\"', "'\\\"")):
            continue
        elif line.startswith((".", "'")):
            parts = line.split(None, 1)
            if parts[0] in (".SH", ".SS", ".PP", ".LP", ".P", ".TP", ".IP", ".sp"):
                out.append("\n")
            if len(parts) > 1 and parts[0] in (".B", ".I", ".BR", ".IR", ".RB", ".RI", ".SH"):
                out.append(parts[1].replace('"', " "))
        else:
            out.append(line)
    return _ROFF_ESCAPE.sub(" ", "\n".join(out))


def pod_text(src: str) -> str:
    """POD prose: headings' text kept, verbatim (indented) paragraphs and commands dropped."""
    out: list[str] = []
    for para in src.split("\n\n"):
        if para.startswith((" ", "\t")) or para.startswith(("=begin", "=for", "=cut", "=pod")):
            continue
        if para.startswith("="):  # "=head2 Text": keep the text of a heading or item
            parts = para.split(None, 1)
            para = parts[1] if len(parts) > 1 else ""
        out.append(_POD_CODE.sub(r"\1", para))
    return "\n\n".join(out)


def _wanted(path: str) -> bool:
    if "/debian-handbook/" in path and "/en-US/" not in path:
        return False
    if _OTHER_LANGS.search(path):
        return False
    if "/man/man" in path or "/games/fortunes/" in path:
        return not path.endswith((".dat", ".u8"))
    name = path[:-3] if path.endswith(".gz") else path
    return name.endswith(_TEXT_SUFFIXES)


def file_text(path: str) -> str:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:  # type: ignore[operator]
        src = f.read()
    name = path[:-3] if path.endswith(".gz") else path
    if name.endswith((".html", ".htm")):
        return html_text(src)
    if "/man/man" in path:
        return roff_text(src)
    if name.endswith(".pod"):
        return pod_text(src)
    return src


def sentences(text: str) -> Iterator[str]:
    for sent in _SENTENCE.split(text.lower()):
        toks = _WORD.findall(sent)
        if len(toks) >= 3:
            yield " ".join(toks)


def package_sentences(pkg: str, work: Path) -> tuple[str, list[str]]:
    """(version, sentences) of one package, fetched and unpacked under ``work``."""
    subprocess.run(["apt-get", "download", pkg], cwd=work, check=True, capture_output=True)
    deb = next(work.glob(f"{pkg}_*.deb"))
    version = urllib.parse.unquote(deb.name.split("_")[1])  # "1%3a2.39" is epoch 1
    root = work / pkg
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    deb.unlink()
    out: list[str] = []
    for dirpath, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(dirpath, name)
            if os.path.islink(path) or not _wanted(path):
                continue
            try:
                out.extend(sentences(file_text(path)))
            except (OSError, EOFError, ValueError):
                continue  # a damaged or non-text member: skip it, count what is left
    return version, out


def build(min_words: int, force: bool) -> Path:
    out_dir = cache_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    path, meta_path = out_dir / "debian-english.txt", out_dir / "debian-english.json"
    if path.exists() and meta_path.exists() and not force:
        print(f"cached: {path} ({json.loads(meta_path.read_text())['words']} words)")
        return path
    packages: dict[str, dict[str, object]] = {}
    words = nsent = 0
    seen: set[str] = set()
    with tempfile.TemporaryDirectory() as tmp, open(f"{path}.tmp", "w", encoding="utf-8") as f:
        for pkg in PACKAGES:
            if words >= min_words:
                break
            try:
                version, sents = package_sentences(pkg, Path(tmp))
            except (subprocess.CalledProcessError, StopIteration) as e:
                print(f"  {pkg}: skipped ({e})", file=sys.stderr)
                continue
            new = [s for s in sents if s not in seen]  # boilerplate repeated across pages
            seen.update(new)
            n = sum(s.count(" ") + 1 for s in new)
            f.writelines(s + "\n" for s in new)
            words += n
            nsent += len(new)
            packages[pkg] = {"version": version, "words": n, "sentences": len(new)}
            print(f"  {pkg} {version}: {n} words, {len(new)} sentences (total {words})")
    if words < min_words:
        os.unlink(f"{path}.tmp")
        raise SystemExit(f"only {words} words from {len(PACKAGES)} packages (< {min_words})")
    os.replace(f"{path}.tmp", path)
    meta = {"words": words, "sentences": nsent, "packages": packages}
    meta_path.write_text(json.dumps(meta, indent=1))
    print(f"wrote {path}: {words} words, {nsent} sentences")
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--min-words", type=int, default=10_000_000)
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args()
    build(args.min_words, args.force)


if __name__ == "__main__":
    main()
