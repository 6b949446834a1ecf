#!/usr/bin/env bash
# `lethe import` and plain state dicts through the CLI, without PyTorch (tests/torch_roundtrip.py
# imports a PyTorch-trained model): an import evaluates as the plain state dict does with --model,
# records the recipe from flags or a TOML file, converts float64 weights and says so; missing,
# extra, misshapen and mistyped tensors, a torch.save file, a lethe checkpoint, retrain without a
# recipe and a --model that disagrees are refused, each with an error that says what to do. Real
# Fashion-MNIST, tiny runs.
#   tests/import.sh BUILD_DIR/tools/lethe
set -euo pipefail
lethe=$1
name=import.sh
source "$(dirname "$0")/cli_lib.sh"
small_datasets 4000 1000

# variant IN OUT EDIT: OUT is IN's tensors without metadata or optimizer state, edited by EDIT
# (plain, missing, extra, misshapen, f64, i32), as safetensors.
variant() {
  python3 - "$@" <<'PY'
import json, struct, sys
src, dst, edit = sys.argv[1:4]
raw = open(src, "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header, data = json.loads(raw[8:8 + n]), raw[8 + n:]
tensors = {}
for key, v in header.items():
    if key == "__metadata__" or key.startswith("optimizer."):
        continue
    begin, end = v["data_offsets"]
    tensors[key] = [v["dtype"], v["shape"], data[begin:end]]
if edit == "missing":
    del tensors["fc3.bias"]
if edit == "extra":
    tensors["head.weight"] = ["F32", [2], bytes(8)]
if edit == "misshapen":
    dtype, shape, body = tensors["fc3.bias"]
    tensors["fc3.bias"] = [dtype, [2, 5], body]
if edit == "f64":
    floats = struct.unpack(f"<{len(tensors['fc1.weight'][2]) // 4}f", tensors["fc1.weight"][2])
    tensors["fc1.weight"] = ["F64", tensors["fc1.weight"][1], struct.pack(f"<{len(floats)}d", *floats)]
if edit == "i32":
    tensors["fc3.bias"][0] = "I32"
out, entries = b"", {}
for key, (dtype, shape, body) in tensors.items():
    entries[key] = {"dtype": dtype, "shape": shape, "data_offsets": [len(out), len(out) + len(body)]}
    out += body
text = json.dumps(entries).encode()
text += b" " * (-len(text) % 8)
open(dst, "wb").write(struct.pack("<Q", len(text)) + text + out)
PY
}

"$lethe" train "${small[@]}" --epochs 1 --no-test --out "$work/m.safetensors" > /dev/null 2>&1
for edit in plain missing extra misshapen f64 i32; do variant "$work/m.safetensors" "$work/$edit.safetensors" "$edit"; done

# The import evaluates as the plain state dict does, and as the lethe original does.
"$lethe" import --from "$work/plain.safetensors" --model mlp --out "$work/imported.safetensors" --json > "$work/import.json"
[[ $(json_field "$work/import.json" recipe) == None ]] || fail "a recipe was recorded without one given"
for checkpoint in m imported; do
  "$lethe" eval --checkpoint "$work/$checkpoint.safetensors" --json > "$work/eval-$checkpoint.json"
done
"$lethe" eval --checkpoint "$work/plain.safetensors" --model mlp --json > "$work/eval-plain.json"
for checkpoint in imported plain; do
  [[ $(json_field "$work/eval-$checkpoint.json" accuracy) == $(json_field "$work/eval-m.json" accuracy) ]] ||
    fail "$checkpoint: test accuracy $(json_field "$work/eval-$checkpoint.json" accuracy), the original's $(json_field "$work/eval-m.json" accuracy)"
done
[[ $(json_field "$work/import.json" test_accuracy) == $(json_field "$work/eval-m.json" accuracy) ]] ||
  fail "import reported test accuracy $(json_field "$work/import.json" test_accuracy)"

# Recipes: from the training flags, or a TOML file (a study config's [train] table), not both.
"$lethe" import --from "$work/plain.safetensors" --model mlp --out "$work/flags.safetensors" --epochs 1 --limit 256 \
  --json > "$work/flags.json"
python3 -c 'import json, sys; r = json.load(open(sys.argv[1]))["recipe"]; sys.exit(r["epochs"] != 1 or r["limit"] != 256)' \
  "$work/flags.json" || fail "the flags' recipe was not recorded"
printf '[study]\nname = "x"\n\n[train]\nepochs = 2\nlr = 0.01\nlimit = 256\n' > "$work/study.toml"
"$lethe" import --from "$work/plain.safetensors" --model mlp --out "$work/toml.safetensors" --recipe "$work/study.toml" \
  --json > "$work/toml.json"
python3 -c 'import json, sys; r = json.load(open(sys.argv[1]))["recipe"]; sys.exit(r["epochs"] != 2 or r["lr"] != 0.01)' \
  "$work/toml.json" || fail "the TOML file's recipe was not recorded"
refused "not both" import --from "$work/plain.safetensors" --model mlp --out "$work/x.safetensors" \
  --recipe "$work/study.toml" --epochs 3
printf 'epochs = 2\nwarp = 9\n' > "$work/bad.toml"
refused "warp" import --from "$work/plain.safetensors" --model mlp --out "$work/x.safetensors" --recipe "$work/bad.toml"

# Retrain: refused without a recipe (saying how to record one), run with the imported recipe.
"$lethe" split --scenario random:0.1 --out "$work/split.json" > /dev/null
refused "records no training recipe.*lethe import" unlearn --split "$work/split.json" --method retrain \
  --from "$work/imported.safetensors" --out "$work/r.safetensors"
"$lethe" unlearn --split "$work/split.json" --method retrain --from "$work/toml.safetensors" \
  --out "$work/r.safetensors" --no-eval --json > "$work/retrain.json"
[[ $(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["details"]["epochs"])' "$work/retrain.json") == 2 ]] ||
  fail "retrain did not use the imported recipe"

# float64 weights become float32, said; other dtypes and names are refused, named.
"$lethe" import --from "$work/f64.safetensors" --model mlp --out "$work/f64-imported.safetensors" --json > "$work/f64.json"
python3 -c 'import json, sys; sys.exit(json.load(open(sys.argv[1]))["converted"] != {"fc1.weight": "F64"})' \
  "$work/f64.json" || fail "the float64 conversion was not reported: $(cat "$work/f64.json")"
refused "does not hold a mlp: missing fc3.bias \[10\]" import --from "$work/missing.safetensors" --model mlp --out "$work/x.safetensors"
refused "not in the model head.weight" import --from "$work/extra.safetensors" --model mlp --out "$work/x.safetensors"
refused "wrong shape or dtype.*fc3.bias" import --from "$work/misshapen.safetensors" --model mlp --out "$work/x.safetensors"
refused "wrong shape or dtype.*fc3.bias \(int32" import --from "$work/i32.safetensors" --model mlp --out "$work/x.safetensors"
refused "does not hold a cnn-s" import --from "$work/plain.safetensors" --model cnn-s --out "$work/x.safetensors"
refused "lethe checkpoint already" import --from "$work/m.safetensors" --model mlp --out "$work/x.safetensors"
refused "required" import --from "$work/plain.safetensors" --out "$work/x.safetensors"
[[ ! -e $work/x.safetensors ]] || fail "a refused import wrote its output"

# torch.save's zip archive: refused, with the command that saves safetensors.
printf 'PK\003\004\024\000\000\000\000\000rest of a zip archive' > "$work/model.pt"
refused "never unpickles.*save_file" eval --checkpoint "$work/model.pt" --model mlp

# A plain state dict without --model, and a --model that disagrees with a lethe checkpoint.
refused "say which model it holds with --model.*lethe import" unlearn --split "$work/split.json" --method ft \
  --from "$work/plain.safetensors" --out "$work/x.safetensors"
refused "holds a mlp .*not the --model cnn-s" eval --checkpoint "$work/m.safetensors" --model cnn-s
"$lethe" unlearn --split "$work/split.json" --method ft --steps 5 --from "$work/plain.safetensors" --model mlp \
  --out "$work/ft.safetensors" --no-eval > /dev/null 2>&1 || fail "unlearn --from a plain state dict with --model failed"

echo "$name: ok"
