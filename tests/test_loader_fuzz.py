"""Loader fuzzing: mutated and truncated GGUF and safetensors files raise only LoadError, naming the file.

Small real files are written once per module (a random transformers model through the gguf
package's writer, and through ``save_pretrained``); Hypothesis then truncates them, flips bytes in
the header and tensor table, overwrites integer fields with extreme values, and (safetensors)
rewrites header entries' dtypes, shapes and offsets. Each load must either succeed or raise
:class:`LoadError` whose message names the file, within a per-example time limit (a hang fails).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import struct

import gguf
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rhojax.errors import LoadError
from rhojax.io.gguf_file import load_gguf
from rhojax.io.hf import load_hf_folder
from tests.gguf_writer import write_gguf
from tests.hf_reference import build_reference

SECONDS_PER_LOAD = 5
FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


class LoadTimeoutError(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: int):
    def expire(signum, frame):
        raise LoadTimeoutError(f"load took longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def load_or_load_error(load, path, named):
    """Run ``load(path)``: success, or a LoadError that names ``named``; anything else fails the test."""
    with time_limit(SECONDS_PER_LOAD):
        try:
            load(path)
        except LoadError as e:
            assert str(named) in str(e), str(e)
            assert "\n" not in str(e).strip()


def _structure_fields(reader: gguf.GGUFReader) -> list[tuple[int, np.dtype, int]]:
    """``(file offset, dtype, count)`` of every numeric part of every metadata key and tensor-info record
    (string lengths, value types, array lengths, n_dims, dims, tensor types, data offsets)."""
    base = reader.data.ctypes.data
    fields = [*reader.fields.values(), *(t.field for t in reader.tensors)]
    return [(part.ctypes.data - base, part.dtype, part.size) for f in fields for part in f.parts
            if part.dtype != np.uint8 and part.size]


@pytest.fixture(scope="module")
def gguf_file_parts(tmp_path_factory):
    """A tiny qwen2 GGUF with quantized (Q8_0) and float tensors; where its tensor data start; its fields."""
    folder = tmp_path_factory.mktemp("gguf")
    reference = build_reference("qwen2_bias_tied", folder)
    path = write_gguf(reference, "qwen2", folder / "tiny.gguf", qtype=gguf.GGMLQuantizationType.Q8_0)
    reader = gguf.GGUFReader(path)
    return path.read_bytes(), reader.data_offset, _structure_fields(reader)


@pytest.fixture(scope="module")
def safetensors_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hf")
    build_reference("llama_gqa_untied", folder)
    return folder


def _mutated(data: bytes, draw, limit: int) -> bytes:
    """``data`` with one mutation: truncation, byte flips, or an extreme integer written below ``limit``."""
    kind = draw(st.sampled_from(["truncate", "flip", "int"]))
    if kind == "truncate":
        return data[: draw(st.integers(0, len(data) - 1))]
    out = bytearray(data)
    if kind == "flip":
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, limit - 1))
            out[i] = draw(st.integers(0, 255))
        return bytes(out)
    i = draw(st.integers(0, limit - 8))
    value = draw(st.sampled_from([0, 1, 2**31 - 1, 2**32 - 1, 2**63 - 1, 2**64 - 1]))
    out[i : i + 8] = struct.pack("<Q", value)
    return bytes(out)


_EXTREMES = [0, 1, 2, 3, 7, 255, 2**31 - 1, 2**32 - 1, 2**63 - 1, 2**64 - 1]


def _field_edit(data: bytes, fields, draw) -> bytes:
    """Overwrite one numeric field of the header or tensor table (a shape, type, offset or length)."""
    offset, dtype, count = draw(st.sampled_from(fields))
    i = draw(st.integers(0, count - 1))
    if dtype.kind == "f":
        value = np.asarray(draw(st.floats(allow_nan=True, allow_infinity=True, width=32)), dtype)
    else:
        info = np.iinfo(dtype)
        value = np.asarray(draw(st.sampled_from([v for v in _EXTREMES if v <= info.max])), dtype)
    out = bytearray(data)
    at = offset + i * dtype.itemsize
    out[at : at + dtype.itemsize] = value.tobytes()
    return bytes(out)


@FUZZ
@given(data=st.data())
def test_fuzzed_gguf_raises_only_load_error(gguf_file_parts, data, tmp_path):
    original, data_offset, fields = gguf_file_parts
    if data.draw(st.booleans()):
        mutated = _field_edit(original, fields, data.draw)
    else:  # most byte-level mutations land in the header, metadata and tensor table too
        limit = data.draw(st.sampled_from([data_offset, data_offset, len(original)]))
        mutated = _mutated(original, data.draw, limit)
    path = tmp_path / "fuzzed.gguf"
    path.write_bytes(mutated)
    load_or_load_error(load_gguf, path, path)


def _header(data: bytes) -> tuple[dict, bytes]:
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + n]), data[8 + n :]


def _with_header(header: dict, body: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + body


_JSON_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.text(max_size=4),
    st.lists(st.integers(-(2**40), 2**40), max_size=4),
)


@st.composite
def _entry_edit(draw, header: dict):
    """Rewrite one field of one tensor entry: dtype, shape, data_offsets, or drop a key."""
    name = draw(st.sampled_from(sorted(k for k in header if k != "__metadata__")))
    entry = dict(header[name])
    field = draw(st.sampled_from(["dtype", "shape", "data_offsets"]))
    if draw(st.booleans()):
        entry.pop(field)
    elif field == "dtype":
        entry["dtype"] = draw(st.one_of(st.sampled_from(["F16", "BF16", "I8", "F64", "U64", "Q4"]), _JSON_VALUES))
    elif field == "shape":
        entry["shape"] = draw(st.one_of(st.lists(st.integers(-3, 2**40), max_size=3), _JSON_VALUES))
    else:
        begin, end = entry["data_offsets"]
        entry["data_offsets"] = draw(st.one_of(
            st.tuples(st.integers(-10, end + 64), st.integers(-10, end + 64)).map(list), _JSON_VALUES
        ))
    return {**header, name: entry}


@FUZZ
@given(data=st.data())
def test_fuzzed_safetensors_raise_only_load_error(safetensors_folder, data, tmp_path):
    folder = tmp_path / "model"
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(safetensors_folder, folder)
    path = folder / "model.safetensors"
    original = path.read_bytes()
    if data.draw(st.booleans()):
        header, body = _header(original)
        mutated = _with_header(data.draw(_entry_edit(header)), body)
    else:
        mutated = _mutated(original, data.draw, 8 + struct.unpack("<Q", original[:8])[0])
    path.write_bytes(mutated)
    load_or_load_error(load_hf_folder, folder, folder)


def test_fuzz_harness_catches_a_hang(tmp_path):
    """The per-load limit really stops a load that never returns."""
    def hang(_):
        while True:
            np.sqrt(2.0)

    with pytest.raises(LoadTimeoutError), time_limit(1):
        hang(tmp_path)
