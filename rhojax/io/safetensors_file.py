"""A strict reader of ``.safetensors`` files (single or sharded) into NumPy arrays.

The format is an 8-byte little-endian header length, a JSON header mapping names to
``{dtype, shape, data_offsets}``, then the raw bytes. Reading it directly lets every defect
(truncation, inconsistent offsets, unknown dtype) be reported with the file and tensor name.
"""

from __future__ import annotations

import json
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
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise LoadError(f"{self.path}: corrupted safetensors header ({e})") from e
        header.pop("__metadata__", None)
        self._start = 8 + header_len
        self._data_size = size - self._start
        self._entries: dict[str, dict] = header

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def __getitem__(self, name: str) -> np.ndarray:
        entry = self._entries[name]
        dtype = _DTYPES.get(entry.get("dtype"))
        if dtype is None:
            raise LoadError(f"{self.path}: tensor {name} has unsupported dtype {entry.get('dtype')!r}")
        begin, end = entry["data_offsets"]
        shape = tuple(entry["shape"])
        expected = int(np.prod(shape)) * np.dtype(dtype).itemsize
        if end > self._data_size:
            raise LoadError(f"{self.path}: file is truncated: tensor {name} ends past the end of the file")
        if end - begin != expected:
            raise LoadError(
                f"{self.path}: corrupted tensor {name}: {end - begin} bytes for shape {shape} {entry['dtype']}"
            )
        return np.frombuffer(self._buffer, dtype=dtype, count=int(np.prod(shape)), offset=self._start + begin).reshape(
            shape
        )


class SafetensorsCheckpoint:
    """All tensors of a Hugging Face folder: ``model.safetensors`` or a sharded index."""

    def __init__(self, folder: Path):
        folder = Path(folder)
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

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._where:
            raise LoadError(f"missing tensor {name} in the checkpoint")
        return self._where[name][name]
