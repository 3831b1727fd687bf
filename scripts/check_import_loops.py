"""Import loops in a Rust crate (ARCHITECTURE.md: the core's modules are layered).

Builds the import graph of a crate's source folder (every `crate::`/`super::`/`self::` path, in
`use` lines and inline, mapped to the file that defines it) and reports its cycles (strongly
connected components) at two granularities: files (a parent `mod.rs` and its own children count
as one unit, since a `mod` declaration is not an import) and top-level modules (the first path
segment). Exits 1 when there is a cycle.

Usage: python3 scripts/check_import_loops.py [SRC_FOLDER ...]   (default: src)
"""

from __future__ import annotations

import os
import re
import sys

Module = tuple[str, ...]


def crate_files(root: str) -> dict[Module, str]:
    """Each module path (`("optim", "state")`) -> its file; `mod.rs`/`lib.rs` name the folder."""
    files: dict[Module, str] = {}
    for folder, _, names in os.walk(root):
        for name in names:
            if name.endswith(".rs"):
                path = os.path.join(folder, name)
                parts = os.path.relpath(path, root)[:-3].split(os.sep)
                if parts[-1] in ("mod", "lib"):
                    parts = parts[:-1]
                files[tuple(parts)] = path
    return files


def root_reexports(root: str) -> dict[str, str]:
    """Names the crate root re-exports (`pub use embedding::{Embedding, ..}`) -> their module."""
    lib = os.path.join(root, "lib.rs")
    if not os.path.exists(lib):
        return {}
    found: dict[str, str] = {}
    for m in re.finditer(r"use\s+(\w+)::\{?([^;]*?)\}?;", open(lib).read()):
        for name in re.split(r"[,\s]+", m.group(2)):
            if name:
                found[name.split(" as ")[-1]] = m.group(1)
    return found


def expand_braces(stmt: str) -> list[str]:
    """`a::{b, c::{d, e}}` -> `a::b`, `a::c::d`, `a::c::e` (`self` names the head)."""
    m = re.match(r"^(.*?)::\{(.*)\}$", stmt)
    if not m:
        return [stmt]
    head, body = m.groups()
    depth, current, items = 0, "", []
    for ch in body:
        if ch == "," and depth == 0:
            items.append(current)
            current = ""
            continue
        depth += (ch == "{") - (ch == "}")
        current += ch
    if current:
        items.append(current)
    return [
        head if leaf == "self" else f"{head}::{leaf}"
        for item in items
        for leaf in expand_braces(item)
    ]


def resolve(
    module: Module, path: str, files: dict[Module, str], reexports: dict[str, str]
) -> Module | None:
    """The file a `crate::`/`super::`/`self::` path lands in (the longest module prefix)."""
    parts = path.split("::")
    if parts[0] == "crate":
        current: list[str] = []
        parts = parts[1:]
        top_level = {key[0] for key in files if key}
        if parts and parts[0] not in top_level and parts[0] in reexports:
            parts = [reexports[parts[0]], *parts]
    elif parts[0] in ("super", "self"):
        current = list(module)
        while parts and parts[0] in ("super", "self"):
            if parts[0] == "super":
                current = current[:-1]
            parts = parts[1:]
    else:
        return None
    best = tuple(current)
    for part in parts:
        if tuple([*current, part]) not in files:
            break
        current.append(part)
        best = tuple(current)
    return best


def import_edges(files: dict[Module, str], reexports: dict[str, str]) -> dict[Module, set[Module]]:
    edges: dict[Module, set[Module]] = {}
    for module, path in files.items():
        source = re.sub(r"//[^\n]*", "", open(path).read())
        paths: list[str] = []
        for m in re.finditer(r"\buse\s+((?:crate|super|self)::[^;]*);", source, re.S):
            paths += expand_braces(re.sub(r"\s+", "", m.group(1)))
        paths += [m.group(1) for m in re.finditer(r"\b((?:crate|super)(?:::\w+)+)", source)]
        targets = {resolve(module, p, files, reexports) for p in paths}
        edges[module] = {t for t in targets if t is not None and t != module}
    return edges


def cycles(nodes: list[str] | list[Module], adjacency: dict) -> list[list]:
    """Strongly connected components with more than one node (Tarjan, iterative)."""
    index: dict = {}
    low: dict = {}
    stack: list = []
    on_stack: set = set()
    found: list[list] = []
    counter = 0
    for start in nodes:
        if start in index:
            continue
        work = [(start, iter(sorted(adjacency.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            advanced = False
            for nxt in successors:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(adjacency.get(nxt, ())))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(component)
    return found


def check(root: str) -> bool:
    files = crate_files(root)
    edges = import_edges(files, root_reexports(root))

    def nested(a: Module, b: Module) -> bool:
        return a[: len(b)] == b or b[: len(a)] == a

    file_adj = {a: {b for b in bs if not nested(a, b)} for a, bs in edges.items()}
    top_adj: dict[str, set[str]] = {}
    for a, bs in edges.items():
        for b in bs:
            if a and b and b[0] != a[0]:
                top_adj.setdefault(a[0], set()).add(b[0])
    file_loops = cycles(sorted(files), file_adj)
    top_loops = cycles(sorted({m[0] for m in files if m}), top_adj)
    print(f"{root}: {len(files)} files, {sum(map(len, edges.values()))} import edges")
    for loop in file_loops:
        print("  file loop:", " -> ".join("::".join(m) for m in sorted(loop)))
    for loop in top_loops:
        print("  module loop:", " -> ".join(sorted(loop)))
    if not file_loops and not top_loops:
        print("  no import loops")
    return not file_loops and not top_loops


if __name__ == "__main__":
    roots = sys.argv[1:] or ["src"]
    sys.exit(0 if all([check(r) for r in roots]) else 1)
