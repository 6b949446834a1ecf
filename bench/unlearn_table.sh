#!/usr/bin/env bash
# The unlearning table of bench/RESULTS.md: on the WORKLOADS.md W1 workload (cnn-s on
# Fashion-MNIST, 2 threads), the original, the retrained model and every method on random:0.1 and
# class:0, each with FA, RA, TA, MIA, the average gap to retrain and its wall time.
#   bench/unlearn_table.sh [OUT_DIR]      (default unlearn-table; LETHE=path/to/lethe)
# Writes OUT_DIR/{original,<scenario>-<method>}.safetensors and .json, table.csv and table.md;
# an original already in OUT_DIR is reused.
set -euo pipefail
cd "$(dirname "$0")/.."
lethe=${LETHE:-build/tools/lethe}
out=${1:-unlearn-table}
mkdir -p "$out"
common=(--threads 2 --json)
w1=(--model cnn-s --epochs 4 --batch 128 --optimizer sgd --lr 0.05 --momentum 0.9 --weight-decay 5e-4
    --schedule cosine --seed 0)
if [[ ! -f $out/original.safetensors ]]; then
  echo "unlearn_table: training the original (W1)" >&2
  "$lethe" train "${w1[@]}" "${common[@]}" --out "$out/original.safetensors" > "$out/original.json"
fi
rm -f "$out/table.csv"
for scenario in random:0.1 class:0; do
  name=${scenario%%:*}
  split=$out/$name.split.json
  "$lethe" split --scenario "$scenario" --split-seed 0 --out "$split" > /dev/null
  echo "unlearn_table: $scenario retrain" >&2
  "$lethe" unlearn --method retrain --split "$split" --from "$out/original.safetensors" \
    --out "$out/$name-retrain.safetensors" --csv "$out/table.csv" "${common[@]}" > "$out/$name-retrain.json"
  "$lethe" eval --split "$split" --checkpoint "$out/original.safetensors" \
    --retrained "$out/$name-retrain.safetensors" "${common[@]}" > "$out/$name-original.json"
  for method in ft ga neggrad+ rl l1-sparse salun scrub ieu; do
    echo "unlearn_table: $scenario $method" >&2
    "$lethe" unlearn --method "$method" --split "$split" --from "$out/original.safetensors" \
      --out "$out/$name-$method.safetensors" --retrained "$out/$name-retrain.safetensors" \
      --csv "$out/table.csv" "${common[@]}" > "$out/$name-$method.json"
  done
done
python3 - "$out" <<'PY' | tee "$out/table.md"
import json, os, sys
out = sys.argv[1]
methods = ["original", "retrain", "ft", "ga", "neggrad+", "rl", "l1-sparse", "salun", "scrub", "ieu"]
for name, scenario in (("random", "random:0.1"), ("class", "class:0")):
    extra = " class TA |" if name == "class" else ""
    print(f"\n**{scenario}** (FA, RA, TA, MIA in %; gap in points)\n")
    print(f"| method | FA | RA | TA |{extra} MIA | avg gap | time (s) |")
    print("| --- | ---: | ---: | ---: |" + (" ---: |" if extra else "") + " ---: | ---: | ---: |")
    for m in methods:
        j = json.load(open(os.path.join(out, f"{name}-{m}.json")))
        x = j["metrics"]
        gap = j["comparison"].get("average_gap")
        cells = [100 * x["forget_accuracy"], 100 * x["retain_accuracy"], 100 * x["test_accuracy"]]
        if extra:
            cells.append(100 * x["forgotten_class_test_accuracy"])
        cells.append(100 * x["mia_efficacy"])
        row = " | ".join(f"{c:.2f}" for c in cells)
        gap_cell = "0" if m == "retrain" else f"{100 * gap:.2f}"
        time_cell = f"{j['method_seconds']:.1f}" if "method_seconds" in j else "—"
        print(f"| {m} | {row} | {gap_cell} | {time_cell} |")
PY
