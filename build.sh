#!/usr/bin/env bash
# Build the Lambda deployment package: dist/lambda.zip (or the path given as $1).
#
# The ZIP holds app.py, the jobqueue package (with its .sql files and the
# dashboard's files) and the runtime dependencies pinned in requirements.txt.
# The local stack (jobqueue/local/) and the command line (cli.py, __main__.py)
# stay out: nothing the function runs imports them. Every dependency must be a
# pure-Python wheel, so one ZIP serves both x86_64 and arm64 functions.
#
# The ZIP is reproducible: the same sources and pins give the same bytes
# (sorted entries, fixed timestamps and permissions). Timestamps come from
# SOURCE_DATE_EPOCH when it is set, else 1980-01-01, the earliest a ZIP holds.
#
# Needs only Python 3 with pip (or venv, to get pip); no zip tool. Set PYTHON
# to choose the interpreter.
set -euo pipefail

cd "$(dirname "$0")"
root=$(pwd)
out=${1:-dist/lambda.zip}
python=${PYTHON:-python3}

die() { echo "build.sh: $*" >&2; exit 1; }

command -v "$python" >/dev/null 2>&1 || die "$python not found (set PYTHON to a Python 3 interpreter)"
[ -f app.py ] || die "app.py is missing"
[ -f jobqueue/__init__.py ] || die "jobqueue/__init__.py is missing"
[ -f requirements.txt ] || die "requirements.txt is missing"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# pip: the interpreter's own, else one in a throwaway venv (some system
# Pythons ship venv but not pip). --target installs never touch the
# interpreter's site-packages, so neither choice changes the machine.
pip=("$python" -m pip)
if ! "${pip[@]}" --version >/dev/null 2>&1; then
  "$python" -m venv "$work/venv" >/dev/null 2>&1 \
    || die "$python has neither pip nor venv; install pip (e.g. the python3-pip package)"
  pip=("$work/venv/bin/python" -m pip)
fi

# Installing into a folder, not into the interpreter: pip's root warning is noise.
export PIP_ROOT_USER_ACTION=${PIP_ROOT_USER_ACTION:-ignore}

# Wheels for the Lambda runtime, not for this machine: CPython 3.12 on Linux.
# Only binary wheels, so no package's build step runs here.
echo "Installing runtime dependencies from requirements.txt ..."
"${pip[@]}" install \
  --quiet --disable-pip-version-check --no-input --no-warn-script-location \
  --target "$work/deps" \
  --no-compile \
  --only-binary=:all: \
  --implementation cp \
  --python-version 3.12 \
  --platform manylinux2014_x86_64 \
  --requirement requirements.txt \
  || die "pip could not install requirements.txt for CPython 3.12 on Linux"

"$python" - "$root" "$work/deps" "$out" <<'PY'
"""Check the dependencies, then write the ZIP deterministically."""

import os
import re
import sys
import time
import zipfile
from pathlib import Path

root, deps, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
if not out.is_absolute():
    out = root / out

ZIP_LIMIT = 50 * 1024 * 1024  # direct upload of a ZIP to Lambda
UNZIPPED_LIMIT = 250 * 1024 * 1024  # function code plus layers, unzipped

# Never shipped: bytecode (Lambda compiles on import; .pyc would tie the ZIP to
# one interpreter), caches, tests, and pip's install bookkeeping (RECORD and
# friends describe this machine's install, not the package).
SKIP_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", "tests", "test", ".git"}
SKIP_SUFFIXES = {".pyc", ".pyo"}
SKIP_NAMES = {".DS_Store", "RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}
SKIP_TOP = {"bin"}  # console scripts pip wrote for this machine
# Development tools, never imported by the function: the local stack and the command line.
NOT_SHIPPED = ("jobqueue/local/", "jobqueue/cli.py", "jobqueue/__main__.py")


def fail(message):
    sys.exit(f"build.sh: {message}")


def canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()


# --- the installed set must be exactly the pinned set, all pure Python --------
pins = {}
for number, line in enumerate((root / "requirements.txt").read_text().splitlines(), 1):
    line = line.split("#", 1)[0].strip()
    if not line:
        continue
    match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", line)
    if not match:
        fail(f"requirements.txt:{number}: {line!r} is not an exact pin (name==version)")
    pins[canonical(match[1])] = match[2]

installed = {}
for info in sorted(deps.glob("*.dist-info")):
    fields = {}
    for header in (info / "METADATA").read_text(encoding="utf-8").split("\n\n", 1)[0].splitlines():
        key, _, value = header.partition(": ")
        fields.setdefault(key, value.strip())
    name = canonical(fields["Name"])
    installed[name] = fields["Version"]
    tags = [line.split(": ", 1)[1] for line in (info / "WHEEL").read_text().splitlines() if line.startswith("Tag: ")]
    impure = [tag for tag in tags if not tag.endswith("-none-any")]
    if impure or not tags:
        fail(
            f"{fields['Name']} {fields['Version']} is not a pure-Python wheel ({', '.join(tags) or 'no tag'}); "
            "the ZIP must run on both x86_64 and arm64"
        )

unpinned = sorted(set(installed) - set(pins))
if unpinned:
    fail(f"requirements.txt does not pin {', '.join(unpinned)} (pulled in by another dependency); pin it")
for name, version in sorted(pins.items()):
    if name not in installed:
        fail(f"{name}=={version} from requirements.txt was not installed")
    if installed[name] != version:
        fail(f"{name}: requirements.txt pins {version} but {installed[name]} was installed")


# --- collect the files -----------------------------------------------------------
def walk(base, start):
    for path in sorted(start.rglob("*")):
        relative = path.relative_to(base)
        if path.is_dir() or path.name in SKIP_NAMES or path.suffix in SKIP_SUFFIXES:
            continue
        if any(part in SKIP_DIRS for part in relative.parts[:-1]) or relative.parts[0] in SKIP_TOP:
            continue
        if path.is_symlink() and not path.resolve().is_file():
            fail(f"{path} is a dangling symlink")
        yield relative.as_posix(), path


entries = {"app.py": root / "app.py"}
entries.update((name, path) for name, path in walk(root, root / "jobqueue") if not name.startswith(NOT_SHIPPED))
for name, path in walk(deps, deps):
    if name in entries or name.split("/", 1)[0] in ("app.py", "jobqueue"):
        fail(f"a dependency ships {name}, which clashes with the application's own files")
    entries[name] = path

if not any(name.startswith("jobqueue/store/sql/") and name.endswith(".sql") for name in entries):
    fail("no jobqueue/store/sql/*.sql files found")

# --- write it --------------------------------------------------------------------
epoch = int(os.environ.get("SOURCE_DATE_EPOCH") or 0)
stamp = time.gmtime(max(epoch, 315532800))[:6]  # 315532800 is 1980-01-01, the ZIP epoch

out.parent.mkdir(parents=True, exist_ok=True)
partial = out.with_name(out.name + ".partial")
unzipped = 0
with zipfile.ZipFile(partial, "w") as archive:
    for name in sorted(entries):
        data = entries[name].read_bytes()
        unzipped += len(data)
        info = zipfile.ZipInfo(name, date_time=stamp)
        info.create_system = 3  # Unix, so that the permissions below are honoured
        info.external_attr = 0o100644 << 16  # regular file, rw-r--r--: readable by Lambda's user
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, data, compresslevel=9)
partial.replace(out)

size = out.stat().st_size
print(f"Wrote {out.relative_to(root) if out.is_relative_to(root) else out}: {len(entries)} files")
print(f"  dependencies: {', '.join(f'{n}=={v}' for n, v in sorted(installed.items()))}")
print(f"  zipped   {size / 1024 / 1024:8.2f} MiB (Lambda limit for a direct upload: 50 MiB)")
print(f"  unzipped {unzipped / 1024 / 1024:8.2f} MiB (Lambda limit with layers: 250 MiB)")
if size > ZIP_LIMIT:
    fail(f"the ZIP is {size} bytes, over Lambda's {ZIP_LIMIT}-byte direct-upload limit")
if unzipped > UNZIPPED_LIMIT:
    fail(f"the unzipped code is {unzipped} bytes, over Lambda's {UNZIPPED_LIMIT}-byte limit")
PY
