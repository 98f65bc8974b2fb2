#!/usr/bin/env bash
# The main job, from nothing: install what is missing, build, convert the three models, embed the
# bundled sample image and "Hello, world!", and print the results.
#
# Pretrained weights are used when found locally, random weights (with a notice) otherwise:
#   ResNet50:   $TERN_RESNET50 (a .pth), else ~/.cache/torch/hub/checkpoints/resnet50-*.pth
#   ViT-B/16:   $TERN_VIT_B_16 (a .pth), else ~/.cache/torch/hub/checkpoints/vit_b_16-*.pth
#   DistilBERT: $TERN_DISTILBERT (a Hugging Face model directory), else the HF cache's
#               models--distilbert-base-cased snapshot
# Usage: bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh tern_cli tern_python
BUILD_DIR=${TERN_BUILD_DIR:-build}
TERN="$BUILD_DIR/tern"
PY=/usr/bin/python3
OUT=out
mkdir -p "$OUT"

"$TERN" --version
echo

first_match() { for f in "$@"; do [ -e "$f" ] && { echo "$f"; return; }; done; }

# convert ARCH OUTFILE SOURCE-OR-EMPTY WHAT
convert() {
  local arch=$1 out=$2 src=$3 what=$4
  if [ -n "$src" ]; then
    echo "== $arch: converting pretrained weights from $src"
    $PY weights_tools/export.py "$arch" "$src" -o "$out"
  elif [ -f "$out" ] && grep -q random-init <(head -c 65536 "$out" 2>/dev/null); then
    echo "== $arch: using $out (random weights, converted earlier)"
  else
    echo "== $arch: NOTICE: no pretrained $what found locally; converting RANDOM weights (seed 0)."
    echo "   The vectors below show the pipeline works; they carry no meaning."
    $PY weights_tools/export.py "$arch" --random-init --seed 0 -o "$out"
  fi
}

hub=${TORCH_HOME:-$HOME/.cache/torch}/hub/checkpoints
hf=${HF_HOME:-$HOME/.cache/huggingface}/hub/models--distilbert-base-cased/snapshots
convert resnet50 "$OUT/resnet50.tern" "${TERN_RESNET50:-$(first_match "$hub"/resnet50-*.pth)}" "ResNet50 checkpoint"
convert distilbert "$OUT/distilbert.tern" "${TERN_DISTILBERT:-$(first_match "$hf"/*)}" "distilbert-base-cased directory"
convert vit_b_16 "$OUT/vit_b_16.tern" "${TERN_VIT_B_16:-$(first_match "$hub"/vit_b_16-*.pth)}" "ViT-B/16 checkpoint"
echo

summary() {  # summary NPY LABEL
  $PY - "$1" "$2" <<'PYEOF'
import sys, numpy as np
a = np.load(sys.argv[1])
flat = a.reshape(-1, a.shape[-1])
print(f"{sys.argv[2]}: shape {list(a.shape)}, first values {np.array2string(flat[0, :6], precision=4)}, "
      f"L2 norm of the first vector {np.linalg.norm(flat[0]):.4f}")
PYEOF
}

"$TERN" embed "$OUT/resnet50.tern" data/images/motorcycle.jpg -o "$OUT/motorcycle-resnet50.npy"
summary "$OUT/motorcycle-resnet50.npy" "ResNet50   data/images/motorcycle.jpg"
"$TERN" embed "$OUT/vit_b_16.tern" data/images/motorcycle.jpg -o "$OUT/motorcycle-vit_b_16.npy"
summary "$OUT/motorcycle-vit_b_16.npy" "ViT-B/16   data/images/motorcycle.jpg"
"$TERN" tokenize "$OUT/distilbert.tern" --text "Hello, world!"
"$TERN" embed "$OUT/distilbert.tern" --text "Hello, world!" -o "$OUT/hello-distilbert.npy"
summary "$OUT/hello-distilbert.npy" "DistilBERT \"Hello, world!\""
echo
echo "== the same through Python (import tern)"
$PY - "$OUT" <<'PYEOF'
import sys
import numpy as np
import tern
out = sys.argv[1]
for arch, label in (("resnet50", "ResNet50  "), ("vit_b_16", "ViT-B/16  ")):
    v = tern.load(f"{out}/{arch}.tern").embed_images("data/images/motorcycle.jpg")
    same = np.array_equal(v, np.load(f"{out}/motorcycle-{arch}.npy")[0])
    print(f"{label} tern.Model.embed_images: shape {list(v.shape)}, first values "
          f"{np.array2string(v[:6], precision=4)}, same as tern embed: {same}")
m = tern.load(f"{out}/distilbert.tern")
e = m.embed_texts("Hello, world!")
same = np.array_equal(e, np.load(f"{out}/hello-distilbert.npy"))
print(f"DistilBERT tern.Model.embed_texts(\"Hello, world!\"): shape {list(e.shape)}, first values "
      f"{np.array2string(e[0, :6], precision=4)}, same as tern embed: {same}")
print(f"DistilBERT tern.Model.tokenize: {m.tokenize('Hello, world!')}; "
      f"encode (mean pooled): shape {list(m.encode('Hello, world!').shape)}")
PYEOF
echo
echo "Outputs are in $OUT/. Try: $TERN embed $OUT/distilbert.tern --text \"Hello, world!\" --pooling mean"
