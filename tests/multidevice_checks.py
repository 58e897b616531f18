"""Eight devices against one: run by tests/test_multidevice.py in a subprocess with
``XLA_FLAGS=--xla_force_host_platform_device_count=8`` (the flag must be set before JAX starts).

Each check computes a result twice in the same process: unsharded (``mesh=None``, the single-device path on
device 0, the independent reference) and sharded over an 8-device mesh, and compares them with tight
tolerances. Window, sample and site counts are chosen so that none divides the data axis: the padding
and its removal are exercised every time.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from rhojax import sharding
from rhojax.eval.perplexity import perplexity, window_nll
from rhojax.models import ModelConfig, forward, init_params
from rhojax.propagation.profile import rho_profile
from rhojax.sensitivity.grid import sweep_grid
from rhojax.sensitivity.sweep import run_sweep

pytestmark = pytest.mark.skipif(jax.device_count() < 8, reason="needs 8 devices: run through test_multidevice.py")

LLAMA = ModelConfig("llama", 128, 32, 2, 4, 2, 8, 64, 1e-5, rope_theta=1e4, tie_embeddings=True)
GPT2 = ModelConfig("gpt2", 128, 32, 2, 4, 4, 8, 64, 1e-5, max_position_embeddings=16)
WINDOWS = np.random.default_rng(0).integers(0, 128, (5, 12)).astype(np.int32)  # 5 windows: uneven over 8 or 4


def _params(config: ModelConfig) -> dict:
    return init_params(config, jax.random.PRNGKey(0), scale=0.3)


def _close(got, want, rtol=2e-5, atol=1e-6):
    np.testing.assert_allclose(np.asarray(got, np.float64), np.asarray(want, np.float64), rtol=rtol, atol=atol)


def test_mesh_shapes_and_errors():
    mesh = sharding.make_mesh(8, model=2)
    assert dict(mesh.shape) == {"data": 4, "model": 2}
    assert sharding.padded_size(5, mesh) == 8 and sharding.padded_size(5, None) == 5
    assert sharding.device_mesh(1) is None and sharding.device_mesh(0).size == 8  # the CLI's --devices 1 / 0
    with pytest.raises(sharding.RhojaxError, match="model=3"):
        sharding.make_mesh(8, model=3)
    with pytest.raises(sharding.RhojaxError, match="devices=9"):
        sharding.make_mesh(9)


def test_perplexity_over_8_devices_equals_one_device():
    params = _params(LLAMA)
    want = perplexity(LLAMA, params, WINDOWS, batch_size=2)
    mesh = sharding.make_mesh()
    got = perplexity(LLAMA, sharding.shard_params(LLAMA, params, mesh), WINDOWS, batch_size=2, mesh=mesh)
    assert got.windows == want.windows == 5 and got.scored_tokens == want.scored_tokens
    _close(got.mean_nll, want.mean_nll, rtol=1e-6)
    # the batch really is split: one window per device
    out = window_nll(LLAMA, params, sharding.shard_rows(sharding.pad_rows(WINDOWS, 8), mesh))
    assert out.sharding.spec == P("data") and len({s.device for s in out.addressable_shards}) == 8


def test_perplexity_with_tensor_parallel_weights_equals_one_device():
    params = _params(LLAMA)
    want = perplexity(LLAMA, params, WINDOWS, batch_size=4)
    mesh = sharding.make_mesh(8, model=2)
    got = perplexity(LLAMA, sharding.shard_params(LLAMA, params, mesh), WINDOWS, batch_size=4, mesh=mesh)
    _close(got.mean_nll, want.mean_nll, rtol=1e-5)


def test_clean_states_and_rho_profile_over_8_devices_equal_one_device():
    params = _params(LLAMA)
    _, hidden = forward(LLAMA, params, jnp.asarray(WINDOWS), return_hidden=True)
    key = jax.random.key(3)
    want = rho_profile(LLAMA, params, hidden, key, eps=0.05, samples=3, linearised=True)
    mesh = sharding.make_mesh()
    placed = sharding.shard_params(LLAMA, params, mesh)
    states = sharding.clean_states(LLAMA, placed, WINDOWS, mesh)
    assert states.shape == hidden.shape
    _close(states, hidden, rtol=1e-5, atol=1e-4)
    got = rho_profile(LLAMA, placed, hidden, key, eps=0.05, samples=3, linearised=True, mesh=mesh)
    for field in ("alpha", "beta", "rho", "beta_linear", "token_alpha", "token_rho_mean", "token_rho_median",
                  "sink_rho", "token_rho"):
        assert getattr(got, field).shape == getattr(want, field).shape, field
        _close(getattr(got, field), getattr(want, field), rtol=2e-5, atol=1e-5)


def test_sweep_spreads_sites_over_8_devices_and_equals_one_device(tmp_path):
    params = _params(LLAMA)
    grid = sweep_grid(LLAMA, {"magnitude": (0.5,)}, layers=[1])  # 7 sites: padded to 8
    want, _ = run_sweep(LLAMA, params, WINDOWS, grid, tmp_path / "one.jsonl", window_batch=4)
    # params left where they are (uncommitted): the compressed blocks are built on one device, as eager ops on
    # params replicated over 8 CPU threads are slow when the machine is busy; each batch of sites is then split
    got, _ = run_sweep(LLAMA, params, WINDOWS, grid, tmp_path / "eight.jsonl", window_batch=4,
                       mesh=sharding.make_mesh())
    assert [(r["layer"], r["kind"]) for r in got] == [(r["layer"], r["kind"]) for r in want]
    for a, b in zip(got, want, strict=True):
        for key in ("ppl", "ppl_ratio", "drift", "drift_token_mean", "drift_bos", "weight_error"):
            _close(a[key], b[key], rtol=1e-5)
        _close(a["window_nll"], b["window_nll"], rtol=1e-6)


@pytest.mark.parametrize("config", [LLAMA, GPT2], ids=["llama", "gpt2"])
def test_tensor_parallel_forward_equals_unsharded(config):
    params = _params(config)
    want = forward(config, params, jnp.asarray(WINDOWS))
    mesh = sharding.make_mesh(8, model=2)
    placed = sharding.shard_params(config, params, mesh)
    blocks = placed["blocks"]
    # column-split q/k/v/gate/up by heads or width, row-split o/down: each device holds half of each matrix
    for kind, axis in (("q", 2), ("k", 2), ("v", 2), ("up", 2), ("o", 1), ("down", 1)):
        full = params["blocks"][kind]["w"].shape
        shard = blocks[kind]["w"].addressable_shards[0].data.shape
        assert shard[axis] == full[axis] // 2 and shard[3 - axis] == full[3 - axis], kind
    assert blocks["attn_norm"]["scale"].sharding.spec == P()
    got = forward(config, placed, sharding.shard_rows(sharding.pad_rows(WINDOWS, 8), mesh))[: len(WINDOWS)]
    _close(got, want, rtol=1e-5, atol=2e-5)


def test_heads_that_do_not_divide_stay_replicated():
    mesh = sharding.make_mesh(8, model=8)  # 4 query heads, 2 kv heads, width 64: only the MLP splits
    specs = sharding.param_shardings(LLAMA, _params(LLAMA), mesh)
    assert specs["blocks"]["q"]["w"].spec == P() and specs["blocks"]["o"]["w"].spec == P()
    assert specs["blocks"]["gate"]["w"].spec == P(None, None, "model")
    assert specs["blocks"]["down"]["w"].spec == P(None, "model", None)
