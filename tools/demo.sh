#!/usr/bin/env bash
# The main job on the embedded dataset: make data → train (tools/train.py) → test
# (tools/test.py: COCO AP table, predictions drawn by mmdet's visualizer) → loss/mAP plot.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
CONFIG=${CONFIG:-configs/efficientdet_lite/efficientdet_lite0_demo_synthetic.py}
WORK_DIR=${WORK_DIR:-work_dirs/demo}
SEED=${SEED:-0}
start=$(date +%s)

if [ ! -f data/synthetic/annotations/instances_val.json ]; then
  echo "[demo] 1/4 making the embedded dataset under data/synthetic"
  "$PYTHON" tools/make_dataset.py --out data/synthetic
else
  echo "[demo] 1/4 dataset present: data/synthetic"
fi

echo "[demo] 2/4 training $CONFIG → $WORK_DIR (seed $SEED)"
rm -rf "$WORK_DIR"
"$PYTHON" tools/train.py "$CONFIG" --work-dir "$WORK_DIR" --seed "$SEED"

checkpoint=$(cat "$WORK_DIR/last_checkpoint")
echo "[demo] 3/4 testing $checkpoint (COCO metric; predictions drawn for the val images)"
"$PYTHON" tools/test.py "$CONFIG" "$checkpoint" --work-dir "$WORK_DIR/test" --show-dir vis \
  2>&1 | tee "$WORK_DIR/test.log"

echo "[demo] 4/4 plotting loss and mAP curves"
"$PYTHON" tools/plot_curves.py "$WORK_DIR" --out "$WORK_DIR/curves.png"

map=$(grep -o 'coco/bbox_mAP: [0-9.]*' "$WORK_DIR/test.log" | tail -n1 | cut -d' ' -f2)
vis=$(find "$WORK_DIR/test" -type d -name vis | head -n1)
echo "[demo] done in $(( ($(date +%s) - start) / 60 )) min $(( ($(date +%s) - start) % 60 )) s"
echo "[demo] val bbox mAP@[.5:.95] = $map"
echo "[demo] predictions drawn: $vis ($(ls "$vis" | wc -l) PNGs)"
echo "[demo] loss / mAP curves: $WORK_DIR/curves.png"
