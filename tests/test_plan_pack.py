"""The packed format of a planned model (:mod:`rhojax.plan.pack`): every action's pieces decode to the dense-form
compressed matrix up to the format's bfloat16 rounding (checked against a bit-level bfloat16 rounding and codes
written here), their bytes are the cost model's claim, malformed matrices are refused in one line, and a whole
plan saved and loaded is the planned model."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rhojax.compress import MatrixStats
from rhojax.errors import LoadError, RhojaxError
from rhojax.eval.perplexity import perplexity
from rhojax.models import ModelConfig, init_params
from rhojax.plan import pack
from rhojax.plan.actions import DENSE, Plan, apply_plan, lowrank, nm, prune, rtn
from rhojax.plan.pack import load_packed, pack_matrix, packed_bytes, payload_bytes, save_packed, unpack_matrix

SHAPE = (256, 40)  # n = 10240: every bit stream a whole number of bytes; in a multiple of 128 (groups, blocks)


def bf16_round(a) -> np.ndarray:
    """float32 ``a`` rounded to bfloat16 (nearest, ties to even) by its bits, returned as float32."""
    bits = np.asarray(a, np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return rounded.astype(np.uint32).view(np.float32)


@pytest.fixture(scope="module")
def matrix():
    """A random matrix (in, out) and the statistics of random calibration inputs X (512, in)."""
    rng = np.random.default_rng(0)
    w = rng.normal(size=SHAPE).astype(np.float32)
    x = rng.normal(size=(512, SHAPE[0])).astype(np.float32) * rng.uniform(0.2, 2.0, SHAPE[0]).astype(np.float32)
    stats = MatrixStats(jnp.asarray(np.linalg.norm(x, axis=0)), jnp.asarray(x.T @ x))
    return w, stats


def roundtrip(action, matrix):
    """``(dense-form compressed matrix, its pieces, the decoded matrix)`` of the module's matrix under ``action``."""
    w, stats = matrix
    compressed = np.asarray(action.compress(jnp.asarray(w), stats))
    pieces = pack_matrix(action, compressed, site=(3, "up"))
    return compressed, pieces, unpack_matrix(action, pieces, compressed.shape)


@pytest.mark.parametrize("action", [DENSE, prune("wanda", 0.5), prune("sparsegpt", 0.5), prune("sparsegpt", 0.3),
                                    nm("wanda", (2, 4)), nm("sparsegpt", (2, 4))], ids=lambda a: a.name)
def test_value_actions_store_bf16_values_at_the_cost_models_bytes(matrix, action):
    compressed, pieces, decoded = roundtrip(action, matrix)
    np.testing.assert_array_equal(decoded, bf16_round(compressed))  # zeros stay zeros, the rest bf16
    assert payload_bytes(pieces) == action.cost(SHAPE).bytes


@pytest.mark.parametrize("sparsity, more", [(0.3, -8), (0.7, 8)])
def test_wanda_rounds_per_output_channel_so_it_stores_a_few_values_off_the_cost_model(matrix, sparsity, more):
    """Wanda drops ``round(s in)`` inputs of every output channel, the cost model counts ``n - round(s n)`` kept:
    at s = 0.3, 179 * 40 = 7160 against 7168; at 0.7, 77 * 40 = 3080 against 3072."""
    action = prune("wanda", sparsity)
    compressed, pieces, decoded = roundtrip(action, matrix)
    np.testing.assert_array_equal(decoded, bf16_round(compressed))
    kept = (SHAPE[0] - round(sparsity * SHAPE[0])) * SHAPE[1]
    assert payload_bytes(pieces) == 2 * kept + SHAPE[0] * SHAPE[1] / 8
    assert payload_bytes(pieces) - action.cost(SHAPE).bytes == 2 * more


def test_lowrank_stores_two_bf16_factors_whose_product_is_the_matrix(matrix):
    action = lowrank(8)
    compressed, pieces, decoded = roundtrip(action, matrix)
    assert pieces["left"].shape == (SHAPE[0], 8) and pieces["right"].shape == (8, SHAPE[1])
    assert payload_bytes(pieces) == action.cost(SHAPE).bytes
    assert np.all(np.abs(decoded - compressed) <= lowrank_bound(compressed, 8))


def lowrank_bound(w: np.ndarray, rank: int) -> np.ndarray:
    """Entrywise bound on the error of storing rank-``rank`` ``w`` as bf16 factors ``L (1 + e)``, ``R (1 + e')``
    with ``|e|, |e'| <= 2^-8``: ``(2^-7 + 2^-16) |L| |R|`` (from an SVD here), plus float32 noise."""
    u, s, vt = np.linalg.svd(w.astype(np.float64), full_matrices=False)
    assert s[rank] < 1e-5 * s[0]  # the operator's output has the rank
    root = np.sqrt(s[:rank])
    return 1.01 * 2.0**-7 * (np.abs(u[:, :rank] * root) @ np.abs(root[:, None] * vt[:rank])) + 1e-6 * np.abs(w).max()


@pytest.mark.parametrize("bits", [2, 3, 4])
@pytest.mark.parametrize("group", [128, None])
def test_rtn_stores_exact_codes_and_bf16_scales(matrix, bits, group):
    action = rtn(bits, group)
    w = matrix[0]
    compressed, pieces, decoded = roundtrip(action, matrix)
    qmax, size = 2 ** (bits - 1) - 1, group or SHAPE[0]
    grouped = w.reshape(SHAPE[0] // size, size, SHAPE[1])
    step = np.abs(grouped).max(axis=1) / qmax  # the symmetric grid's step, from the ORIGINAL matrix
    codes = np.clip(np.rint(grouped / step[:, None]), -qmax, qmax)
    stream = np.unpackbits(pieces["codes"], bitorder="little").reshape(-1, bits)
    stored = (stream * (2 ** np.arange(bits))).sum(axis=1).reshape(codes.shape) - qmax
    np.testing.assert_array_equal(stored, codes)
    expected = (codes * bf16_round(step)[:, None]).reshape(SHAPE)
    np.testing.assert_allclose(decoded, expected, rtol=2.0**-8, atol=0)  # one bf16 step of slack on the scale
    np.testing.assert_allclose(decoded, compressed, rtol=2.0**-8, atol=0)
    assert payload_bytes(pieces) == action.cost(SHAPE).bytes


@pytest.mark.parametrize("action, make, what", [
    (prune("sparsegpt", 0.5), lambda w: w, "non-zeros"),
    (nm("wanda", (2, 4)), lambda w: np.where(np.arange(SHAPE[0])[:, None] % 4 == 3, 0, w), "more than 2"),
    (lowrank(8), lambda w: w, "singular value 9"),
    (rtn(3, 128), lambda w: w, "off the grid"),
], ids=["prune", "nm", "lowrank", "rtn"])
def test_a_matrix_without_its_actions_structure_is_refused_in_one_line(matrix, action, make, what):
    with pytest.raises(RhojaxError, match=f"layer 3 up: not a {action.name} matrix .*{what}") as info:
        pack_matrix(action, make(matrix[0]), site=(3, "up"))
    assert "\n" not in str(info.value)


CONFIG = ModelConfig(family="llama", vocab_size=256, hidden_size=32, num_layers=4, num_heads=4, num_kv_heads=2,
                     head_dim=8, intermediate_size=64, norm_eps=1e-5, rope_theta=1e4, tie_embeddings=False)
PLAN = Plan((1,), {
    (0, "q"): prune("wanda", 0.5), (0, "k"): nm("sparsegpt", (2, 4)), (0, "v"): lowrank(4), (0, "o"): rtn(3, 16),
    (0, "gate"): rtn(2, None), (0, "down"): prune("sparsegpt", 0.5),
    (2, "q"): rtn(4, None), (2, "up"): lowrank(8), (2, "down"): nm("wanda", (2, 4)), (2, "gate"): prune("wanda", 0.5),
    (3, "v"): rtn(4, 16),
})


def test_a_saved_plan_loads_back_as_the_planned_model_at_the_plans_bytes(tmp_path):
    rng = np.random.default_rng(1)
    params = init_params(CONFIG, jax.random.PRNGKey(0), scale=0.3)
    calibration = rng.integers(0, CONFIG.vocab_size, (4, 32))
    config, planned = apply_plan(CONFIG, params, PLAN, calibration)
    folder = save_packed(config, planned, PLAN, tmp_path / "packed")
    assert sorted(p.name for p in folder.iterdir()) == [pack.MANIFEST, pack.TENSORS]
    loaded_config, loaded = load_packed(folder)
    assert loaded_config == config and jax.tree.structure(loaded) == jax.tree.structure(planned)
    kept = [0, 2, 3]
    for kind in CONFIG.site_kinds:
        for i, layer in enumerate(kept):
            got, want = np.asarray(loaded["blocks"][kind]["w"][i]), np.asarray(planned["blocks"][kind]["w"][i])
            action = PLAN.action(layer, kind)
            if action.op == "lowrank":
                assert np.all(np.abs(got - want) <= lowrank_bound(want, int(action.level)))
            else:  # bf16 values or scales: every entry within one bf16 rounding, zeros exact
                np.testing.assert_allclose(got, want, rtol=2.0**-8, atol=0)
    others = [(p, a) for p, a in jax.tree_util.tree_leaves_with_path(planned) if "'w'" not in jax.tree_util.keystr(p)
              or "blocks" not in jax.tree_util.keystr(p)]
    for path, leaf in others:  # embeddings, norms and head: float32, unchanged
        np.testing.assert_array_equal(np.asarray(_at(loaded, path)), np.asarray(leaf))
    # the block matrices' payload is exactly the cost model's bytes of the plan
    assert packed_bytes(folder) == PLAN.cost(CONFIG).bytes
    # perplexity: each stored weight moves by at most 2^-8 relative (2^-7 |L| |R| for the low-rank products), a
    # perturbation of the order of 0.4%; this random model's perplexity moves by 0.23% (measured), so 1% holds it
    # with a margin, while a decoding mistake (a wrong mask, code or factor) changes whole matrices
    windows = rng.integers(0, CONFIG.vocab_size, (4, 32))
    want = perplexity(config, planned, windows).perplexity
    assert perplexity(loaded_config, loaded, windows).perplexity == pytest.approx(want, rel=1e-2)


def test_a_packed_folder_of_another_format_version_is_refused(tmp_path):
    params = init_params(CONFIG, jax.random.PRNGKey(0), scale=0.3)
    plan = Plan((), {})
    folder = save_packed(CONFIG, params, plan, tmp_path / "packed")
    manifest = json.loads((folder / pack.MANIFEST).read_text())
    (folder / pack.MANIFEST).write_text(json.dumps({**manifest, "version": pack.VERSION + 1}))
    with pytest.raises(LoadError, match="this rhojax reads 'rhojax-packed' version 1") as info:
        load_packed(folder)
    assert "\n" not in str(info.value)


def _at(tree, path):
    for key in path:
        tree = tree[key.key]
    return tree


def test_a_plan_applied_to_other_params_is_refused_naming_the_matrix(tmp_path):
    params = init_params(CONFIG, jax.random.PRNGKey(0), scale=0.3)
    config = CONFIG.replace(num_layers=3)
    dense_kept = {**params, "blocks": jax.tree.map(lambda a: a[np.asarray([0, 2, 3])], params["blocks"])}
    with pytest.raises(RhojaxError, match=r"layer 0 q: not a wanda@0.5 matrix"):
        save_packed(config, dense_kept, PLAN, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()
