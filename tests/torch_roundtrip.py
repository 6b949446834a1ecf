"""lethe's numbers against PyTorch's, the only numeric check of resnet18c:
- checkpoints interoperate both ways: a model trained by `lethe train` loads into the same model
  written in PyTorch (strict load_state_dict) and gives the identical test accuracy; a PyTorch
  state dict saved as safetensors loads into `lethe eval` and gives PyTorch's accuracy. The mean
  test loss must agree too (to 1e-4 relative: float32 sums in another order), so a model that
  predicts one class everywhere cannot pass by accident. Eval mode: batch norm uses its running
  statistics. Covers cnn-s and a narrow resnet18c (batch-norm buffers included).
- The PyTorch-trained cnn-s through `lethe import` (README, "Coming from PyTorch"): the imported
  checkpoint gives PyTorch's accuracy and loss, is unlearned with ft and relearned (RCD) with the
  plain state dict as the original (--model); retrain refuses it without a recipe and runs with
  one; torch.save's pickle file is refused with the command that saves safetensors instead.
- resnet18c's batch norm in train mode (the batch's own statistics): one step of `lethe train`
  against PyTorch in float64 from the same weights: the loss, every parameter's gradient and every
  running statistic.
Exits 77 (skipped) without Debian's python3-torch or Fashion-MNIST.

    /usr/bin/python3 tests/torch_roundtrip.py BUILD_DIR/tools/lethe
"""
import json
import os
import subprocess
import sys
import tempfile


def skip(reason):
    print(f"torch_roundtrip: SKIPPED: {reason}")
    if os.environ.get("LETHE_SKIP_LOG"):  # tools/test lists it after the suite (tests/CMakeLists.txt)
        with open(os.environ["LETHE_SKIP_LOG"], "a") as log:
            log.write(f"torch_roundtrip\t{reason}\n")
    sys.exit(77)


try:
    import torch
except ImportError:
    skip("PyTorch is not installed (tools/setup installs python3-torch)")

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))
import torch_reference as ref  # noqa: E402
import fashion_subset  # noqa: E402  (this script's folder)

# The first 2,000 test images: the comparisons need agreement, not a precise accuracy, and
# resnet18c's evaluations of all 10,000 took half the test's time.
TEST_IMAGES = 2000
# The train-mode step: one batch of the first 64 training images, so lethe's shuffle cannot change
# it; plain SGD (no momentum, no weight decay), so the step is −lr·gradient; 4 steps before it at a
# large learning rate, so the batch-norm weights are far from their initial 1 (up to 15%) and the
# update far above float32 rounding.
TRAIN_MODE_BATCH, TRAIN_MODE_LR, TRAIN_MODE_STEPS_BEFORE = 64, 0.5, 4
# Relative errors allowed against float64 (measured: loss 3e-8, statistics 3e-7, gradients 2e-5).
# The gradients' is looser: a ReLU input within float32 rounding of 0 can take the other branch,
# which moved a batch-norm bias's gradient (a sum with much cancellation) by up to 5e-3 (on
# OpenBLAS's float32 GEMMs, or other seeds). A backward pass that forgot the batch-norm weight is
# off by 7e-2.
LOSS_TOLERANCE, STATISTICS_TOLERANCE, GRADIENT_TOLERANCE = 1e-6, 1e-5, 2e-2


def lethe(binary, *args):
    run = subprocess.run([binary, *args, "--json"], capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"torch_roundtrip: FAILED: lethe {' '.join(args)} exited {run.returncode}: {run.stderr.strip()}")
    return json.loads(run.stdout)


def agree(name, direction, lethe_result, torch_acc, torch_loss):
    ok = lethe_result["accuracy"] == torch_acc and \
        abs(lethe_result["mean_loss"] - torch_loss) <= 1e-4 * abs(torch_loss)
    print(f"{name}: {direction}: accuracy lethe {lethe_result['accuracy']:.4f}, PyTorch {torch_acc:.4f}; "
          f"mean loss lethe {lethe_result['mean_loss']:.6f}, PyTorch {torch_loss:.6f}: "
          f"{'identical' if ok else 'DIFFERENT'}")
    return ok


def model_from(name, width, tensors):
    model = ref.build(name, 1, 28, 10, width)
    model.load_state_dict({k: v for k, v in tensors.items() if not k.startswith("optimizer.")}, strict=True)
    return model


def lethe_to_torch(name, width, path, lethe_result, x, y):
    model = model_from(name, width, ref.load_safetensors(path)[0])
    return agree(name, "lethe -> PyTorch", lethe_result, *ref.evaluate(model, x, y))


def torch_to_lethe(binary, data, work, name, width, limit, train, test):
    """A model trained a little in PyTorch; its batch-norm running statistics then set to those of
    512 training images, so that eval mode is a real model and not one still warming up."""
    torch.manual_seed(1)
    model = ref.build(name, 1, 28, 10, width)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    model.train()
    for start in range(0, limit, 128):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(train[0][start:start + 128]), train[1][start:start + 128]).backward()
        opt.step()
    batch_norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for bn in batch_norms:
        bn.reset_running_stats()
        bn.momentum = None  # a cumulative average: over the one batch below, its statistics
    if batch_norms:
        with torch.no_grad():
            model(train[0][:512])
    path = os.path.join(work, f"{name}-torch.safetensors")
    ref.save_safetensors(path, model.state_dict())
    evaluated = lethe(binary, "eval", "--data", data, "--checkpoint", path, "--model", name, "--width", str(width))
    return agree(name, "PyTorch -> lethe", evaluated, *ref.evaluate(model, *test)), model, path


def refused(binary, args, expected):
    """`lethe ARGS` must fail, its message holding `expected`."""
    run = subprocess.run([binary, *args], capture_output=True, text=True)
    ok = run.returncode != 0 and expected in run.stderr
    print(f"refused: lethe {args[0]} ... ({expected!r}): {'yes' if ok else 'NO: ' + run.stderr.strip()[:300]}")
    return ok


def imported_pipeline(binary, data, work, model, plain, test):
    """The PyTorch-trained cnn-s imported, evaluated, unlearned and relearned. Returns failures."""
    failures = 0
    bare, recorded = os.path.join(work, "imported.safetensors"), os.path.join(work, "imported-recipe.safetensors")
    lethe(binary, "import", "--data", data, "--from", plain, "--model", "cnn-s", "--out", bare)
    evaluated = lethe(binary, "eval", "--data", data, "--checkpoint", bare)
    failures += not agree("cnn-s", "PyTorch -> lethe import", evaluated, *ref.evaluate(model, *test))
    split = os.path.join(work, "split.json")
    args = ["--data", data, "--scenario", "random:0.1", "--split-seed", "0"]
    ft = lethe(binary, "unlearn", *args, "--method", "ft", "--steps", "20", "--from", bare,
               "--out", os.path.join(work, "ft.safetensors"), "--split-out", split)
    ok = ft["method"] == "ft" and ft["model"] == "cnn-s"
    print(f"cnn-s: imported: unlearned with ft: {'ok' if ok else 'WRONG'}")
    failures += not ok
    # The plain state dict itself as the original, through --model: the same targets as the import.
    relearned = lethe(binary, "relearn", "--data", data, "--split", split, "--original", plain, "--model", "cnn-s",
                      "--from", os.path.join(work, "ft.safetensors"), "--steps", "20")
    ok = len(relearned["models"]) == 2
    print(f"cnn-s: plain state dict as the original: relearned {len(relearned['models'])} models: "
          f"{'ok' if ok else 'WRONG'}")
    failures += not ok
    failures += not refused(binary, ["relearn", "--data", data, "--split", split, "--original", plain],
                            "lethe import")
    failures += not refused(binary, ["unlearn", "--data", data, "--split", split, "--method", "retrain",
                                     "--from", bare, "--out", os.path.join(work, "r.safetensors")],
                            "records no training recipe")
    lethe(binary, "import", "--data", data, "--from", plain, "--model", "cnn-s", "--out", recorded,
          "--limit", "1024", "--epochs", "1")
    retrained = lethe(binary, "unlearn", "--data", data, "--split", split, "--method", "retrain", "--from", recorded,
                      "--out", os.path.join(work, "retrained.safetensors"), "--no-eval")
    ok = retrained["details"]["epochs"] == 1
    print(f"cnn-s: imported with a recipe: retrained for {retrained['details']['epochs']} epoch: "
          f"{'ok' if ok else 'WRONG'}")
    failures += not ok
    failures += not refused(binary, ["import", "--data", data, "--from", plain, "--model", "mlp",
                                     "--out", os.path.join(work, "x.safetensors")], "does not hold a mlp")
    pickled = os.path.join(work, "model.pt")
    torch.save(model.state_dict(), pickled)
    failures += not refused(binary, ["eval", "--data", data, "--checkpoint", pickled, "--model", "cnn-s"],
                            "never unpickles")
    return failures


def relative_error(value, reference):
    value, reference = value.double(), reference.double()
    return ((value - reference).norm() / reference.norm()).item()


def within(what, errors, tolerance):
    """errors: {tensor name: relative error}; prints the worst."""
    worst = max(errors, key=errors.get)
    ok = errors[worst] <= tolerance
    print(f"resnet18c: train mode: {what}: worst relative error {errors[worst]:.1e} ({worst}), "
          f"tolerance {tolerance:.0e}: {'agree' if ok else 'DIFFERENT'}")
    return ok


def train_mode_batch_norm(binary, data, work, train, test):
    """lethe trains TRAIN_MODE_STEPS_BEFORE steps (so the weights and statistics are its own, not
    the initial ones), then one more after --resume. PyTorch in float64 takes that step's forward
    and backward from the checkpoint in between. The final checkpoint is also resnet18c's
    lethe -> PyTorch check: after 5 steps its running statistics still lag, so eval mode gives a
    poor model with a large mean loss, which must agree all the same. Returns the number of
    failed checks."""
    before, after = os.path.join(work, "before.safetensors"), os.path.join(work, "after.safetensors")
    lethe(binary, "train", "--data", data, "--model", "resnet18c", "--width", "0.125",
          "--limit", str(TRAIN_MODE_BATCH), "--batch", str(TRAIN_MODE_BATCH), "--lr", str(TRAIN_MODE_LR),
          "--schedule", "constant", "--momentum", "0", "--weight-decay", "0",
          "--epochs", str(TRAIN_MODE_STEPS_BEFORE + 1), "--stop-after", str(TRAIN_MODE_STEPS_BEFORE), "--out", before)
    stepped = lethe(binary, "train", "--data", data, "--resume", before, "--out", after)
    start, _ = ref.load_safetensors(before)
    end, _ = ref.load_safetensors(after)

    model = model_from("resnet18c", 0.125, start).double().train()
    loss = torch.nn.functional.cross_entropy(model(train[0][:TRAIN_MODE_BATCH].double()), train[1][:TRAIN_MODE_BATCH])
    loss.backward()

    failures = 0
    failures += not within("loss", {"loss": abs(stepped["train_loss"] - loss.item()) / loss.item()}, LOSS_TOLERANCE)
    failures += not within("gradients (from the step lethe took)",
                           {k: relative_error((start[k].double() - end[k].double()) / TRAIN_MODE_LR, p.grad)
                            for k, p in model.named_parameters()}, GRADIENT_TOLERANCE)
    buffers = dict(model.named_buffers())
    failures += not within("running statistics",
                           {k: relative_error(end[k], b) for k, b in buffers.items() if b.is_floating_point()},
                           STATISTICS_TOLERANCE)
    counted = all(end[k].item() == b.item() for k, b in buffers.items() if k.endswith("num_batches_tracked"))
    print(f"resnet18c: train mode: num_batches_tracked {'agree' if counted else 'DIFFERENT'}")
    failures += not counted
    failures += not lethe_to_torch("resnet18c", 0.125, after, stepped, *test)
    return failures


def main():
    binary = sys.argv[1]
    if not os.path.exists(os.path.join(ref.FASHION_MNIST_DIR, "t10k-labels-idx1-ubyte.gz")):
        skip(f"no Fashion-MNIST in {ref.FASHION_MNIST_DIR} (tools/setup installs dataset-fashion-mnist)")
    torch.set_num_threads(2)
    failures = 0
    with tempfile.TemporaryDirectory() as work:
        # The training set as installed, the first TEST_IMAGES test images.
        data = os.path.join(work, "fashion-mnist")
        fashion_subset.write_folder(ref.FASHION_MNIST_DIR, data, "all", TEST_IMAGES)
        train, test = ref.fashion_mnist(True, data), ref.fashion_mnist(False, data)
        path = os.path.join(work, "cnn-s.safetensors")
        trained = lethe(binary, "train", "--data", data, "--model", "cnn-s", "--limit", "4096", "--epochs", "1",
                        "--out", path)
        failures += not lethe_to_torch("cnn-s", 1.0, path, trained, *test)
        failures += train_mode_batch_norm(binary, data, work, train, test)  # resnet18c's lethe -> PyTorch too
        ok, model, plain = torch_to_lethe(binary, data, work, "cnn-s", 1.0, 4096, train, test)
        failures += not ok
        failures += imported_pipeline(binary, data, work, model, plain, test)
        failures += not torch_to_lethe(binary, data, work, "resnet18c", 0.125, 2048, train, test)[0]
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
