"""A Fashion-MNIST folder for `lethe --data` holding the first images of each part, written as
stored (uncompressed) gzip IDX files: a small folder loads in a fraction of the full set's time.
tests/cli.sh runs it; tests/torch_roundtrip.py imports it.

    python3 tests/fashion_subset.py SOURCE OUT TRAIN TEST [white-square]

TRAIN: the first TRAIN training images, 0 for none (a folder to evaluate on), or "all": the whole
training set, linked. TEST: the first TEST test images, with white-square carrying the backdoor
trigger as the README defines it (a white square of floor(size/9) pixels in the bottom-right
corner).
"""
import gzip
import os
import struct
import sys


def write_part(source, out, part, count, trigger=False):
    """The first `count` images and labels of `part` ("train" or "t10k")."""
    images = gzip.open(f"{source}/{part}-images-idx3-ubyte.gz")
    rows, cols = struct.unpack(">2I", images.read(16)[8:])
    pixels = bytearray(images.read(count * rows * cols))  # only what it needs: quicker
    labels = gzip.open(f"{source}/{part}-labels-idx1-ubyte.gz").read(8 + count)
    size = rows // 9 if trigger else 0
    for i in range(count):
        for y in range(rows - size, rows):
            start = (i * rows + y) * cols + cols - size
            pixels[start:start + size] = b"\xff" * size
    for name, header, body in ((f"{part}-images-idx3-ubyte.gz", struct.pack(">4I", 2051, count, rows, cols), pixels),
                               (f"{part}-labels-idx1-ubyte.gz", struct.pack(">2I", 2049, count), labels[8:8 + count])):
        with gzip.open(f"{out}/{name}", "wb", compresslevel=0) as f:  # stored, not compressed: quicker
            f.write(header + body)


def write_folder(source, out, train, test, trigger=False):
    os.makedirs(out, exist_ok=True)
    if train == "all":
        for kind in ("images-idx3", "labels-idx1"):
            name = f"train-{kind}-ubyte.gz"
            os.symlink(os.path.join(source, name), os.path.join(out, name))
    elif train:
        write_part(source, out, "train", train)
    write_part(source, out, "t10k", test, trigger)


if __name__ == "__main__":
    source, out, train, test = sys.argv[1:5]
    write_folder(source, out, train if train == "all" else int(train), int(test), sys.argv[5:] == ["white-square"])
