#!/usr/bin/env bash
# Creates/refreshes .venv with the pinned stack of requirements.txt and installs this package
# in editable mode. Called by `make env` (and so by `make test` / `make demo`); make skips it
# when .venv/.installed is newer than requirements.txt and setup.cfg.
#
# mmcv 2.1.0 has no wheel on PyPI: when PIP_FIND_LINKS names a folder holding
# mmcv-2.1.0-cp311-*.whl (CI: ../shared/wheels) pip takes it; otherwise it is compiled from the
# sdist with MMCV_WITH_OPS=1 (docs/en/results.md says how long).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
"$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), "python 3.11 is required, got " + sys.version' 

log() { printf '[env] %s\n' "$*"; }
req() { grep -E "^$1([=<>!~ ]|$)" requirements.txt | head -n1; }

if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV with $("$PYTHON" --version)"
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
export PIP_PROGRESS_BAR=off

log "step 1/4: build tools, torch, numpy"
"${PIP[@]}" install -q --upgrade pip
"${PIP[@]}" install -q "$(req setuptools)" wheel ninja "$(req torch)" "$(req 'numpy')"

log "step 2/4: mmcv 2.1.0 with compiled ops"
if "$VENV/bin/python" -c 'import mmcv, mmcv.ops; assert mmcv.__version__ == "2.1.0"' 2>/dev/null; then
  log "mmcv 2.1.0 with ops already installed"
else
  wheel=""
  for d in ${PIP_FIND_LINKS:-}; do
    for w in "$d"/mmcv-2.1.0-cp311-*.whl; do [ -f "$w" ] && wheel=$w; done
  done
  if [ -n "$wheel" ]; then
    log "using prebuilt wheel $wheel"
  else
    log "no prebuilt mmcv wheel (set PIP_FIND_LINKS to a folder holding one);"
    log "compiling mmcv 2.1.0 from source: this takes long (docs/en/results.md)"
  fi
  start=$(date +%s)
  MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} "${PIP[@]}" install -q --no-build-isolation \
    "$(req mmcv)" "$(req 'numpy')" "$(req opencv-python)" > "$VENV/mmcv-install.log" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 30
    kill -0 "$pid" 2>/dev/null && log "mmcv still installing: $(( ($(date +%s) - start) / 60 )) min elapsed (log: $VENV/mmcv-install.log)"
  done
  if ! wait "$pid"; then tail -n 40 "$VENV/mmcv-install.log"; log "mmcv install failed"; exit 1; fi
  log "mmcv installed in $(( $(date +%s) - start )) s"
fi

log "step 3/4: mmengine, mmdet, pycocotools and the rest of requirements.txt"
"${PIP[@]}" install -q --no-build-isolation -r requirements.txt

log "step 4/4: this package (editable)"
"${PIP[@]}" install -q --no-build-isolation --no-deps -e .
"$VENV/bin/python" -c 'import mmcv.ops, mmdet, mmdet_efficientdet; print("[env] ok: torch", __import__("torch").__version__, "mmcv", mmcv.__version__, "mmdet", mmdet.__version__)'
touch "$VENV/.installed"
