"""The side-by-side benchmark of issue 3: the WORKLOADS.md W1 training run (cnn-s on
Fashion-MNIST, SGD momentum 0.9, weight decay 5e-4, cosine from 0.05, batch 128, 4 epochs,
2 threads) with lethe and with PyTorch in one run, each in a fresh process, alternating when
--repeats > 1. Prints images/s, ms per optimizer step, peak RSS and test accuracy with the ratio
lethe/PyTorch. Both processes inherit the same environment (OPENBLAS_CORETYPE included).

    python3 bench/side_by_side.py --lethe build/tools/lethe [--epochs 4] [--repeats 1] [--json FILE]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def peak_rss_runner(cmd):
    """Runs cmd in a child and reads its own rusage through wait4 (ru_maxrss is KiB on Linux)."""
    with tempfile.TemporaryFile("w+") as errors:  # a file, so a chatty stderr cannot block stdout
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errors, text=True)
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)  # reaped here, so Popen never sees the status
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            errors.seek(0)
            sys.exit(f"side_by_side: {' '.join(cmd)} failed ({code}):\n{errors.read()}")
    return json.loads(out.strip().splitlines()[-1]), usage.ru_maxrss / 1024


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lethe", default=os.path.join(HERE, "..", "build", "tools", "lethe"))
    p.add_argument("--model", default="cnn-s")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--json", help="write the rows here as JSON")
    a = p.parse_args()

    common = ["--model", a.model, "--epochs", str(a.epochs), "--threads", str(a.threads), "--batch", "128",
              "--lr", "0.05", "--momentum", "0.9", "--weight-decay", "5e-4"]
    lethe_cmd = [a.lethe, "train", *common, "--schedule", "cosine", "--seed", "0", "--json"]
    torch_cmd = [sys.executable, os.path.join(HERE, "torch_train.py"), *common]
    rows = {"lethe": [], "pytorch": []}
    for r in range(a.repeats):
        for name, cmd in (("lethe", lethe_cmd), ("pytorch", torch_cmd)) if r % 2 == 0 else \
                (("pytorch", torch_cmd), ("lethe", lethe_cmd)):
            result, rss = peak_rss_runner(cmd)
            steps = result.get("steps") or 0
            ms = result.get("ms_per_step") or 1000 * result["train_seconds"] / steps
            rows[name].append({"images_per_second": result["images_per_second"], "ms_per_step": ms,
                               "peak_rss_mib": rss, "accuracy": result["accuracy"]})
            print(f"run {r + 1} {name}: {result['images_per_second']:.0f} images/s, {ms:.2f} ms/step, "
                  f"{rss:.0f} MiB, accuracy {result['accuracy']:.4f}", file=sys.stderr)

    med = {k: {f: statistics.median(row[f] for row in v) for f in v[0]} for k, v in rows.items()}
    print(f"\n{a.model}, Fashion-MNIST, batch 128, {a.epochs} epochs, {a.threads} threads, "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}, median of {a.repeats} run(s)\n")
    print(f"| metric | lethe | PyTorch | lethe/PyTorch |\n|---|---|---|---|")
    for f, label, fmt in (("images_per_second", "training images/s", "{:.0f}"),
                          ("ms_per_step", "ms per optimizer step (batch 128)", "{:.2f}"),
                          ("peak_rss_mib", "peak RSS (MiB)", "{:.0f}"),
                          ("accuracy", "test accuracy", "{:.4f}")):
        lv, tv = med["lethe"][f], med["pytorch"][f]
        print(f"| {label} | {fmt.format(lv)} | {fmt.format(tv)} | {lv / tv:.2f} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"runs": rows, "median": med}, f, indent=1)


if __name__ == "__main__":
    main()
