#!/usr/bin/env bash
# W5 side by side: one training step of cvae (batch 128) and ddpm-s (batch 64), lethe
# (lethe-bench-generative-step) against PyTorch (bench/torch_generative.py, at the faster of its
# default and channels-last formats), alternating ROUNDS times so both see the same machine; prints
# each side's median of the per-round medians and lethe's speed as a multiple of PyTorch's. Run it
# on a quiet machine (nothing else building or testing), and name the CPU with the figures.
#   bench/generative_side_by_side.sh BUILD_DIR [ROUNDS=3] [THREADS=2]
set -euo pipefail
build=$1
rounds=${2:-3}
threads=${3:-2}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for ((r = 0; r < rounds; ++r)); do
  "$build/bench/lethe-bench-generative-step" --threads "$threads" --json | tail -n 1 > "$work/lethe-$r.json"
  OMP_NUM_THREADS=$threads /usr/bin/python3 "$(dirname "$0")/torch_generative.py" --threads "$threads" --json \
    > "$work/torch-$r.json"
done
python3 - "$work" "$rounds" <<'PY'
import json, statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
lethe = [json.load(open(f"{work}/lethe-{r}.json")) for r in range(rounds)]
torch = [json.load(open(f"{work}/torch-{r}.json")) for r in range(rounds)]
print(f"CPU: {lethe[0]['cpu']}; {lethe[0]['threads']} threads; lethe sgemm {lethe[0]['sgemm']}; "
      f"PyTorch {torch[0]['version']}; {rounds} alternating rounds")
print("| model | batch | lethe ms/step | PyTorch ms/step (format) | lethe speed / PyTorch |")
print("|---|---|---|---|---|")
for model in ("cvae", "ddpm-s"):
    l = statistics.median(x[model]["median_ms"] for x in lethe)
    formats = {f: statistics.median(x["models"][model][f]["median_ms"] for x in torch) for f in ("default", "channels_last")}
    best = min(formats, key=formats.get)
    per_round = ", ".join(f"{x[model]['median_ms']:.1f}" for x in lethe)
    torch_rounds = ", ".join(f"{x['models'][model][best]['median_ms']:.1f}" for x in torch)
    print(f"| {model} | {lethe[0][model]['batch']} | {l:.1f} ({per_round}) | {formats[best]:.1f} ({best}: {torch_rounds}; "
          f"other format {formats['channels_last' if best == 'default' else 'default']:.1f}) | {formats[best] / l:.2f}× |")
PY
