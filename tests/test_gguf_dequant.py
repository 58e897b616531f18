"""The GGUF dequantisation rhojax loads with, for every block type the packaged models use, against
plain NumPy decoders of the ggml block layouts written here (one loop per block, from ggml-quants.c)."""

from __future__ import annotations

import gguf
import numpy as np
import pytest

from rhojax.io.gguf_file import dequantize, open_gguf

Q = gguf.GGMLQuantizationType


def _f16(b: np.ndarray) -> float:
    return float(b[:2].copy().view(np.float16)[0])


def _k_scale_min(j: int, s: np.ndarray) -> tuple[int, int]:
    """ggml's get_scale_min_k4: 6-bit scale and min ``j`` of the 12 packed bytes ``s``."""
    if j < 4:
        return s[j] & 63, s[j + 4] & 63
    return (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4), (s[j + 4] >> 4) | ((s[j] >> 6) << 4)


def q4_0(b):
    d, qs = _f16(b), b[2:18].astype(int)
    return d * (np.concatenate([qs & 0xF, qs >> 4]) - 8)


def q4_1(b):
    d, m, qs = _f16(b), _f16(b[2:]), b[4:20].astype(int)
    return d * np.concatenate([qs & 0xF, qs >> 4]) + m


def _q5(qs, qh_bytes):
    qh = int.from_bytes(bytes(qh_bytes), "little")
    high = np.array([(qh >> i) & 1 for i in range(32)]) << 4
    return np.concatenate([qs & 0xF, qs >> 4]) | high


def q5_0(b):
    return _f16(b) * (_q5(b[6:22].astype(int), b[2:6]) - 16)


def q5_1(b):
    return _f16(b) * _q5(b[8:24].astype(int), b[4:8]) + _f16(b[2:])


def q8_0(b):
    return _f16(b) * b[2:34].view(np.int8).astype(float)


def q4_k(b):
    d, dmin, scales, qs = _f16(b), _f16(b[2:]), b[4:16].astype(int), b[16:144].astype(int)
    out = []
    for chunk in range(4):
        q = qs[32 * chunk : 32 * chunk + 32]
        for half, nibbles in enumerate((q & 0xF, q >> 4)):
            sc, m = _k_scale_min(2 * chunk + half, scales)
            out.append(d * sc * nibbles - dmin * m)
    return np.concatenate(out)


def q5_k(b):
    d, dmin, scales = _f16(b), _f16(b[2:]), b[4:16].astype(int)
    qh, qs = b[16:48].astype(int), b[48:176].astype(int)
    out = []
    for chunk in range(4):
        q = qs[32 * chunk : 32 * chunk + 32]
        for half, nibbles in enumerate((q & 0xF, q >> 4)):
            sc, m = _k_scale_min(2 * chunk + half, scales)
            high = ((qh >> (2 * chunk + half)) & 1) << 4
            out.append(d * sc * (nibbles + high) - dmin * m)
    return np.concatenate(out)


def q6_k(b):
    ql, qh, sc, d = b[:128].astype(int), b[128:192].astype(int), b[192:208].view(np.int8).astype(int), _f16(b[208:])
    y = np.zeros(256)
    for n in range(2):
        l_, h_, s_ = ql[64 * n :], qh[32 * n :], sc[8 * n :]
        for i in range(32):
            j = i // 16
            q1 = ((l_[i] & 0xF) | ((h_[i] & 3) << 4)) - 32
            q2 = ((l_[i + 32] & 0xF) | (((h_[i] >> 2) & 3) << 4)) - 32
            q3 = ((l_[i] >> 4) | (((h_[i] >> 4) & 3) << 4)) - 32
            q4 = ((l_[i + 32] >> 4) | (((h_[i] >> 6) & 3) << 4)) - 32
            base = 128 * n + i
            y[base], y[base + 32] = d * s_[j] * q1, d * s_[j + 2] * q2
            y[base + 64], y[base + 96] = d * s_[j + 4] * q3, d * s_[j + 6] * q4
    return y


#: type -> (block decoder, byte offsets of the float16 fields, which must be finite in random blocks)
DECODERS = {
    Q.Q4_0: (q4_0, (0,)),
    Q.Q4_1: (q4_1, (0, 2)),
    Q.Q5_0: (q5_0, (0,)),
    Q.Q5_1: (q5_1, (0, 2)),
    Q.Q8_0: (q8_0, (0,)),
    Q.Q4_K: (q4_k, (0, 2)),
    Q.Q5_K: (q5_k, (0, 2)),
    Q.Q6_K: (q6_k, (208,)),
}


def _decode(qtype, raw: np.ndarray) -> np.ndarray:
    """Plain decoding of ``raw`` (rows, bytes per row) with the block decoder of ``qtype``."""
    block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
    decoder = DECODERS[qtype][0]
    blocks = raw.reshape(-1, type_size)
    return np.concatenate([decoder(b) for b in blocks]).reshape(raw.shape[0], -1)


def _random_blocks(qtype, rows: int, blocks_per_row: int, rng) -> np.ndarray:
    _, type_size = gguf.GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(rows * blocks_per_row, type_size), dtype=np.uint8)
    for offset in DECODERS[qtype][1]:
        raw[:, offset : offset + 2] = rng.uniform(-2, 2, size=(len(raw), 1)).astype(np.float16).view(np.uint8)
    return raw.reshape(rows, blocks_per_row * type_size)


@pytest.mark.parametrize("qtype", list(DECODERS), ids=lambda q: q.name)
def test_dequantize_matches_the_block_layout(qtype, tmp_path):
    """Random blocks (every bit pattern of the quants, finite scales), written to a GGUF file and read back."""
    rng = np.random.default_rng(int(qtype))
    raw = _random_blocks(qtype, rows=3, blocks_per_row=2, rng=rng)
    path = tmp_path / "blocks.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_tensor("t", raw, raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    (tensor,) = open_gguf(path).tensors
    ours = dequantize(tensor, path)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, _decode(qtype, raw), rtol=1e-6, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["smollm2-135m", "qwen2.5-coder-0.5b", "gemma3-270m", "qwen2.5-coder-1.5b"])
def test_packaged_models_use_only_tested_types(name):
    """Every tensor type of each packaged GGUF is float or has a decoder above; real blocks agree too."""
    from rhojax.io.resolve import PACKAGED_MODELS, packaged_file

    path = packaged_file(PACKAGED_MODELS[name])
    reader = open_gguf(path)
    seen = {}  # the smallest tensor of each type
    for tensor in reader.tensors:
        assert tensor.tensor_type in (Q.F32, Q.F16, *DECODERS), (tensor.name, tensor.tensor_type.name)
        if tensor.n_elements < getattr(seen.get(tensor.tensor_type), "n_elements", np.inf):
            seen[tensor.tensor_type] = tensor
    for qtype, tensor in seen.items():
        if qtype in DECODERS:
            rows = np.asarray(tensor.data[:2])  # two rows of real blocks
            np.testing.assert_allclose(dequantize(tensor, path)[:2], _decode(qtype, rows), rtol=1e-6, atol=1e-6)
