"""The side-by-side benchmark of issue 3: the WORKLOADS.md W1 training run (cnn-s on
Fashion-MNIST, SGD momentum 0.9, weight decay 5e-4, cosine from 0.05, batch 128, 4 epochs,
2 threads) with lethe and with PyTorch in one run, each in a fresh process, alternating when
--repeats > 1. PyTorch runs in both memory formats, contiguous (NCHW) and channels_last (the
format PyTorch's CPU performance guide recommends for convolutions: oneDNN's fast path), and
lethe is compared with the faster of the two (by median images/s). Prints images/s, ms per
optimizer step, peak RSS and test accuracy with the ratio lethe/PyTorch. All processes inherit
the same environment (OPENBLAS_CORETYPE included).

--isa avx2 runs both on their AVX2 code on a CPU with AVX-512: lethe's AVX2 sgemm
(LETHE_SGEMM=avx2) and oneDNN capped at AVX2 (ONEDNN_MAX_CPU_ISA=AVX2), so that one machine gives
figures for both kinds of CPU.

    python3 bench/side_by_side.py --lethe build/tools/lethe [--epochs 4] [--repeats 1] [--isa avx2] [--json FILE]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def peak_rss_runner(cmd, env):
    """Runs cmd in a child and reads its own rusage through wait4 (ru_maxrss is KiB on Linux)."""
    with tempfile.TemporaryFile("w+") as errors:  # a file, so a chatty stderr cannot block stdout
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errors, text=True, env=env)
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
    p.add_argument("--isa", choices=("default", "avx2"), default="default",
                   help="avx2: lethe's AVX2 sgemm and oneDNN capped at AVX2")
    p.add_argument("--json", help="write the rows here as JSON")
    a = p.parse_args()
    env = dict(os.environ)
    if a.isa == "avx2":
        env.update(LETHE_SGEMM="avx2", ONEDNN_MAX_CPU_ISA="AVX2")

    common = ["--model", a.model, "--epochs", str(a.epochs), "--threads", str(a.threads), "--batch", "128",
              "--lr", "0.05", "--momentum", "0.9", "--weight-decay", "5e-4"]
    lethe_cmd = [a.lethe, "train", *common, "--schedule", "cosine", "--seed", "0", "--json"]
    torch_cmd = [sys.executable, os.path.join(HERE, "torch_train.py"), *common]
    runs = [("lethe", lethe_cmd), ("pytorch", torch_cmd + ["--memory-format", "contiguous"]),
            ("pytorch channels_last", torch_cmd + ["--memory-format", "channels_last"])]
    rows = {name: [] for name, _ in runs}
    gemm = "?"
    for r in range(a.repeats):
        for name, cmd in runs if r % 2 == 0 else runs[::-1]:
            result, rss = peak_rss_runner(cmd, env)
            gemm = result.get("float32_gemm", gemm)
            steps = result.get("steps") or 0
            ms = result.get("ms_per_step") or 1000 * result["train_seconds"] / steps
            rows[name].append({"images_per_second": result["images_per_second"], "ms_per_step": ms,
                               "peak_rss_mib": rss, "accuracy": result["accuracy"]})
            print(f"run {r + 1} {name}: {result['images_per_second']:.0f} images/s, {ms:.2f} ms/step, "
                  f"{rss:.0f} MiB, accuracy {result['accuracy']:.4f}", file=sys.stderr)

    med = {k: {f: statistics.median(row[f] for row in v) for f in v[0]} for k, v in rows.items()}
    best = max(("pytorch", "pytorch channels_last"), key=lambda k: med[k]["images_per_second"])
    print(f"\n{a.model}, Fashion-MNIST, batch 128, {a.epochs} epochs, {a.threads} threads, "
          f"OPENBLAS_CORETYPE={env.get('OPENBLAS_CORETYPE', 'unset')}, ONEDNN_MAX_CPU_ISA="
          f"{env.get('ONEDNN_MAX_CPU_ISA', 'unset')}, lethe's float32 GEMM {gemm}, median of {a.repeats} run(s); "
          f"PyTorch at its best: {best}\n")
    print("| metric | lethe | PyTorch (contiguous) | PyTorch (channels_last) | lethe/PyTorch at its best |\n"
          "|---|---|---|---|---|")
    for f, label, fmt in (("images_per_second", "training images/s", "{:.0f}"),
                          ("ms_per_step", "ms per optimizer step (batch 128)", "{:.2f}"),
                          ("peak_rss_mib", "peak RSS (MiB)", "{:.0f}"),
                          ("accuracy", "test accuracy", "{:.4f}")):
        lv = med["lethe"][f]
        print(f"| {label} | {fmt.format(lv)} | {fmt.format(med['pytorch'][f])} | "
              f"{fmt.format(med['pytorch channels_last'][f])} | {lv / med[best][f]:.2f} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"runs": rows, "median": med, "pytorch_best": best, "float32_gemm": gemm,
                       "isa": a.isa}, f, indent=1)


if __name__ == "__main__":
    main()
