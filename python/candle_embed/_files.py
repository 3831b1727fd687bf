"""The one way the Python layer opens a file for reading: the twin of the core's
``io::open::open_regular`` (``src/io/open.rs``).

Reading a FIFO with no writer blocks forever (``open`` itself waits for a writer), and a device
(``/dev/zero``) never ends. :func:`open_regular` opens with ``O_NONBLOCK`` (a FIFO opens at once
instead of waiting), looks at what it opened (``fstat`` on the descriptor, so nothing can be
swapped in between) and refuses anything but a regular file with a ``CandleEmbedValueError``
naming the path and what it is. A directory keeps the operating system's answer
(``IsADirectoryError``), as Python's ``open`` gives. :func:`open_decompressed` adds the
gzip / bzip2 / xz sniffing the corpus readers share.
"""

from __future__ import annotations

import bz2
import errno
import gzip
import lzma
import os
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any

from candle_embed._errors import CandleEmbedValueError

_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def _kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def open_regular(
    path: str | bytes | os.PathLike[str],
    mode: str = "rb",
    encoding: str | None = None,
    errors: str | None = None,
) -> IO[Any]:
    """``open(path, mode, encoding=..., errors=...)`` for reading (``mode`` "r" or "rb"),
    refusing anything but a regular file (see the module docs); never blocks on a FIFO."""
    if mode not in ("r", "rb"):
        raise CandleEmbedValueError(f"open_regular reads only, got mode {mode!r}")
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), os.fsdecode(path))
        if not stat.S_ISREG(st.st_mode):
            raise CandleEmbedValueError(
                f"cannot read {os.fsdecode(path)}: it is {_kind(st.st_mode)}, not a regular file"
            )
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return open(fd, mode, encoding=encoding, errors=errors)
    except BaseException:
        os.close(fd)
        raise


# The compressed formats the corpus readers accept, recognised by their first bytes.
_MAGIC: tuple[tuple[bytes, Callable[[IO[bytes]], Any]], ...] = (
    (b"\x1f\x8b", lambda f: gzip.GzipFile(fileobj=f, mode="rb")),
    (b"BZh", lambda f: bz2.BZ2File(f, "rb")),
    (b"\xfd7zXZ\x00", lambda f: lzma.LZMAFile(f, "rb")),
)


@contextmanager
def open_decompressed(path: str) -> Iterator[tuple[IO[bytes], bool]]:
    """The regular file ``path`` as bytes, decompressed when its first bytes are gzip's,
    bzip2's or xz's (whatever its name); with whether it was compressed. Both the file and the
    decompressor are closed on exit."""
    with open_regular(path, "rb") as raw:
        head = raw.read(6)
        raw.seek(0)
        for magic, wrap in _MAGIC:
            if head.startswith(magic):
                with wrap(raw) as stream:
                    yield stream, True
                return
        yield raw, False
