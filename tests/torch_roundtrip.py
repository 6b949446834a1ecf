"""Checkpoints interoperate with PyTorch: a model trained by `lethe train` loads into the same
model written in PyTorch (strict load_state_dict) and gives the identical test accuracy; a
PyTorch state dict saved as safetensors loads into `lethe eval` and gives PyTorch's accuracy.
The mean test loss must agree too (to 1e-4 relative: float32 sums in another order), so a model
that predicts one class everywhere cannot pass by accident. Covers cnn-s and a narrow resnet18c
(batch-norm buffers included). Exits 77 (skipped) without Debian's python3-torch.

    python3 tests/torch_roundtrip.py BUILD_DIR/tools/lethe
"""
import json
import os
import subprocess
import sys
import tempfile

try:
    import torch
except ImportError:
    print("torch_roundtrip: skipped: PyTorch is not installed (tools/setup --bench installs python3-torch)")
    sys.exit(77)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))
import torch_reference as ref  # noqa: E402


def lethe(binary, *args):
    out = subprocess.run([binary, *args, "--json"], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def agree(name, direction, lethe_result, torch_acc, torch_loss):
    ok = lethe_result["accuracy"] == torch_acc and \
        abs(lethe_result["mean_loss"] - torch_loss) <= 1e-4 * abs(torch_loss)
    print(f"{name}: {direction}: accuracy lethe {lethe_result['accuracy']:.4f}, PyTorch {torch_acc:.4f}; "
          f"mean loss lethe {lethe_result['mean_loss']:.6f}, PyTorch {torch_loss:.6f}: "
          f"{'identical' if ok else 'DIFFERENT'}")
    return ok


def main():
    binary = sys.argv[1]
    torch.set_num_threads(2)
    x, y = ref.fashion_mnist(False)
    failures = 0
    with tempfile.TemporaryDirectory() as work:
        for name, width, limit in (("cnn-s", 1.0, 4096), ("resnet18c", 0.125, 4096)):
            # lethe -> PyTorch
            path = os.path.join(work, f"{name}.safetensors")
            trained = lethe(binary, "train", "--model", name, "--width", str(width), "--limit", str(limit),
                            "--epochs", "1", "--out", path)
            tensors, meta = ref.load_safetensors(path)
            state = {k: v for k, v in tensors.items() if not k.startswith("optimizer.")}
            model = ref.build(name, 1, 28, 10, width)
            model.load_state_dict(state, strict=True)
            failures += not agree(name, "lethe -> PyTorch", trained, *ref.evaluate(model, x, y))

            # PyTorch -> lethe: a model trained a little in PyTorch (so batch norm has real statistics)
            torch.manual_seed(1)
            model = ref.build(name, 1, 28, 10, width)
            train_x, train_y = ref.fashion_mnist(True)
            opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
            model.train()
            for start in range(0, limit, 128):
                opt.zero_grad()
                torch.nn.functional.cross_entropy(model(train_x[start:start + 128]), train_y[start:start + 128]).backward()
                opt.step()
            path = os.path.join(work, f"{name}-torch.safetensors")
            ref.save_safetensors(path, model.state_dict())
            evaluated = lethe(binary, "eval", "--checkpoint", path, "--model", name, "--width", str(width))
            failures += not agree(name, "PyTorch -> lethe", evaluated, *ref.evaluate(model, x, y))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
