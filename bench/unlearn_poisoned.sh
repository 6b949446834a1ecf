#!/usr/bin/env bash
# The poisoning scenarios of bench/RESULTS.md on W1 (cnn-s on Fashion-MNIST, 2 threads): for
# mislabeled:0.1 and backdoor:0.05, the original trained on the poisoned set, the retrained model,
# FT, NegGrad+, SalUn and IEU with their defaults, and IEU with α 0.5 and 1.
#   bench/unlearn_poisoned.sh [OUT_DIR]      (default unlearn-table; LETHE=path/to/lethe)
set -euo pipefail
cd "$(dirname "$0")/.."
lethe=${LETHE:-build/tools/lethe}
out=${1:-unlearn-table}
mkdir -p "$out"
w1=(--model cnn-s --epochs 4 --batch 128 --optimizer sgd --lr 0.05 --momentum 0.9 --weight-decay 5e-4
    --schedule cosine --seed 0 --threads 2)
for scenario in mislabeled:0.1 backdoor:0.05; do
  name=${scenario%%:*}
  split=$out/$name.split.json
  "$lethe" split --scenario "$scenario" --split-seed 0 --out "$split" > /dev/null
  echo "unlearn_poisoned: $name original and retrain" >&2
  "$lethe" train "${w1[@]}" --split "$split" --out "$out/$name-original.safetensors" --json > "$out/$name-original-train.json"
  "$lethe" unlearn --method retrain --split "$split" --from "$out/$name-original.safetensors" \
    --out "$out/$name-retrain.safetensors" --threads 2 --json > "$out/$name-retrain.json"
  for run in ft neggrad+ salun ieu "ieu-alpha0.5|--alpha 0.5" "ieu-alpha1|--alpha 1"; do
    label=${run%%|*}
    flags=()
    [[ $run == *"|"* ]] && read -r -a flags <<<"${run#*|}"
    echo "unlearn_poisoned: $name $label ${flags[*]}" >&2
    "$lethe" unlearn --method "${label%%-*}" "${flags[@]}" --split "$split" --from "$out/$name-original.safetensors" \
      --out "$out/$name-$label.safetensors" --retrained "$out/$name-retrain.safetensors" --threads 2 \
      --json > "$out/$name-$label.json"
  done
done
python3 - "$out" <<'PY' | tee "$out/poisoned.md"
import json, os, sys
out = sys.argv[1]
for name in ("mislabeled", "backdoor"):
    mislabeled = name == "mislabeled"
    print(f"\n**{name}** (in %; TA gain and average gap in points)\n")
    print("| method | FA | RA | TA | MIA | " + ("TA gain | avg gap |" if mislabeled else "ASR before | ASR after | avg gap |"))
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |" + ("" if mislabeled else " ---: |"))
    for label in ("retrain", "ft", "neggrad+", "salun", "ieu", "ieu-alpha0.5", "ieu-alpha1"):
        j = json.load(open(os.path.join(out, f"{name}-{label}.json")))
        x, c = j["metrics"], j["comparison"]
        row = " | ".join(f"{100 * x[k]:.2f}" for k in ("forget_accuracy", "retain_accuracy", "test_accuracy", "mia_efficacy"))
        if mislabeled:
            row += f" | {100 * c['test_accuracy_gain']:+.2f}"
        else:
            row += f" | {100 * c['attack_success_rate_before']:.2f} | {100 * x['attack_success_rate']:.2f}"
        gap = "—" if label == "retrain" else f"{100 * c['average_gap']:.2f}"
        print(f"| {label.replace('-alpha', ', α ')} | {row} | {gap} |")
PY
