"""A small safetensors reader and writer in pure Python (struct + json), for scripts that check
lethe's checkpoints against other tools (for example a PyTorch round trip).

Format (github.com/huggingface/safetensors): an 8-byte little-endian header length N, N bytes of
JSON {"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets": [begin, end]}, ...}
padded with spaces to a multiple of 8, then the tensors' little-endian row-major bytes at offsets
counted from the end of the header.

The writer makes the same bytes as lethe's serialize_safetensors: compact JSON, "__metadata__"
first (when not empty, keys sorted), then the tensors in the order given, data in that order.
The reader checks what lethe's reader checks and raises ValueError naming the problem.

Tensors are Raw(dtype, shape, data) records; with numpy installed, `to_numpy` / `from_numpy`
convert. `Raw.values()` gives the elements as a flat list without numpy.
"""
import json
import os
import struct
import tempfile
from typing import Dict, Iterable, List, NamedTuple, Tuple, Union

# The dtypes lethe has: safetensors name -> (struct code, size in bytes, numpy dtype).
DTYPES = {
    "F32": ("f", 4, "<f4"),
    "F64": ("d", 8, "<f8"),
    "I32": ("i", 4, "<i4"),
    "I64": ("q", 8, "<i8"),
    "U8": ("B", 1, "u1"),
}
MAX_HEADER_BYTES = 100_000_000
METADATA_KEY = "__metadata__"


class Raw(NamedTuple):
    dtype: str  # a key of DTYPES
    shape: Tuple[int, ...]
    data: bytes  # little-endian, row-major

    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    def values(self) -> list:
        """The elements as a flat Python list, row-major."""
        return list(struct.unpack("<%d%s" % (self.numel(), DTYPES[self.dtype][0]), self.data))


def from_values(dtype: str, shape: Iterable[int], values: Iterable) -> Raw:
    """A Raw tensor from a flat list of Python numbers."""
    values = list(values)
    shape = tuple(int(d) for d in shape)
    raw = Raw(dtype, shape, struct.pack("<%d%s" % (len(values), DTYPES[dtype][0]), *values))
    if raw.numel() != len(values):
        raise ValueError("%d values do not fill shape %s" % (len(values), list(shape)))
    return raw


def to_numpy(t: Raw):
    import numpy as np

    return np.frombuffer(t.data, dtype=DTYPES[t.dtype][2]).reshape(t.shape).copy()


def from_numpy(array) -> Raw:
    import numpy as np

    array = np.asarray(array)
    kinds = {("f", 4): "F32", ("f", 8): "F64", ("i", 4): "I32", ("i", 8): "I64", ("u", 1): "U8"}
    name = kinds.get((array.dtype.kind, array.dtype.itemsize))
    if name is None:
        raise ValueError("unsupported numpy dtype %s (lethe has F32, F64, I32, I64, U8)" % array.dtype)
    return Raw(name, tuple(array.shape), np.ascontiguousarray(array, dtype=DTYPES[name][2]).tobytes())


def dumps(tensors: Union[Dict[str, Raw], List[Tuple[str, Raw]]], metadata: Dict[str, str] = None) -> bytes:
    """The safetensors bytes of `tensors` (a dict or a list of (name, Raw) pairs, kept in order)."""
    items = list(tensors.items()) if isinstance(tensors, dict) else list(tensors)
    header = {}
    if metadata:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise ValueError("metadata must map strings to strings")
        header[METADATA_KEY] = dict(sorted(metadata.items()))
    offset = 0
    for name, t in items:
        if name == METADATA_KEY or name in header:
            raise ValueError("tensor name %r is reserved or repeated" % name)
        if t.dtype not in DTYPES or len(t.data) != t.numel() * DTYPES[t.dtype][1]:
            raise ValueError("tensor %r: bad dtype or data size" % name)
        header[name] = {"dtype": t.dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(t.data)]}
        offset += len(t.data)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(t.data for _, t in items)


def _refuse_duplicates(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise ValueError("duplicate key %r in the header" % k)
        out[k] = v
    return out


def _non_negative_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def loads(buf: bytes) -> Tuple[List[Tuple[str, Raw]], Dict[str, str]]:
    """(tensors in the order of their data, metadata) from safetensors bytes; ValueError if invalid."""
    if len(buf) < 8:
        raise ValueError("truncated: %d bytes, too short for the 8-byte header length" % len(buf))
    (n,) = struct.unpack_from("<Q", buf)
    if n < 2 or n > MAX_HEADER_BYTES or n > len(buf) - 8:
        raise ValueError("header length %d is out of bounds (file of %d bytes)" % (n, len(buf)))
    text = bytes(buf[8 : 8 + n])
    if not text.startswith(b"{"):
        raise ValueError("header is not a JSON object")
    try:
        header = json.loads(text.decode("utf-8"), object_pairs_hook=_refuse_duplicates)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError("header is not valid JSON: %s" % e) from None
    data_size = len(buf) - 8 - n
    metadata = header.pop(METADATA_KEY, {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ValueError("__metadata__ must map strings to strings")
    entries = []
    for name, e in header.items():
        if not isinstance(e, dict) or set(e) != {"dtype", "shape", "data_offsets"}:
            raise ValueError("tensor %r: entry must have exactly dtype, shape, data_offsets" % name)
        if e["dtype"] not in DTYPES:
            raise ValueError("tensor %r: unsupported dtype %r" % (name, e["dtype"]))
        shape, offsets = e["shape"], e["data_offsets"]
        if not isinstance(shape, list) or not all(_non_negative_int(d) for d in shape):
            raise ValueError("tensor %r: bad shape %r" % (name, shape))
        if not isinstance(offsets, list) or len(offsets) != 2 or not all(_non_negative_int(o) for o in offsets):
            raise ValueError("tensor %r: bad data_offsets %r" % (name, offsets))
        begin, end = offsets
        numel = 1
        for d in shape:
            numel *= d
        if begin > end or end > data_size or end - begin != numel * DTYPES[e["dtype"]][1]:
            raise ValueError("tensor %r: data_offsets %r do not hold shape %r of %s" % (name, offsets, shape, e["dtype"]))
        entries.append((begin, end, name, e["dtype"], tuple(shape)))
    entries.sort()
    covered = 0
    for begin, end, name, _, _ in entries:
        if begin != covered:
            raise ValueError("tensor %r: data at %d, expected %d (overlap or hole)" % (name, begin, covered))
        covered = end
    if covered != data_size:
        raise ValueError("trailing bytes: %d after the last tensor's data" % (data_size - covered))
    data = bytes(buf[8 + n :])
    return [(name, Raw(dtype, shape, data[b:e])) for b, e, name, dtype, shape in entries], dict(metadata)


def load(path: str) -> Tuple[List[Tuple[str, Raw]], Dict[str, str]]:
    with open(path, "rb") as f:
        return loads(f.read())


def dump(path: str, tensors, metadata: Dict[str, str] = None) -> None:
    """Writes atomically, as lethe does: a temporary file beside `path`, fsync, rename."""
    data = dumps(tensors, metadata)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
