"""The packed format of a planned model: every block matrix stored in the compact form its plan action prices.

:func:`rhojax.plan.actions.apply_plan` gives the planned model in DENSE form (zeros, low-rank products and
dequantised values as float matrices). :func:`pack_matrix` recovers the stored pieces of one such matrix
``w`` (in, out), ``n = in * out`` weights, exactly as :mod:`rhojax.plan.costs` counts their bytes:

============ ============================================================ =====================================
action       pieces (dtype, shape)                                        bytes
============ ============================================================ =====================================
dense        ``weight`` (bf16, (in, out))                                 ``2 n``
prune        ``values`` (bf16, (k,)): the non-zeros in row-major order;   ``2 k + ceil(n / 8)`` (k: non-zeros)
             ``mask`` (uint8, (ceil(n / 8),)): ``np.packbits`` of
             ``w != 0`` flattened row-major (big-endian bit order)
N:M          ``values`` (bf16, (in N / M, out)): the N kept inputs of     ``2 k + ceil(k ceil(log2 M) / 8)``
             every group of M consecutive inputs, in input order;
             ``indices`` (uint8): their positions 0..M-1 in the group,
             ``ceil(log2 M)`` bits each (four per byte for 2:4)
lowrank r    ``left`` (bf16, (in, r)), ``right`` (bf16, (r, out)):        ``2 r (in + out)``
             ``U_r sqrt(S_r)`` and ``sqrt(S_r) V_r^T`` of the SVD of ``w``
RTN b, g     ``codes`` (uint8): ``q + qmax`` in 0..2 qmax, b bits each;   ``ceil(n b / 8) + 2 n / g``
             ``scales`` (bf16, (in / g, out)): the step of each group
============ ============================================================ =====================================

Bit streams (``indices``, ``codes``) hold the values in row-major order of their array, each value's bits
least significant first, packed into bytes with ``np.packbits(..., bitorder="little")``. RTN is the
symmetric grid of :func:`rhojax.compress.quantize.rtn_quantize`: ``w = s q`` with ``q`` in
``-qmax..qmax``, ``qmax = 2^(b-1) - 1`` and ``s = max|w| / qmax`` over a group of ``g`` consecutive inputs
of one output channel (``g = in`` for one scale per output channel), so the step is recovered as the
group's largest ``|w|`` over ``qmax``. A matrix without the structure its action claims (more non-zeros
than the sparsity keeps, an N:M group with more than N, rank above r, values off the RTN grid) is refused.

The only rounding is bfloat16 storage of values, factors and scales (relative error at most ``2^-8``, the unit
roundoff of an 8-bit significand); RTN codes, masks and indices are exact. :func:`unpack_matrix` returns float32.

A packed folder (:func:`save_packed`) holds ``packed.safetensors``: the pieces of every kept block matrix
as ``blocks.{layer}.{kind}.{piece}`` with ``layer`` in the ORIGINAL numbering, every other tensor
(embeddings, norms, biases, head) in float32 as :func:`rhojax.io.save_hf.save_hf` writes it, as
``{path}`` or ``blocks.{layer}.{path}`` with ``/`` written ``.``; ``packed.json``: the format and its
version, the planned model's config (removed blocks deleted), the kept layers' original numbers, the plan
(as plan.json writes it) and the block-matrix payload bytes; the tokenizer files when given.
:func:`load_packed` rebuilds the model :func:`rhojax.plan.actions.apply_plan` gives, up to that rounding.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import ml_dtypes
import numpy as np
from safetensors.numpy import load_file, save_file

from rhojax.depth.prune import kept_layers
from rhojax.errors import LoadError, RhojaxError
from rhojax.io.atomic import atomic_folder
from rhojax.io.safetensors_file import SafetensorsFile
from rhojax.models.config import ModelConfig
from rhojax.models.params import assemble_params, block_spec, param_at, top_spec
from rhojax.plan.actions import Action, Plan

FORMAT = "rhojax-packed"
VERSION = 1
TENSORS = "packed.safetensors"
MANIFEST = "packed.json"
#: The stored pieces of a block matrix (the last part of their tensor names).
PIECES = frozenset({"weight", "values", "mask", "indices", "left", "right", "codes", "scales"})
#: A low-rank matrix may have singular values beyond its rank up to this fraction of the largest (float32
#: noise of the operator), below the bfloat16 rounding ``2^-8`` its stored factors make anyway.
RANK_TOL = 1e-3
#: An RTN value may lie this far (in steps) from the grid: float32 is exact to ~1e-6, a bfloat16 model's
#: ``q s`` to ``qmax 2^-8`` (0.027 at 4 bits); a matrix that was never quantised is off by up to 0.5.
GRID_TOL = 0.05

Pieces = dict[str, np.ndarray]


def bf16(a) -> np.ndarray:
    """``a`` rounded to bfloat16 (round to nearest even), as ``ml_dtypes.bfloat16``."""
    return np.asarray(a, np.float32).astype(ml_dtypes.bfloat16)


def pack_bits(values: np.ndarray, bits: int) -> np.ndarray:
    """Unsigned ``values`` (< 2^bits) as a uint8 bit stream of ``ceil(size * bits / 8)`` bytes."""
    flat = np.asarray(values, np.int64).reshape(-1)
    planes = (flat[:, None] >> np.arange(bits)) & 1
    return np.packbits(planes.astype(np.uint8).reshape(-1), bitorder="little")


def unpack_bits(stream: np.ndarray, bits: int, count: int) -> np.ndarray:
    """The ``count`` values of :func:`pack_bits`'s ``stream`` (int64)."""
    planes = np.unpackbits(stream, count=count * bits, bitorder="little").reshape(count, bits)
    return planes.astype(np.int64) @ (1 << np.arange(bits))


def index_bits(m: int) -> int:
    """Bits of an index into a group of ``m``: ``ceil(log2 m)``."""
    return max(1, math.ceil(math.log2(m)))


def _refuse(site, action: Action, what: str):
    where = "matrix" if site is None else f"layer {site[0]} {site[1]}"
    raise RhojaxError(f"{where}: not a {action.name} matrix ({what}); pack the output of apply_plan for this plan")


def _rtn_groups(action: Action, shape: tuple[int, int]) -> tuple[int, int]:
    """``(qmax, group size)`` of an RTN action on a matrix of ``shape``."""
    size = shape[0] if action.group_size is None else int(action.group_size)
    if shape[0] % size:
        raise RhojaxError(f"{action.name}: the group size {size} does not divide the input size {shape[0]}")
    return 2 ** (int(action.level) - 1) - 1, size


def pack_matrix(action: Action, w, site: tuple[int, str] | None = None) -> Pieces:
    """The stored pieces (module table) of ``w`` (in, out), the dense form of a matrix under ``action``;
    ``site`` (layer, kind) names the matrix in errors."""
    w = np.asarray(w, np.float32)
    fan_in, fan_out = w.shape
    if action.op == "dense":
        return {"weight": bf16(w)}
    if action.op == "prune":
        mask = w != 0
        # the cost model's k = n - round(s n), up to the operators' rounding: Wanda drops round(s in) of every output
        # channel, SparseGPT round(s b out) of every block of b inputs, so they may keep up to half a weight more
        # per channel or block; out more non-zeros are allowed, and the packed bytes then differ from 2 k by those
        keep = w.size - round(action.level * w.size) + fan_out
        if mask.sum() > keep:
            _refuse(site, action, f"{int(mask.sum())} non-zeros, the sparsity keeps at most {keep}")
        return {"values": bf16(w[mask]), "mask": np.packbits(mask.reshape(-1))}
    if action.op == "nm":
        n, m = action.nm
        if fan_in % m:
            _refuse(site, action, f"the input size {fan_in} is not a multiple of {m}")
        groups = w.reshape(fan_in // m, m, fan_out)
        nonzero = groups != 0
        if (nonzero.sum(axis=1) > n).any():
            _refuse(site, action, f"a group of {m} inputs has more than {n} non-zeros")
        # the non-zeros first (then zeros, when a group has fewer than n), each in input order
        order = np.argsort(np.where(nonzero, 0, m) + np.arange(m)[:, None], axis=1, kind="stable")
        index = np.sort(order[:, :n], axis=1)
        values = np.take_along_axis(groups, index, axis=1).reshape(-1, fan_out)
        return {"values": bf16(values), "indices": pack_bits(index, index_bits(m))}
    if action.op == "lowrank":
        rank = int(action.level)
        u, s, vt = np.linalg.svd(w.astype(np.float64), full_matrices=False)
        if rank < s.size and s[rank] > RANK_TOL * s[0]:
            _refuse(site, action, f"singular value {rank + 1} is {s[rank] / s[0]:.2g} of the largest")
        root = np.sqrt(s[:rank])
        return {"left": bf16(u[:, :rank] * root), "right": bf16(root[:, None] * vt[:rank])}
    if action.op == "rtn":
        qmax, size = _rtn_groups(action, w.shape)
        groups = w.astype(np.float64).reshape(fan_in // size, size, fan_out)
        step = np.abs(groups).max(axis=1) / qmax
        ratio = groups / np.where(step > 0, step, 1.0)[:, None]
        codes = np.rint(ratio)
        off = np.abs(ratio - codes).max()
        if off > GRID_TOL:
            _refuse(site, action, f"a value lies {off:.2f} steps off the grid of its group")
        return {"codes": pack_bits(codes.astype(np.int64) + qmax, int(action.level)), "scales": bf16(step)}
    raise RhojaxError(f"action {action.name!r} stores no matrix: a removed block has no pieces")


def unpack_matrix(action: Action, pieces: Pieces, shape: tuple[int, int]) -> np.ndarray:
    """The float32 matrix of ``shape`` (in, out) stored as ``pieces`` (inverse of :func:`pack_matrix`)."""
    fan_in, fan_out = shape
    p = {k: np.asarray(v) for k, v in pieces.items()}
    if action.op == "dense":
        return p["weight"].astype(np.float32)
    if action.op == "prune":
        mask = np.unpackbits(p["mask"], count=fan_in * fan_out).astype(bool)
        out = np.zeros(fan_in * fan_out, np.float32)
        out[mask] = p["values"].astype(np.float32)
        return out.reshape(shape)
    if action.op == "nm":
        n, m = action.nm
        count = fan_in // m * n * fan_out
        index = unpack_bits(p["indices"], index_bits(m), count).reshape(fan_in // m, n, fan_out)
        groups = np.zeros((fan_in // m, m, fan_out), np.float32)
        values = p["values"].astype(np.float32).reshape(fan_in // m, n, fan_out)
        np.put_along_axis(groups, index, values, axis=1)
        return groups.reshape(shape)
    if action.op == "lowrank":
        return (p["left"].astype(np.float32) @ p["right"].astype(np.float32)).astype(np.float32)
    if action.op == "rtn":
        qmax, size = _rtn_groups(action, shape)
        codes = unpack_bits(p["codes"], int(action.level), fan_in * fan_out) - qmax
        grouped = codes.reshape(fan_in // size, size, fan_out).astype(np.float32)
        return (grouped * p["scales"].astype(np.float32)[:, None]).reshape(shape)
    raise RhojaxError(f"action {action.name!r} stores no matrix: a removed block has no pieces")


def payload_bytes(pieces: Pieces) -> int:
    """Bytes of one matrix's stored pieces (compare with ``action.cost(shape).bytes``)."""
    return sum(int(a.nbytes) for a in pieces.values())


def _name(path: str, layer: int | None = None) -> str:
    return path.replace("/", ".") if layer is None else f"blocks.{layer}.{path.replace('/', '.')}"


def packed_tensors(config: ModelConfig, params: dict, plan: Plan) -> dict[str, np.ndarray]:
    """Every tensor of the packed file (module docstring) of the planned ``(config, params)``."""
    original = config.replace(num_layers=config.num_layers + len(plan.removed))
    kept = kept_layers(original.num_layers, plan.removed)
    tensors = {_name(path): np.asarray(param_at(params, path), np.float32) for path in top_spec(config)}
    matrices = {f"{kind}/w": kind for kind in config.site_kinds}
    for path in block_spec(config):
        stacked = np.asarray(param_at(params, f"blocks/{path}"))
        if stacked.shape[0] != config.num_layers:
            raise RhojaxError(f"params blocks/{path} has {stacked.shape[0]} layers, the planned config "
                              f"{config.num_layers}: pass apply_plan's output (removed blocks deleted)")
        for i, layer in enumerate(kept.tolist()):
            if path in matrices:
                kind = matrices[path]
                pieces = pack_matrix(plan.action(layer, kind), stacked[i], site=(layer, kind))
                tensors |= {f"{_name(path.split('/')[0], layer)}.{k}": v for k, v in pieces.items()}
            else:
                tensors[_name(path, layer)] = stacked[i].astype(np.float32)
    return tensors


def save_packed(config: ModelConfig, params: dict, plan: Plan, folder: str | Path, *, tokenizer=None) -> Path:
    """Write the planned model ``(config, params)`` (:func:`rhojax.plan.actions.apply_plan`'s output, removed
    blocks deleted) as a packed folder (module docstring), atomically; an existing folder is replaced."""
    folder = Path(folder)
    tensors = packed_tensors(config, params, plan)
    original = config.replace(num_layers=config.num_layers + len(plan.removed))
    manifest = {"format": FORMAT, "version": VERSION, "config": config.to_dict(),
                "kept_layers": kept_layers(original.num_layers, plan.removed).tolist(),
                "plan": plan.to_dict(original), "other_tensors_dtype": "float32",
                "block_matrix_bytes": sum(int(a.nbytes) for k, a in tensors.items() if _is_piece(k))}
    with atomic_folder(folder, MANIFEST, "packed model") as tmp:
        save_file(tensors, str(tmp / TENSORS), metadata={"format": FORMAT})
        if tokenizer is not None:
            tokenizer.backend.save_pretrained(str(tmp))
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return folder


def _is_piece(name: str) -> bool:
    parts = name.split(".")
    return len(parts) == 4 and parts[0] == "blocks" and parts[3] in PIECES


def read_manifest(folder: str | Path) -> dict:
    """``folder/packed.json``, checked for the format and version this code reads."""
    path = Path(folder) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise LoadError(f"{path}: cannot read the packed model's manifest ({e})") from e
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise LoadError(f"{path}: format {manifest.get('format')!r} version {manifest.get('version')!r}, this "
                        f"rhojax reads {FORMAT!r} version {VERSION}")
    return manifest


def load_packed(folder: str | Path) -> tuple[ModelConfig, dict]:
    """The planned model of a packed folder as ``(config, params)`` (float32 jax arrays, removed blocks
    deleted), the structure :func:`rhojax.plan.actions.apply_plan` gives."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    config = ModelConfig.from_dict(manifest["config"])
    plan = Plan.from_dict(manifest["plan"])
    kept = [int(i) for i in manifest["kept_layers"]]
    try:
        tensors = load_file(str(folder / TENSORS))
    except (OSError, ValueError) as e:
        raise LoadError(f"{folder / TENSORS}: cannot read the packed tensors ({e})") from e
    matrices = {f"{kind}/w": kind for kind in config.site_kinds}

    def get(name: str) -> np.ndarray:
        if name not in tensors:
            raise LoadError(f"{folder / TENSORS}: tensor {name} is missing")
        return tensors[name]

    def fetch(path: str, layer: int | None) -> np.ndarray:
        if layer is None:
            return get(_name(path))
        original = kept[layer]
        if path not in matrices:
            return get(_name(path, original))
        kind = matrices[path]
        action = plan.action(original, kind)
        prefix = _name(kind, original)
        pieces = {piece: tensors[f"{prefix}.{piece}"] for piece in PIECES if f"{prefix}.{piece}" in tensors}
        try:
            return unpack_matrix(action, pieces, config.site_shape(kind))
        except (KeyError, ValueError) as e:
            raise LoadError(f"{folder / TENSORS}: layer {original} {kind} does not hold {action.name}'s pieces "
                            f"({e})") from e

    return config, assemble_params(config, fetch, source=str(folder))


def packed_bytes(folder: str | Path) -> int:
    """Payload bytes of the block-matrix pieces in ``folder/packed.safetensors`` (from its header, nothing
    else read): the stored counterpart of ``Plan.cost(config).bytes``."""
    tensors = SafetensorsFile(Path(folder) / TENSORS)  # header checked; tensors mapped, not read
    return sum(int(tensors[name].nbytes) for name in tensors.names() if _is_piece(name))
