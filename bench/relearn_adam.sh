#!/usr/bin/env bash
# Adam relearning of a finished study's models: the `ain` preset (Chundawat et al.'s anamnesis
# index: Adam at 1e-3, batches of 256, until 95% of the original's accuracy; class-wise on the
# forgotten class's test images). Tran & Woo name Adam relearning as RCD's weak spot: this puts its
# figures next to the study's own SGD RCD, per scenario and model, over the study's replicates.
#   bench/relearn_adam.sh STUDY_DIR        (LETHE=path/to/lethe; the study from `lethe run`)
# Writes STUDY_DIR/replicate-R/SCENARIO/relearn-ain.json and prints the table (median steps over
# replicates, "≥" where the median is a bound, censored/n; AIN = median ÷ the retrained model's).
set -euo pipefail
cd "$(dirname "$0")/.."
lethe=${LETHE:-build/tools/lethe}
study=${1:?usage: bench/relearn_adam.sh STUDY_DIR}
[[ -f $study/results.json ]] || { echo "relearn_adam: no $study/results.json (run lethe run first)" >&2; exit 2; }
for rep in "$study"/replicate-*; do
  for dir in "$rep"/*/; do
    dir=${dir%/}
    [[ -f $dir/split.json ]] || continue
    models=()
    for m in "$dir"/*.safetensors; do
      [[ $(basename "$m") == retrain.safetensors ]] || models+=("$m")
    done
    echo "relearn_adam: $dir (${#models[@]} models)" >&2
    "$lethe" relearn --preset ain --threads 2 --split "$dir/split.json" --original "$rep/original.safetensors" \
      --retrained "$dir/retrain.safetensors" --from "${models[@]}" --json > "$dir/relearn-ain.json"
  done
done
python3 - "$study" <<'PY'
import glob, json, os, statistics, sys

study = sys.argv[1]
results = json.load(open(os.path.join(study, "results.json")))

def median(values):
    """Median steps over replicates with censored runs ranked at their value: (value, is_bound)."""
    ranked = sorted(values, key=lambda v: (v[0], v[1]))
    n = len(ranked)
    mid = ranked[(n - 1) // 2 : n // 2 + 1]
    return statistics.mean(v for v, _ in mid), any(c for _, c in ranked[: n // 2 + 1])

def text(value, bound):
    return ("≥" if bound else "") + (f"{value:.0f}" if value == int(value) else f"{value:.1f}")

for scenario in results["scenarios"]:
    name = scenario["scenario"]
    folder = name.replace(":", "-").replace(",", "-")
    adam = {}
    for path in sorted(glob.glob(os.path.join(study, "replicate-*", folder, "relearn-ain.json"))):
        for m in json.load(open(path))["models"]:
            r = m["rcd"]
            if r["accuracy_steps"] is not None:
                adam.setdefault(m["name"], []).append((r["accuracy_steps"], r["accuracy_censored"]))
    sgd = {m["name"]: m["rcd"] for m in scenario["summary"]["models"]}
    print(f"\n{name}: RCD-acc, median steps over replicates (≥: a bound), censored/n")
    print(f"  {'model':<15}{'SGD (study)':>14}{'÷retr':>8}{'Adam (ain)':>14}{'AIN':>8}")
    retrained = median(adam["retrained"]) if "retrained" in adam else None
    for model in [m["name"] for m in scenario["summary"]["models"]]:
        s = sgd[model]["accuracy"]
        s_text = text(s["median"]["value"], s["median"]["bound"] != "exact") + f" {s['censored']}/{s['n']}"
        ratio = sgd[model]["accuracy"].get("median_ratio")
        r_text = "—" if not ratio or ratio["value"] is None else (
            {"at_least": "≥", "at_most": "≤"}.get(ratio["bound"], "") + f"{ratio['value']:.2f}")
        if model in adam:
            v, bound = median(adam[model])
            a_text = text(v, bound) + f" {sum(c for _, c in adam[model])}/{len(adam[model])}"
            if retrained and model != "retrained" and retrained[0] > 0 and not (bound and retrained[1]):
                ain = ("≥" if bound else "≤" if retrained[1] else "") + f"{v / retrained[0]:.2f}"
            else:
                ain = "—" if model == "retrained" else "n/a"
        else:
            a_text, ain = "—", "—"
        print(f"  {model:<15}{s_text:>14}{r_text:>8}{a_text:>14}{ain:>8}")
PY
