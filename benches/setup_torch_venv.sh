#!/usr/bin/env bash
# A CPU-usable torch for the peer benchmarks, in a venv of its own (never a dependency).
#
# PyPI's Linux torch wheel is built for CUDA and links ~14 CUDA libraries (cudart, cublas, cudnn,
# nccl, ...), which `pip install torch` pulls as multi-GB nvidia-* wheels. Instead we install the
# torch wheel alone (--no-deps, ~540 MB download) plus its small pure-Python deps, and satisfy the
# CUDA libraries' sonames with tiny stub libraries (every symbol torch imports from them, with
# the right symbol versions, as a function returning 0). CPU ops work; nothing CUDA does: never
# call torch.cuda.* in this venv.
#
#   bash benches/setup_torch_venv.sh [VENV]          # default VENV=/work/bench-venv
#   LD_LIBRARY_PATH=VENV/cudastub PYTHONPATH=python VENV/bin/python benches/bench_lookup.py
set -euo pipefail
VENV=${1:-/work/bench-venv}
PY=${PYTHON:-python3}

[ -x "$VENV/bin/python" ] || "$PY" -m venv --system-site-packages "$VENV"
"$VENV/bin/pip" install -q --no-deps torch
"$VENV/bin/pip" install -q filelock typing-extensions sympy networkx jinja2 fsspec

TL=$("$VENV/bin/python" - <<'EOF'
import importlib.util, pathlib
spec = importlib.util.find_spec("torch")
print(pathlib.Path(spec.origin).parent / "lib")
EOF
)
STUB="$VENV/cudastub"
mkdir -p "$STUB"
cd "$STUB"
for f in "$TL"/*.so "$TL"/../_C*.so; do
    ldd "$f" | awk '/not found/ {print $1}'
done | sort -u >sonames.txt
for f in "$TL"/*.so "$TL"/../_C*.so; do
    nm -D --undefined-only --with-symbol-versions "$f" | awk '{print $2}'
done | sort -u >undef.txt
# Everything torch's own libraries and the system libraries already define must not be stubbed.
{
    for f in "$TL"/*.so; do nm -D --defined-only "$f" | awk '{print $3}'; done
    for f in $(ldd "$TL/libtorch_cpu.so" | awk '/=>/ && !/not found/ {print $3}'); do
        nm -D --defined-only "$f" | awk '{print $3}'
    done
} | sed 's/@.*//' | sort -u >defined.txt

"$VENV/bin/python" - <<'EOF'
import collections, re
sysv = re.compile(r"^(GLIBC|GLIBCXX|CXXABI|GCC|OMP|GOMP|GFORTRAN)")
defined = set(open("defined.txt").read().split())
nodes = collections.OrderedDict()
unversioned = set()
for u in open("undef.txt").read().split():
    if "@" in u:
        sym, ver = re.split(r"@+", u, maxsplit=1)
        if not sysv.match(ver):
            nodes.setdefault(ver, set()).add(sym)
    elif u not in defined:
        unversioned.add(u)
versioned = set().union(*nodes.values()) if nodes else set()
unversioned -= versioned
with open("stub.c", "w") as f:
    for s in sorted(versioned | unversioned):
        f.write(f"long {s}(void) {{ return 0; }}\n")
with open("stub.map", "w") as f:
    for ver, syms in nodes.items():
        f.write(ver + " { global:\n" + "".join(f"  {s};\n" for s in sorted(syms)) + "};\n")
    f.write("STUB { global:\n" + "".join(f"  {s};\n" for s in sorted(unversioned)))
    f.write("local: *; };\n")
EOF
gcc -c -fPIC -O0 stub.c -o stub.o
while read -r so; do
    gcc -shared stub.o -o "$so" -Wl,-soname,"$so" -Wl,--version-script,stub.map
done <sonames.txt
LD_LIBRARY_PATH="$STUB" "$VENV/bin/python" -c '
import torch, torch.nn.functional as F
w = torch.arange(12.0).reshape(4, 3)
assert F.embedding(torch.tensor([3, 0]), w).tolist() == [[9.0, 10.0, 11.0], [0.0, 1.0, 2.0]]
print("torch", torch.__version__, "works on CPU; use LD_LIBRARY_PATH='"$STUB"'")'
