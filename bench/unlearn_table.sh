#!/usr/bin/env bash
# The unlearning table of bench/RESULTS.md: on the WORKLOADS.md W1 workload (cnn-s on
# Fashion-MNIST, 2 threads), the original, the retrained model and every method with its defaults
# on random:0.1 (split seeds 0 and 1: the retrained model differs between them) and class:0, each
# with FA, RA, TA, MIA, the average gap to retrain and its wall time; plus IEU with the settings
# tuned in bench/RESULTS.md (rows "ieu, …").
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
# block name, scenario, split seed, extra IEU rows ("label|flags")
blocks=("random random:0.1 0 ieu-sigma3e-3|--sigma 3e-3"
        "random-seed1 random:0.1 1 ieu-sigma3e-3|--sigma 3e-3"
        "class class:0 0 ieu-decay0.01|--ieu-decay 0.01")
for block in "${blocks[@]}"; do
  read -r name scenario seed tuned <<<"$block"
  split=$out/$name.split.json
  "$lethe" split --scenario "$scenario" --split-seed "$seed" --out "$split" > /dev/null
  echo "unlearn_table: $name retrain" >&2
  "$lethe" unlearn --method retrain --split "$split" --from "$out/original.safetensors" \
    --out "$out/$name-retrain.safetensors" --csv "$out/table.csv" "${common[@]}" > "$out/$name-retrain.json"
  "$lethe" eval --split "$split" --checkpoint "$out/original.safetensors" \
    --retrained "$out/$name-retrain.safetensors" "${common[@]}" > "$out/$name-original.json"
  runs=(ft ga neggrad+ rl l1-sparse salun scrub ieu "$tuned")
  for run in "${runs[@]}"; do
    label=${run%%|*}
    flags=()
    [[ $run == *"|"* ]] && read -r -a flags <<<"${run#*|}"
    method=${label%%-*}
    [[ $label == ieu-* ]] || method=$label
    echo "unlearn_table: $name $label ${flags[*]}" >&2
    "$lethe" unlearn --method "$method" "${flags[@]}" --split "$split" --from "$out/original.safetensors" \
      --out "$out/$name-$label.safetensors" --retrained "$out/$name-retrain.safetensors" \
      --csv "$out/table.csv" "${common[@]}" > "$out/$name-$label.json"
  done
done
python3 - "$out" <<'PY' | tee "$out/table.md"
import json, os, sys
out = sys.argv[1]
blocks = (("random", "random:0.1, split seed 0", "ieu-sigma3e-3", "ieu, σ 3e-3"),
          ("random-seed1", "random:0.1, split seed 1", "ieu-sigma3e-3", "ieu, σ 3e-3"),
          ("class", "class:0", "ieu-decay0.01", "ieu, λ 0.01"))
for name, title, tuned, tuned_label in blocks:
    rows = [("original", "original"), ("retrain", "retrain")] + [(m, m) for m in
            ["ft", "ga", "neggrad+", "rl", "l1-sparse", "salun", "scrub", "ieu"]] + [(tuned, tuned_label)]
    extra = name == "class"
    print(f"\n**{title}** (FA, RA, TA, MIA in %; average gap to retrain in points)\n")
    print("| method | FA | RA | TA |" + (" class TA |" if extra else "") + " MIA | avg gap | time (s) |")
    print("| --- | ---: | ---: | ---: |" + (" ---: |" if extra else "") + " ---: | ---: | ---: |")
    for file, label in rows:
        j = json.load(open(os.path.join(out, f"{name}-{file}.json")))
        x = j["metrics"]
        cells = [x["forget_accuracy"], x["retain_accuracy"], x["test_accuracy"]]
        if extra:
            cells.append(x["forgotten_class_test_accuracy"])
        cells.append(x["mia_efficacy"])
        gap = "—" if file == "retrain" else f"{100 * j['comparison']['average_gap']:.2f}"
        time = f"{j['method_seconds']:.1f}" if "method_seconds" in j else "—"
        print(f"| {label} | " + " | ".join(f"{100 * c:.2f}" for c in cells) + f" | {gap} | {time} |")
PY
