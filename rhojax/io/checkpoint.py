"""rhojax checkpoints (orbax) and the converted-params cache built on them.

A checkpoint is a folder::

    params/                  the params pytree, written by orbax's PyTree handler, uncompressed and
                             one zarr array per tensor (no OCDBT): the fastest restore we measured
    rhojax_checkpoint.json   completion marker: format, config, dtype, metadata, and the size and
                             CRC-32 of every file under params/
    tokenizer files          when a tokenizer was given (so ``load_model(folder)`` has one)

It is written atomically: everything goes into a temporary sibling folder, the marker is written
last, and the folder is renamed into place. Loading checks the marker's file list (sizes and
CRC-32), restores the tree against the shapes the config implies, and checks every array is
finite; any failure is a :class:`LoadError`, so a partial or corrupted checkpoint is never used.

**The cache.** Converting a GGUF (dequantisation) or a Hugging Face folder (transposes, stacking)
is slow; :func:`cached_load` converts once and keeps the float params as a checkpoint under
``$RHOJAX_CACHE/params/`` (default ``~/.cache/rhojax``), keyed by the source's identity (resolved
path, and size and modification time of every source file) and the dtype. Later loads restore it;
a damaged entry is deleted and rebuilt from the source; a new version of a source replaces the
entries of its older versions, and entries of sources that no longer exist are deleted. Sources
under :data:`CACHE_MIN_BYTES` are not cached.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import json
import logging
import os
import shutil
import zlib
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np

from rhojax.errors import LoadError, RhojaxError
from rhojax.io.atomic import atomic_folder
from rhojax.models.config import ModelConfig
from rhojax.models.params import block_spec, top_spec

FORMAT = 1
MARKER = "rhojax_checkpoint.json"
#: Sources smaller than this are converted on every load (caching them would not save time).
CACHE_MIN_BYTES = 32 * 2**20


def _files(folder: Path) -> dict[str, dict]:
    """``{relative path: {size, crc32}}`` of every file under ``folder``."""
    out = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        crc = 0
        with open(path, "rb") as f:
            while chunk := f.read(1 << 24):
                crc = zlib.crc32(chunk, crc)
        out[str(path.relative_to(folder))] = {"size": path.stat().st_size, "crc32": crc}
    return out


def _abstract_params(config: ModelConfig, dtype) -> dict:
    """The params tree of ``config`` as ``jax.ShapeDtypeStruct`` leaves (the restore target)."""
    tree: dict = {}
    flat = dict(top_spec(config)) | {f"blocks/{p}": (config.num_layers, *s) for p, s in block_spec(config).items()}
    for path, shape in flat.items():
        *parents, leaf = path.split("/")
        node = tree
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = jax.ShapeDtypeStruct(shape, dtype)
    return tree


def _checkpointer():
    import orbax.checkpoint as ocp

    return ocp.Checkpointer(ocp.PyTreeCheckpointHandler(use_compression=False, use_ocdbt=False))


@contextlib.contextmanager
def _quiet_orbax():
    """Orbax logs every save and restore at INFO/WARNING through absl; keep the console clean."""
    logger = logging.getLogger("absl")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def save_checkpoint(
    config: ModelConfig, params: dict, folder: str | Path, *, tokenizer=None, metadata: dict | None = None
) -> Path:
    """Write ``(config, params)`` (and the tokenizer) as a checkpoint folder, atomically; an existing
    checkpoint at ``folder`` is replaced. ``metadata`` (JSON) is kept in the marker."""
    import orbax.checkpoint as ocp

    folder = Path(folder)
    leaves = jax.tree.leaves(params)
    dtypes = {str(a.dtype) for a in leaves}
    if len(dtypes) != 1:
        raise RhojaxError(f"{folder}: params mix dtypes {sorted(dtypes)}; cast them to one dtype first")
    with atomic_folder(folder, MARKER, "rhojax checkpoint") as tmp:
        with _quiet_orbax(), _checkpointer() as checkpointer:
            checkpointer.save((tmp / "params").absolute(), args=ocp.args.PyTreeSave(params))
        if tokenizer is not None:
            tokenizer.backend.save_pretrained(str(tmp))
        marker = {"format": FORMAT, "config": config.to_dict(), "dtype": dtypes.pop(),
                  "metadata": metadata or {}, "files": _files(tmp / "params")}
        (tmp / MARKER).write_text(json.dumps(marker, indent=1) + "\n")
    return folder


def is_checkpoint(folder: str | Path) -> bool:
    return (Path(folder) / MARKER).is_file()


def read_marker(folder: str | Path) -> dict:
    """The marker of a checkpoint folder, or a :class:`LoadError` saying it is not a complete one."""
    path = Path(folder) / MARKER
    try:
        marker = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise LoadError(f"{folder}: not a complete rhojax checkpoint ({MARKER}: {e})") from e
    if marker.get("format") != FORMAT:
        raise LoadError(f"{folder}: checkpoint format {marker.get('format')!r}, this rhojax reads {FORMAT}")
    return marker


def load_checkpoint(folder: str | Path) -> tuple[ModelConfig, dict]:
    """``(config, params)`` of a checkpoint folder, verified (see the module docstring).

    The files' CRC-32 is computed in a thread while orbax restores the arrays straight into device
    buffers (no NumPy copy), and one compiled reduction checks every tensor is finite.
    """
    import orbax.checkpoint as ocp

    folder = Path(folder)
    marker = read_marker(folder)
    config = ModelConfig.from_dict(marker["config"])
    abstract = _abstract_params(config, np.dtype(marker["dtype"]))
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        files = pool.submit(_files, folder / "params")
        try:
            sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
            restore_args = jax.tree.map(lambda a: ocp.ArrayRestoreArgs(sharding=sharding), abstract)
            with _quiet_orbax(), _checkpointer() as checkpointer:
                params = checkpointer.restore((folder / "params").absolute(),
                                              args=ocp.args.PyTreeRestore(item=abstract, restore_args=restore_args))
            error = None
        except Exception as e:  # orbax/tensorstore raise many types on damaged data
            params, error = None, e
        if files.result() != marker["files"]:
            raise LoadError(f"{folder}: checkpoint files are missing, truncated or corrupted (size/CRC mismatch); "
                            "delete the folder and save it again")
    if error is not None:
        raise LoadError(f"{folder}: cannot restore the checkpoint ({type(error).__name__}: {error})") from error
    paths = [path for path, _ in jax.tree_util.tree_leaves_with_path(params)]
    for path, leaf in zip(paths, jax.tree.leaves(params), strict=True):
        want = _leaf_at(abstract, path)
        if leaf.shape != want.shape or leaf.dtype != want.dtype:
            raise LoadError(f"{folder}: tensor {jax.tree_util.keystr(path)} has shape {leaf.shape} {leaf.dtype}, "
                            f"expected {want.shape} {want.dtype}")
    finite = np.asarray(_all_finite(jax.tree.leaves(params)))
    if not finite.all():
        path = paths[int(np.argmin(finite))]
        raise LoadError(f"{folder}: tensor {jax.tree_util.keystr(path)} contains NaN or Inf values")
    return config, params


@jax.jit
def _all_finite(leaves: list[jax.Array]) -> jax.Array:
    """(n,) bool: whether each array of ``leaves`` is free of NaN and Inf (one compiled pass)."""
    return jax.numpy.stack([jax.numpy.isfinite(x).all() for x in leaves])


def _leaf_at(tree: dict, path: tuple):
    for p in path:
        tree = tree[p.key]
    return tree


def source_files(path: Path) -> list[Path]:
    """The files a GGUF file or a Hugging Face folder is converted from."""
    if path.is_file():
        return [path]
    return sorted(p for p in path.iterdir() if p.name == "config.json" or p.suffix == ".safetensors"
                  or p.name.endswith(".safetensors.index.json"))


def cache_root() -> Path:
    """$RHOJAX_CACHE or ~/.cache/rhojax."""
    return Path(os.environ.get("RHOJAX_CACHE", Path.home() / ".cache" / "rhojax"))


def cache_entry(path: Path, dtype: str) -> Path:
    """``params/<hash of the resolved path>/<hash of the files' names, sizes, mtimes, the dtype>``."""
    path = Path(path).resolve()
    identity = [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in source_files(path)]
    where = hashlib.sha256(str(path).encode()).hexdigest()[:16]
    what = hashlib.sha256(json.dumps([FORMAT, dtype, identity]).encode()).hexdigest()[:16]
    return cache_root() / "params" / where / f"{what}-{dtype}"


def cached_load(
    path: Path, dtype: str, convert: Callable[[], tuple[ModelConfig, dict]], *, min_bytes: int | None = None
) -> tuple[ModelConfig, dict]:
    """``convert()``'s result, restored from the cache when a valid entry exists, else converted and cached.

    Sources smaller than ``min_bytes`` (default :data:`CACHE_MIN_BYTES`) are always converted. A cache
    that cannot be written (read-only, disk full) only costs the speed-up.
    """
    min_bytes = CACHE_MIN_BYTES if min_bytes is None else min_bytes
    if sum(p.stat().st_size for p in source_files(Path(path))) < min_bytes:
        return convert()
    entry = cache_entry(path, dtype)
    if entry.exists():
        try:
            return load_checkpoint(entry)
        except LoadError:
            shutil.rmtree(entry, ignore_errors=True)  # damaged: rebuilt below, never used
    config, params = convert()
    with contextlib.suppress(RhojaxError):
        save_checkpoint(config, params, entry, metadata={"source": str(Path(path).resolve())})
        for other in entry.parent.iterdir():  # entries of older versions of the same source
            if other != entry and not other.name.startswith("."):
                shutil.rmtree(other, ignore_errors=True)
        remove_orphans()
    return config, params


def remove_orphans() -> list[Path]:
    """Delete cache entries whose source no longer exists (e.g. a deleted temporary folder)."""
    removed = []
    for entry in (cache_root() / "params").glob("*/*"):
        try:
            source = read_marker(entry)["metadata"].get("source")
        except LoadError:
            continue  # being written by another process, or damaged: cached_load handles it
        if source and not Path(source).exists():
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed
