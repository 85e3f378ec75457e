# Sourced by scripts/test, scripts/demo, scripts/check and scripts/bench.
# Creates .venv with Python 3.11 on first use and reinstalls when pyproject.toml changes,
# so that a fresh clone needs nothing but Python 3.11 and network access to PyPI.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV_DIR:-$ROOT/.venv}"
PY="$(command -v python3.11 || command -v python3)"
stamp_now="$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)"
stamp_file="$VENV/.waldstadt-stamp"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp_file" 2>/dev/null)" != "$stamp_now" ]; then
    echo "[waldstadt] preparing the virtual environment in $VENV (a minute or two the first time)" >&2
    "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip >&2
    echo "[waldstadt] installing Waldstadt and its dependencies (pip)" >&2
    "$VENV/bin/python" -m pip install -q -e "$ROOT[dev]" >&2
    echo "[waldstadt] virtual environment ready" >&2
    echo "$stamp_now" > "$stamp_file"
fi
export PATH="$VENV/bin:$PATH"
cd "$ROOT"
