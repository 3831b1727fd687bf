"""On-disk layout of a sharded checkpoint, written so that a crash at any moment leaves the
last complete checkpoint readable.

A checkpoint directory holds, for step ``t``::

    shard-00000-of-00004.step-000000000120.safetensors    # Embedding.save of shard 0's table
    shard-00000-of-00004.step-000000000120.optim.npz      # its optimizer's state_dict
    ...
    manifest.json                                         # written last: points at step 120

Each shard writes its own two files (every file through :func:`write_atomic`: a temporary file
in the same directory, fsync, rename, fsync of the directory). The driver writes the manifest
only after every shard has finished, so a crash in the middle leaves the previous manifest
pointing at the previous step's files, which are deleted only after the new manifest is in
place. The directory must be on storage that every node of the cluster sees (NFS, a shared
volume, ...): each shard actor writes and reads its files from the node it runs on.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Callable
from typing import IO, Any

import numpy as np

from candle_embed._errors import CandleEmbedFileNotFoundError, CandleEmbedValueError

__all__ = [
    "MANIFEST",
    "load_optimizer_state",
    "read_manifest",
    "remove_other_steps",
    "save_optimizer_state",
    "shard_files",
    "write_atomic",
    "write_manifest",
]

MANIFEST = "manifest.json"
FORMAT = "candle-embed-sharded"
VERSION = 1


def write_atomic(path: str, write: Callable[[IO[bytes]], None]) -> None:
    """Write ``path`` through ``write(file)`` so that readers see the old file or the whole
    new one, never a torn one, even across a power loss."""
    directory = os.path.dirname(os.path.abspath(path)) or "."
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def shard_files(directory: str, shard: int, num_shards: int, step: int) -> tuple[str, str]:
    """The (table, optimizer state) paths of one shard at one step."""
    stem = f"shard-{shard:05d}-of-{num_shards:05d}.step-{step:012d}"
    return (
        os.path.join(directory, stem + ".safetensors"),
        os.path.join(directory, stem + ".optim.npz"),
    )


_SHARD_FILE = re.compile(r"^shard-(\d{5})-of-(\d{5})\.step-(\d{12})\.(safetensors|optim\.npz)$")


def remove_other_steps(directory: str, shard: int, num_shards: int, keep_step: int) -> None:
    """Delete this shard's files of every step but ``keep_step`` (after a newer manifest)."""
    for name in os.listdir(directory):
        m = _SHARD_FILE.match(name)
        if m and int(m[1]) == shard and int(m[2]) == num_shards and int(m[3]) != keep_step:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(directory, name))


def save_optimizer_state(path: str, state: dict[str, Any] | None) -> None:
    """An optimizer's ``state_dict()`` (or None: no optimizer) as an ``.npz`` file."""
    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, Any] = {"kind": None}
    if state is not None:
        meta = {"kind": state["kind"], "step": list(state["step"]), "names": []}
        for i, table_state in enumerate(state["state"]):
            names = sorted(table_state)
            meta["names"].append(names)
            for name in names:
                arrays[f"{i}.{name}"] = np.asarray(table_state[name])
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)

    def write(f: IO[bytes]) -> None:
        np.savez(f, **arrays)  # type: ignore[arg-type]

    write_atomic(path, write)


def load_optimizer_state(path: str) -> dict[str, Any] | None:
    """Read a file written by :func:`save_optimizer_state`."""
    with np.load(path, allow_pickle=False) as f:
        meta = json.loads(bytes(f["meta"]).decode())
        if meta["kind"] is None:
            return None
        state = [
            {name: np.array(f[f"{i}.{name}"]) for name in names}
            for i, names in enumerate(meta["names"])
        ]
    return {"kind": meta["kind"], "step": meta["step"], "state": state}


def write_manifest(directory: str, manifest: dict[str, Any]) -> None:
    """Write ``manifest.json`` (atomically): the step and the table's configuration."""
    body = {"format": FORMAT, "version": VERSION, **manifest}
    text = json.dumps(body, indent=2, sort_keys=True).encode()

    def write(f: IO[bytes]) -> None:
        f.write(text)

    write_atomic(os.path.join(directory, MANIFEST), write)


def read_manifest(directory: str) -> dict[str, Any]:
    """Read and check ``manifest.json`` (FileNotFoundError when there is none; ValueError
    when it is not a sharded checkpoint of a version this code reads)."""
    path = os.path.join(directory, MANIFEST)
    if not os.path.isfile(path):
        raise CandleEmbedFileNotFoundError(
            f"no sharded checkpoint in {directory}: {MANIFEST} missing"
        )
    with open(path, "rb") as f:
        try:
            body = json.loads(f.read())
        except ValueError as e:
            raise CandleEmbedValueError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise CandleEmbedValueError(f"{path} is not a candle-embed sharded checkpoint manifest")
    if body.get("version") != VERSION:
        raise CandleEmbedValueError(
            f"{path} has version {body.get('version')}, this code reads {VERSION}"
        )
    return body
