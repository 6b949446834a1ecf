"""PyTorch's side of lethe-bench-train-step: one training step of the WORKLOADS.md `cnn-s`
(forward, cross-entropy, backward, SGD with momentum 0.9 and coupled weight decay 5e-4) at batch
128 on random data, timed step by step; prints the median and minimum ms/step (and, with --json,
one JSON object). Run it with the environment lethe runs with (OPENBLAS_CORETYPE is left as set).

    /usr/bin/python3 bench/torch_train_step.py [--threads 2] [--batch 128] [--steps 50]
"""
import argparse
import json
import statistics
import time

import torch
from torch import nn


class CnnS(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 5, padding=2)
        self.conv2 = nn.Conv2d(16, 32, 5, padding=2)
        self.fc1 = nn.Linear(1568, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = torch.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = CnnS()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(a.batch, 1, 28, 28)
    y = torch.randint(0, 10, (a.batch,))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    for _ in range(a.warmup):
        step()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1e3)
    median, best = statistics.median(times), min(times)
    if a.json:
        print(json.dumps({"impl": "torch", "version": torch.__version__, "threads": a.threads,
                          "batch": a.batch, "steps": a.steps, "median_ms": median, "min_ms": best}))
    else:
        print(f"torch {torch.__version__}: cnn-s train step, batch {a.batch}, {a.threads} threads: "
              f"median {median:.3f} ms/step, min {best:.3f} ms ({a.steps} steps)")


if __name__ == "__main__":
    main()
