"""A strict reader of ``.safetensors`` files (single or sharded) into NumPy arrays.

The format is an 8-byte little-endian header length, a JSON header mapping names to
``{dtype, shape, data_offsets}``, then the raw bytes. Reading it directly lets every defect
(truncation, inconsistent offsets, unknown dtype) be reported with the file and tensor name.
"""

from __future__ import annotations

import json
import math
import mmap
import struct
from pathlib import Path

import ml_dtypes
import numpy as np

from rhojax.errors import LoadError

_DTYPES = {
    "F64": np.float64,
    "F32": np.float32,
    "F16": np.float16,
    "BF16": ml_dtypes.bfloat16,
    "I64": np.int64,
    "I32": np.int32,
    "I16": np.int16,
    "I8": np.int8,
    "U8": np.uint8,
    "BOOL": np.bool_,
}


class SafetensorsFile:
    """Lazily readable tensors of one safetensors file; ``file[name]`` returns a NumPy array."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            with open(self.path, "rb") as f:
                self._buffer = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as e:
            raise LoadError(f"{self.path}: cannot read safetensors file ({e})") from e
        size = len(self._buffer)
        if size < 8:
            raise LoadError(f"{self.path}: truncated safetensors file ({size} bytes)")
        (header_len,) = struct.unpack("<Q", self._buffer[:8])
        if header_len > size - 8:
            raise LoadError(f"{self.path}: corrupted safetensors header (length {header_len} > file size {size})")
        try:
            header = json.loads(bytes(self._buffer[8 : 8 + header_len]))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
            raise LoadError(f"{self.path}: corrupted safetensors header ({type(e).__name__}: {e})") from e
        if not isinstance(header, dict):
            raise LoadError(f"{self.path}: corrupted safetensors header (not a JSON object)")
        header.pop("__metadata__", None)
        self._start = 8 + header_len
        self._data_size = size - self._start
        self._entries: dict[str, dict] = {name: self._checked(name, entry) for name, entry in header.items()}

    def _checked(self, name: str, entry) -> dict:
        """The header entry of ``name`` after checking its dtype, shape and byte range against the file."""
        if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= set(entry):
            raise LoadError(
                f"{self.path}: corrupted safetensors header: entry {name!r} needs dtype, shape, data_offsets"
            )
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if not isinstance(dtype, str) or dtype not in _DTYPES:
            raise LoadError(f"{self.path}: tensor {name} has unsupported dtype {dtype!r}")
        if not isinstance(shape, list) or not all(type(n) is int and n >= 0 for n in shape):
            raise LoadError(f"{self.path}: corrupted tensor {name}: shape {shape!r} is not a list of sizes")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(n) is int and n >= 0 for n in offsets)
                and offsets[0] <= offsets[1]):
            raise LoadError(f"{self.path}: corrupted tensor {name}: data_offsets {offsets!r} are not a byte range")
        begin, end = offsets
        if end > self._data_size:
            raise LoadError(f"{self.path}: file is truncated: tensor {name} ends past the end of the file")
        expected = math.prod(shape) * np.dtype(_DTYPES[dtype]).itemsize
        if end - begin != expected:
            raise LoadError(
                f"{self.path}: corrupted tensor {name}: {end - begin} bytes for shape {tuple(shape)} {dtype}"
            )
        return {"dtype": _DTYPES[dtype], "shape": tuple(shape), "begin": begin}

    def names(self) -> list[str]:
        return list(self._entries)

    def release(self) -> None:
        """Drop the file's pages from this process's resident memory (they are read again when used).

        The mapping is read-only and file-backed, so this loses nothing: a streamed model calls it after
        converting each block, so the resident size stays near one block rather than the whole file.
        """
        if hasattr(mmap, "MADV_DONTNEED"):
            self._buffer.madvise(mmap.MADV_DONTNEED)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def __getitem__(self, name: str) -> np.ndarray:
        """The tensor ``name`` as a read-only NumPy view of the file (checked when the file was opened)."""
        e = self._entries[name]
        count = math.prod(e["shape"])
        return np.frombuffer(self._buffer, dtype=e["dtype"], count=count, offset=self._start + e["begin"]).reshape(
            e["shape"]
        )


class SafetensorsCheckpoint:
    """All tensors of a Hugging Face folder: ``model.safetensors`` or a sharded index."""

    def __init__(self, folder: Path):
        folder = Path(folder)
        self.folder = folder
        index = folder / "model.safetensors.index.json"
        if index.exists():
            try:
                weight_map: dict[str, str] = json.loads(index.read_text())["weight_map"]
            except (json.JSONDecodeError, KeyError) as e:
                raise LoadError(f"{index}: not a valid safetensors index (needs a 'weight_map')") from e
            files = {name: SafetensorsFile(folder / name) for name in sorted(set(weight_map.values()))}
            self._where = {tensor: files[name] for tensor, name in weight_map.items()}
        else:
            single = folder / "model.safetensors"
            if not single.exists():
                raise LoadError(
                    f"{folder}: no model.safetensors or model.safetensors.index.json "
                    "(PyTorch .bin checkpoints are not read: re-save with safe_serialization=True)"
                )
            f = SafetensorsFile(single)
            self._where = {tensor: f for tensor in f.names()}

    def __contains__(self, name: str) -> bool:
        return name in self._where

    def release(self) -> None:
        """:meth:`SafetensorsFile.release` for every file of the checkpoint."""
        for f in set(self._where.values()):
            f.release()

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._where:
            raise LoadError(f"{self.folder}: missing tensor {name} in the checkpoint")
        return self._where[name][name]
