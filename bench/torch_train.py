"""Trains a WORKLOADS.md model with PyTorch the way `lethe train` does (same model, init
distribution, data normalisation, SGD with momentum and coupled weight decay, cosine decay per
step to 0, batch, epochs, threads) and prints one JSON object like `lethe train --json`."""
import argparse
import json
import math
import time

import torch

import torch_reference as ref


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="cnn-s")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default=ref.FASHION_MNIST_DIR)
    # channels_last: the memory format PyTorch's CPU performance guide recommends for convolutions
    # (oneDNN's fast path); the side-by-side times both and compares lethe with the faster.
    p.add_argument("--memory-format", choices=("contiguous", "channels_last"), default="contiguous")
    a = p.parse_args()
    memory_format = torch.channels_last if a.memory_format == "channels_last" else torch.contiguous_format

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    x, y = ref.fashion_mnist(True, a.data)
    tx, ty = ref.fashion_mnist(False, a.data)
    model = ref.build(a.model).to(memory_format=memory_format)
    tx = tx.contiguous(memory_format=memory_format)  # the training batches convert as they are drawn
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=a.momentum, weight_decay=a.weight_decay)
    steps_per_epoch = math.ceil(len(y) / a.batch)
    total = steps_per_epoch * a.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)))
    loss_fn = torch.nn.CrossEntropyLoss()
    train_seconds, epochs = 0.0, []
    for epoch in range(a.epochs):
        model.train()
        order = torch.randperm(len(y))
        t0 = time.perf_counter()
        loss_sum = torch.zeros((), dtype=torch.float64)
        for start in range(0, len(y), a.batch):
            idx = order[start:start + a.batch]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[idx].contiguous(memory_format=memory_format)), y[idx])
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.detach().double() * len(idx)
        seconds = time.perf_counter() - t0
        train_seconds += seconds
        epochs.append({"epoch": epoch + 1, "seconds": seconds, "train_loss": loss_sum.item() / len(y)})
    result = {
        "framework": f"pytorch {torch.__version__}",
        "memory_format": a.memory_format,
        "model": a.model,
        "accuracy": ref.accuracy(model, tx, ty),
        "train_seconds": train_seconds,
        "images_per_second": len(y) * a.epochs / train_seconds,
        "ms_per_step": 1000 * train_seconds / (steps_per_epoch * a.epochs),
        "epochs": epochs,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
