"""Depth pruning: physical deletion, Block Influence, rank blends and iterative re-scoring."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rhojax.depth import (
    block_influence,
    iterative_removal,
    one_shot_removal,
    rank_layers,
    ranks,
    removal_order,
    remove_layers,
)
from rhojax.errors import RhojaxError
from rhojax.models import ModelConfig, block, block_params, embed, forward, init_params, unembed

CONFIG = ModelConfig(
    family="llama", vocab_size=64, hidden_size=32, num_layers=5, num_heads=4, num_kv_heads=2, head_dim=8,
    intermediate_size=48, norm_eps=1e-5, rope_theta=1e4,
)


@pytest.fixture(scope="module")
def params():
    return init_params(CONFIG, jax.random.PRNGKey(0), scale=0.2)


def tokens(n: int, t: int, seed: int = 1) -> np.ndarray:
    return np.asarray(jax.random.randint(jax.random.PRNGKey(seed), (n, t), 0, CONFIG.vocab_size), np.int32)


jitted_block = jax.jit(block, static_argnums=0)


def skipped_forward(config, params, toks, removed):
    """Plain reference: the ORIGINAL model, looping over blocks in Python and skipping ``removed``."""
    positions = jnp.arange(toks.shape[-1])
    h = embed(config, params, toks, positions)
    for layer in range(config.num_layers):
        if layer not in removed:
            h = jitted_block(config, block_params(params, layer), h, positions)
    return unembed(config, params, h)


@pytest.mark.parametrize("removed", [[0], [4], [1, 3], [0, 2, 4], [3, 1, 2, 0]])
def test_physical_deletion_equals_skipping_blocks(params, removed):
    config, pruned = remove_layers(CONFIG, params, removed)
    assert config.num_layers == CONFIG.num_layers - len(set(removed))
    assert pruned["blocks"]["q"]["w"].shape[0] == config.num_layers
    toks = tokens(2, 12)
    np.testing.assert_allclose(
        forward(config, pruned, toks), skipped_forward(CONFIG, params, toks, removed), rtol=1e-5, atol=1e-5
    )


def test_deletion_rejects_bad_layers(params):
    with pytest.raises(RhojaxError, match="do not exist"):
        remove_layers(CONFIG, params, [5])
    with pytest.raises(RhojaxError, match="at least one"):
        remove_layers(CONFIG, params, range(5))


@pytest.mark.parametrize("batch_size", [2, 3])
def test_block_influence_matches_stored_hidden_states(params, batch_size):
    toks = tokens(3, 10)
    result = block_influence(CONFIG, params, toks, batch_size=batch_size)
    _, hidden = forward(CONFIG, params, jnp.asarray(toks), return_hidden=True)
    h = np.asarray(hidden, dtype=np.float64)  # (L + 1, N, T, D)
    expected, expected_no_bos = [], []
    for layer in range(CONFIG.num_layers):
        a, b = h[layer], h[layer + 1]
        cos = (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
        expected.append(1 - cos.mean())
        expected_no_bos.append(1 - cos[:, 1:].mean())
    np.testing.assert_allclose(result.bi, expected, atol=2e-6)
    np.testing.assert_allclose(result.bi_without_bos, expected_no_bos, atol=2e-6)
    assert result.tokens == toks.size


@given(st.lists(st.floats(0.01, 3.0), min_size=2, max_size=12))
def test_pure_criteria_are_plain_sorts(values):
    v = np.asarray(values)
    np.testing.assert_array_equal(removal_order(None, v, 0.0), np.argsort(v, kind="stable"))
    np.testing.assert_array_equal(removal_order(v, None, 1.0), np.argsort(np.abs(v - 1), kind="stable"))
    np.testing.assert_array_equal(
        removal_order(v, None, 1.0, "descending"), np.argsort(-np.abs(v - 1), kind="stable")
    )


@given(st.lists(st.floats(0.01, 3.0), min_size=2, max_size=12), st.sampled_from([0.25, 0.5, 0.75]),
       st.randoms(use_true_random=False))
def test_blend_orders_by_weighted_rank_sum(rho_values, lam, rng):
    rho = np.asarray(rho_values)
    bi = np.asarray([rng.random() for _ in rho])
    order = removal_order(rho, bi, lam)
    r_rho = np.argsort(np.argsort(np.abs(rho - 1), kind="stable"), kind="stable")
    r_bi = np.argsort(np.argsort(bi, kind="stable"), kind="stable")
    blend = lam * r_rho + (1 - lam) * r_bi
    assert sorted(order.tolist()) == list(range(len(rho)))
    assert np.all(np.diff(blend[order]) >= 0)
    ties = np.diff(blend[order]) == 0
    assert np.all(np.diff(r_bi[order])[ties] > 0)  # ties broken by Block Influence rank


def test_blend_hand_example():
    rho = np.array([1.0, 1.5, 0.9, 0.2])  # |rho - 1| = 0, .5, .1, .8 -> ranks 0, 2, 1, 3
    bi = np.array([0.4, 0.1, 0.3, 0.2])  # ranks 3, 0, 2, 1
    # lambda 0.5: blend = 1.5, 1.0, 1.5, 2.0 -> layer 1, then 2 (BI rank 2 < 3), 0, 3
    assert removal_order(rho, bi, 0.5).tolist() == [1, 2, 0, 3]
    assert one_shot_removal(rho, bi, 0.5, 2) == [1, 2]
    assert ranks(np.array([3.0, 1.0, 2.0])).tolist() == [2, 0, 1]
    # the named criteria on the same hand example
    assert rank_layers("blend", rho=rho, bi=bi, lam=0.5) == [1, 2, 0, 3]
    assert rank_layers("rho", rho=rho) == [0, 2, 1, 3]  # |rho - 1| ascending
    assert rank_layers("rho", rho=rho, rho_order="descending") == [3, 1, 2, 0]
    assert rank_layers("bi", bi=bi) == [1, 3, 2, 0]  # ShortGPT: smallest Block Influence first


@pytest.mark.parametrize(("criterion", "lam", "message"), [
    ("rhoo", None, "criterion 'rhoo': choose rho, bi or blend"),
    ("blend", None, "criterion 'blend' needs lam"),
    ("blend", 1.5, "lam 1.5: the blend weight"),
])
def test_rank_layers_errors_name_the_argument(criterion, lam, message):
    with pytest.raises(RhojaxError, match=message):
        rank_layers(criterion, rho=np.ones(3), bi=np.ones(3), lam=lam)


@settings(max_examples=10, deadline=None)
@given(st.permutations(range(5)), st.integers(1, 4))
def test_iterative_removal_maps_back_to_original_layers(perm, k):
    """With a score attached to each block itself, re-scoring never changes the order, so iterative removal must
    return exactly the one-shot order in ORIGINAL numbering (a check of the index bookkeeping)."""
    config = CONFIG.replace(hidden_size=8, num_heads=2, num_kv_heads=1, head_dim=4, intermediate_size=8)
    params = init_params(config, jax.random.PRNGKey(0))
    score = np.asarray(perm, dtype=np.float32)
    params["blocks"]["attn_norm"]["scale"] = jnp.asarray(score[:, None] * np.ones((1, 8), np.float32))

    def pick(cfg, p):
        return int(np.argmin(np.asarray(p["blocks"]["attn_norm"]["scale"][:, 0])))

    assert iterative_removal(config, params, k, pick) == np.argsort(score)[:k].tolist()


def test_iterative_block_influence_rescoring(params):
    """Iterative BI removal equals a plain loop that deletes, re-runs Block Influence and deletes again."""
    toks = tokens(2, 8)

    def pick(cfg, p):
        return int(np.argmin(block_influence(cfg, p, toks).bi))

    removed = iterative_removal(CONFIG, params, 3, pick)
    surviving = list(range(CONFIG.num_layers))
    expected = []
    cfg, p = CONFIG, params
    for _ in range(3):
        j = int(np.argmin(block_influence(cfg, p, toks).bi))
        expected.append(surviving.pop(j))
        cfg, p = remove_layers(CONFIG, params, expected)
    assert removed == expected


@pytest.mark.slow
def test_smollm2_deletion_equals_skipping(smollm2, smollm2_windows):
    toks = jnp.asarray(smollm2_windows("evaluation", 1, 32))
    removed = [3, 17, 25]
    config, pruned = remove_layers(smollm2.config, smollm2.params, removed)
    np.testing.assert_allclose(
        forward(config, pruned, toks), skipped_forward(smollm2.config, smollm2.params, toks, removed),
        rtol=1e-4, atol=1e-3,
    )
