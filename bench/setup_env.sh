#!/usr/bin/env bash
# Create the benchmark-only virtualenv `.bench-venv` at the repository root.
#
# Why a separate venv: the PgQueuer baseline needs pgqueuer + asyncpg, which
# are not dependencies of jobqueue and must never end up in the Lambda bundle
# or the test environment. bench_queue.py runs pgqueuer_baseline.py with this
# venv's interpreter as a subprocess.
#
# Idempotent: re-running only (re)installs what is missing or at another
# version. Override the interpreter with PYTHON=/path/to/python3.11.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.bench-venv"
PYTHON="${PYTHON:-python3}"

# Pinned to the release the baseline figures were measured with.
PGQUEUER_VERSION="1.6.0"
ASYNCPG_VERSION="0.32.0"

if [ ! -x "$VENV/bin/python" ]; then
    echo "setup_env: creating $VENV" >&2
    "$PYTHON" -m venv "$VENV"
fi

PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)

# Runtime requirements of the jobqueue package (the bench imports it for
# "ours" and uses pg8000 for the raw-SQL baseline).
if [ -f "$ROOT/requirements.txt" ]; then
    "${PIP[@]}" install -r "$ROOT/requirements.txt"
else
    "${PIP[@]}" install pg8000 scramp python-dateutil asn1crypto
fi

"${PIP[@]}" install "pgqueuer==$PGQUEUER_VERSION" "asyncpg==$ASYNCPG_VERSION"

"$VENV/bin/python" - <<'PY'
import importlib.metadata as md

for name in ("pgqueuer", "asyncpg", "pg8000"):
    print(f"setup_env: {name} {md.version(name)}")
PY
