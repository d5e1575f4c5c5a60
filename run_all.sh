#!/usr/bin/env bash
# Run the RepBench sweeps on this machine and render the report.
#
#   ./run_all.sh                       # GPU: paper then full presets; no GPU: the smoke preset
#   ./run_all.sh --preset paper,blog   # chosen presets (repeatable or comma-separated)
#   ./run_all.sh --out /data/results --skip-report
#
# Installs only what is missing and never touches an installed torch. Re-running resumes: finished cells
# of the same preset are not measured again.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: ./run_all.sh [--preset NAME[,NAME...]]... [--out DIR] [--skip-report] [-h|--help]

  --preset NAME   sweep preset(s) to run: smoke, paper, full, blog (repeatable or comma-separated).
                  Default: paper then full when a CUDA GPU is visible, otherwise smoke.
  --out DIR       results root (default: $REPBENCH_RESULTS, else results/ of this checkout);
                  rows land in DIR/<hardware>/<run_id>/
  --skip-report   do not render the report at the end
EOF
}

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

PRESETS=()
OUT="${REPBENCH_RESULTS:-results}"
SKIP_REPORT=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --preset) [[ $# -ge 2 ]] || { echo "run_all.sh: --preset needs a name" >&2; exit 2; }
                  IFS=',' read -r -a names <<< "$2"; PRESETS+=("${names[@]}"); shift 2 ;;
        --preset=*) IFS=',' read -r -a names <<< "${1#*=}"; PRESETS+=("${names[@]}"); shift ;;
        --out) [[ $# -ge 2 ]] || { echo "run_all.sh: --out needs a folder" >&2; exit 2; }
               OUT="$2"; shift 2 ;;
        --out=*) OUT="${1#*=}"; shift ;;
        --skip-report) SKIP_REPORT=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "run_all.sh: unknown option '$1'; valid: --preset, --out, --skip-report, --help" >&2; exit 2 ;;
    esac
done

PY="${PYTHON:-python3}"
command -v "$PY" >/dev/null 2>&1 || { echo "run_all.sh: '$PY' not found; install Python >= 3.10" >&2; exit 1; }
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' \
    || { echo "run_all.sh: Python >= 3.10 needed; found $("$PY" --version 2>&1)" >&2; exit 1; }

# Module name -> pip requirement, for the non-torch dependencies of pyproject.toml.
missing_deps() {
    "$PY" - <<'EOF'
import importlib.util, sys
deps = {"pandas": "pandas>=2.0", "pyarrow": "pyarrow>=14", "matplotlib": "matplotlib>=3.7",
        "pynvml": "nvidia-ml-py>=12.535"}
if sys.version_info < (3, 11):
    deps["tomli"] = "tomli>=2.0"
print(" ".join(req for mod, req in deps.items() if importlib.util.find_spec(mod) is None))
EOF
}

setup() {
    local missing
    missing="$(missing_deps)"
    if "$PY" -c 'import torch' >/dev/null 2>&1; then
        if [[ -n "$missing" ]]; then
            echo "== installing missing dependencies (the installed torch is kept): $missing"
            "$PY" -m pip install $missing
            "$PY" -m pip install --no-deps -e . || echo "   (editable install failed; running from $ROOT)"
        fi
    else
        echo "== torch is not installed: trying torch==2.13.0 (a local CPU build on CI-like machines),"
        echo "   else the newest torch from PyPI. For another build, install it first and re-run:"
        echo "   an existing torch is never replaced (see https://pytorch.org/get-started/locally/)."
        "$PY" -m pip install torch==2.13.0 || "$PY" -m pip install torch
        "$PY" -m pip install -e .
    fi
    "$PY" -c 'import bench, torch, pandas, pyarrow' \
        || { echo "run_all.sh: dependencies still missing after install" >&2; exit 1; }
}

setup
echo "== environment"
"$PY" -m bench env || echo "   (bench env reported problems, see above; continuing)"

if [[ ${#PRESETS[@]} -eq 0 ]]; then
    if "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
        PRESETS=(paper full)
    else
        echo "no GPU found: running the small CPU sweep"
        PRESETS=(smoke)
    fi
fi

RUN_DIRS=()
LOG="$(mktemp)"
trap 'rm -f "$LOG"' EXIT
for preset in "${PRESETS[@]}"; do
    echo "== sweep: $preset"
    "$PY" -m bench run --preset "$preset" --out "$OUT" | tee "$LOG"
    run_dir="$(sed -n 's/^results: //p' "$LOG" | tail -n 1)"
    [[ -n "$run_dir" ]] && RUN_DIRS+=("$run_dir")
done

if [[ $SKIP_REPORT -eq 0 ]]; then
    if "$PY" -c 'import bench.report.command' >/dev/null 2>&1; then
        echo "== report"
        "$PY" -m bench report "${RUN_DIRS[@]}"
    else
        echo "== report skipped: bench.report.command is not available"
    fi
fi
echo "== done: ${RUN_DIRS[*]}"
