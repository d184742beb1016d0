"""Read a PyTorch state dict (`.pth`) into numpy arrays, without torch.

Both of torch.save's formats are read: the zip archive (torch >= 1.6) and the
older stream of pickles followed by raw storages (the FID Inception weights are
in this one).  The unpickler accepts only what a plain state dict holds
(OrderedDict, tensors rebuilt from typed storages) and refuses any other
global, so a malicious file cannot run code.
"""

from __future__ import annotations

import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
           "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
           "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_}


class _Storage:
    def __init__(self, key: str, dtype, numel: int):
        self.key, self.dtype, self.numel, self.data = key, np.dtype(dtype), numel, None


class _Tensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def array(self) -> np.ndarray:
        """The tensor's values; ValueError when its offset, sizes or strides (read from the
        file) would reach outside its storage: as_strided does not check, so a crafted file
        could otherwise read the process's memory."""
        flat = self.storage.data
        sizes, strides, offset = self.size, self.stride, self.offset
        if not all(isinstance(n, int) and not isinstance(n, bool) for n in (offset, *sizes, *strides)):
            raise ValueError("a tensor's offset, sizes and strides must be integers")
        if len(sizes) != len(strides) or offset < 0 or min(sizes, default=0) < 0 or min(strides, default=0) < 0:
            raise ValueError(f"a tensor of sizes {sizes}, strides {strides}, offset {offset} is malformed")
        if 0 in sizes:
            return np.zeros(sizes, flat.dtype)
        last = offset + sum((n - 1) * s for n, s in zip(sizes, strides))  # its farthest element
        if last >= len(flat):
            raise ValueError(f"a tensor reaches element {last} of a storage of {len(flat)}")
        if not sizes:
            return flat[offset].copy()
        byte_strides = [s * flat.itemsize for s in strides]
        return np.lib.stride_tricks.as_strided(flat[offset:], sizes, byte_strides).copy()


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
    return _Tensor(storage, offset, size, stride)


class _StateDictUnpickler(pickle.Unpickler):
    def __init__(self, file):
        super().__init__(file)
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in _DTYPES:
            return _DTYPES[name]
        raise pickle.UnpicklingError(f"{module}.{name} is not part of a plain state dict")

    def persistent_load(self, pid):
        # ('storage', storage type, key, location, numel[, view metadata])
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        if len(pid) > 5 and pid[5] is not None:
            raise pickle.UnpicklingError("storage views (saved by torch < 1.0) are not supported")
        key = str(pid[2])
        if key not in self.storages:
            self.storages[key] = _Storage(key, pid[1], int(pid[4]))
        return self.storages[key]


def load_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """The tensors of a torch.save'd state dict as numpy arrays, by name.

    Raises ValueError (with the reason) for a file that is not such a state dict.
    """
    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            state, storages = _load_zip(path)
        else:
            state, storages = _load_legacy(path)
    except (pickle.UnpicklingError, EOFError, KeyError, IndexError, TypeError, ValueError) as e:
        raise ValueError(f"not a PyTorch state dict ({type(e).__name__}: {e})") from None
    if not isinstance(state, dict):
        raise ValueError(f"holds a {type(state).__name__}, not a state dict")
    missing = [s.key for s in storages.values() if s.data is None]
    if missing:
        raise ValueError(f"storages {', '.join(missing[:3])} have no data")
    try:
        return {name: value.array() for name, value in state.items() if isinstance(value, _Tensor)}
    except ValueError as e:
        raise ValueError(f"not a PyTorch state dict ({e})") from None


def _load_zip(path: Path):
    with zipfile.ZipFile(path) as archive:
        pickled = next(n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl")
        prefix = pickled[: -len("data.pkl")]
        byteorder = f"{prefix}byteorder"
        if byteorder in archive.namelist() and archive.read(byteorder).strip() != b"little":
            raise ValueError("big-endian files are not supported")
        with archive.open(pickled) as f:
            unpickler = _StateDictUnpickler(f)
            state = unpickler.load()
        for storage in unpickler.storages.values():
            raw = archive.read(f"{prefix}data/{storage.key}")
            storage.data = np.frombuffer(raw, storage.dtype, count=storage.numel)
    return state, unpickler.storages


def _load_legacy(path: Path):
    with open(path, "rb") as f:
        header = _StateDictUnpickler(f)
        if header.load() != LEGACY_MAGIC:
            raise ValueError("no PyTorch magic number")
        header.load()  # protocol version
        if not header.load().get("little_endian", True):  # system info
            raise ValueError("big-endian files are not supported")
        unpickler = _StateDictUnpickler(f)
        state = unpickler.load()
        keys = _StateDictUnpickler(f).load()
        for key in keys:  # then each storage: int64 element count, raw little-endian data
            storage = unpickler.storages[str(key)]
            numel = int(np.frombuffer(f.read(8), "<i8")[0])
            raw = f.read(numel * storage.dtype.itemsize)
            if len(raw) != numel * storage.dtype.itemsize:
                raise ValueError(f"storage {key} is cut short")
            storage.data = np.frombuffer(raw, storage.dtype, count=numel)
    return state, unpickler.storages
