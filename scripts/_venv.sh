# Sourced by scripts/up and scripts/test: make sure the project's virtualenv exists and is
# up to date with pyproject.toml and constraints.txt (the exact versions: scripts/lock writes
# it), then put it first on PATH. Needs only Python >= 3.11.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${CANADUCK_VENV:-$ROOT/.venv}
PYTHON=${PYTHON:-python3}

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "canaduck needs Python >= 3.11 (found: $("$PYTHON" --version 2>&1))" >&2
  exit 1
fi

stamp="$VENV/.canaduck-installed"
want=$(cat "$ROOT/pyproject.toml" "$ROOT/constraints.txt" | "$PYTHON" -c 'import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())')
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "canaduck: installing into $VENV (once; again only when pyproject.toml or constraints.txt change)" >&2
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  log="$VENV/install.log"
  if ! { "$VENV/bin/python" -m pip install --disable-pip-version-check --upgrade pip &&
         "$VENV/bin/python" -m pip install --disable-pip-version-check -c "$ROOT/constraints.txt" -e "$ROOT[dev]"; } >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    echo "canaduck: install failed; the whole log is $log" >&2
    exit 1
  fi
  echo "$want" >"$stamp"
fi
export PATH="$VENV/bin:$PATH"
export VIRTUAL_ENV="$VENV"
cd "$ROOT"
