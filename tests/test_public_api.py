"""The top-level API, used as a JAX researcher would: only ``import rhojax`` (plus jax and NumPy).

Every traceable core runs under ``jax.jit`` and under ``jax.vmap`` over two params trees, and
``jax.grad`` goes through ``rhojax.loss``; expected values come from plain NumPy written here.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rhojax

CONFIG = rhojax.ModelConfig(family="llama", vocab_size=64, hidden_size=32, num_layers=4, num_heads=4,
                            num_kv_heads=2, head_dim=8, intermediate_size=48, norm_eps=1e-5)
P1 = rhojax.init_params(CONFIG, jax.random.key(0), scale=0.1)
P2 = rhojax.init_params(CONFIG, jax.random.key(1), scale=0.1)
TOKENS = jax.random.randint(jax.random.key(2), (3, 10), 0, CONFIG.vocab_size)
MASK = (jax.random.uniform(jax.random.key(3), TOKENS.shape) > 0.3).astype(jnp.int32)


def stacked(a, b):
    return jax.tree.map(lambda x, y: jnp.stack([x, y]), a, b)


def model_of(params) -> rhojax.Model:
    return rhojax.Model(spec="tiny", config=CONFIG, params=params, dtype="float32", source=Path("."), gguf_file=None)


def numpy_nll(logits, tokens, mask=None):
    """Plain NumPy mean NLL of tokens[:, 1:] under logits[:, :-1] in float64."""
    z = np.asarray(logits, np.float64)[:, :-1]
    logp = z - z.max(-1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(-1, keepdims=True))
    target = np.asarray(tokens)[:, 1:]
    nll = -np.take_along_axis(logp, target[..., None], -1)[..., 0]
    weights = np.ones_like(nll) if mask is None else np.asarray(mask, np.float64)[:, 1:]
    return (nll * weights).sum() / weights.sum()


def assert_trees_close(a, b, rtol=1e-5, atol=1e-6):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x, np.float64), np.asarray(y, np.float64), rtol=rtol, atol=atol)


# --- loss, perplexity, grad ------------------------------------------------------------------------------

def test_loss_and_perplexity_match_numpy():
    logits = rhojax.forward((CONFIG, P1), TOKENS)
    expected = numpy_nll(logits, TOKENS)
    assert float(rhojax.loss((CONFIG, P1), TOKENS)) == pytest.approx(expected, rel=1e-5)
    assert float(rhojax.perplexity((CONFIG, P1), TOKENS)) == pytest.approx(np.exp(expected), rel=1e-5)
    masked = numpy_nll(logits, TOKENS, MASK)
    assert abs(masked - expected) > 1e-4  # the mask changes the value, so the next check can fail
    assert float(rhojax.loss((CONFIG, P1), TOKENS, MASK)) == pytest.approx(masked, rel=1e-5)
    assert float(rhojax.loss((CONFIG, P1), TOKENS, MASK, batch_size=2)) == pytest.approx(masked, rel=1e-5)


def test_grad_of_loss_matches_closed_form_for_the_output_matrix():
    """d loss / d W_head = X^T (softmax - onehot) * mask / count, X the final-normed states (NumPy)."""
    _, hidden = rhojax.forward((CONFIG, P1), TOKENS, return_hidden=True)
    h = np.asarray(hidden[-1], np.float64)
    x = h / np.sqrt((h * h).mean(-1, keepdims=True) + CONFIG.norm_eps) * np.asarray(P1["final_norm"]["scale"])
    z = x @ np.asarray(P1["lm_head"]["w"], np.float64)
    p = np.exp(z - z.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    onehot = np.eye(CONFIG.vocab_size)[np.asarray(TOKENS)]
    weights = np.asarray(MASK, np.float64)[:, 1:, None]
    residual = (p[:, :-1] - onehot[:, 1:]) * weights
    expected = np.einsum("ntd,ntv->dv", x[:, :-1], residual) / weights.sum()

    grads = jax.grad(rhojax.loss)(model_of(P1), TOKENS, MASK)
    assert isinstance(grads, rhojax.Model) and grads.config == CONFIG
    np.testing.assert_allclose(np.asarray(grads.params["lm_head"]["w"]), expected, rtol=2e-4, atol=1e-6)
    step = jax.tree.map(lambda w, g: w - 0.5 * g, model_of(P1), grads)
    assert float(rhojax.loss(step, TOKENS, MASK)) < float(rhojax.loss(model_of(P1), TOKENS, MASK))


# --- pytrees ------------------------------------------------------------------------------------------------

def test_config_and_model_are_pytrees_for_a_users_jit():
    eager = rhojax.forward(model_of(P1), TOKENS)
    np.testing.assert_allclose(jax.jit(lambda m, t: rhojax.forward(m, t))(model_of(P1), TOKENS), eager, rtol=1e-5,
                               atol=1e-5)
    np.testing.assert_allclose(jax.jit(rhojax.forward)((CONFIG, P1), TOKENS), eager, rtol=1e-5, atol=1e-5)
    static = jax.jit(lambda c, p, t: rhojax.forward((c, p), t), static_argnums=0)
    np.testing.assert_allclose(static(CONFIG, P1, TOKENS), eager, rtol=1e-5, atol=1e-5)
    assert hash(CONFIG) == hash(CONFIG.replace())
    assert jax.tree.leaves(CONFIG) == []
    assert len(jax.tree.leaves(model_of(P1))) == len(jax.tree.leaves(P1))


# --- traceable cores under jit and vmap over two params trees -----------------------------------------------

def test_loss_under_vmap_over_two_params_trees():
    both = jax.vmap(lambda p: rhojax.loss((CONFIG, p), TOKENS))(stacked(P1, P2))
    expected = [numpy_nll(rhojax.forward((CONFIG, p), TOKENS), TOKENS) for p in (P1, P2)]
    np.testing.assert_allclose(np.asarray(both), expected, rtol=1e-5)
    assert abs(expected[0] - expected[1]) > 1e-3
    ppl = jax.jit(jax.vmap(rhojax.perplexity, in_axes=(0, None)))(model_of(stacked(P1, P2)), TOKENS)
    np.testing.assert_allclose(np.asarray(ppl), np.exp(expected), rtol=1e-5)


def numpy_rho(hidden_in, hidden_out, block_fn, g, eps):
    """Aggregate rho of one layer per sample, plain NumPy norms around the model's block."""
    out = []
    for gk in g:
        e = eps * gk * np.linalg.norm(hidden_in) / np.linalg.norm(gk)
        d = np.asarray(block_fn(jnp.asarray(hidden_in + e, jnp.float32)), np.float64) - hidden_out
        out.append((np.linalg.norm(d) / np.linalg.norm(e)) / (np.linalg.norm(hidden_out) / np.linalg.norm(hidden_in)))
    return np.array(out)


def test_rho_profile_defaults_summaries_jit_and_vmap():
    key = jax.random.key(7)
    prof = rhojax.rho_profile((CONFIG, P1), TOKENS, key)
    assert prof.eps == 0.01 and prof.rho.shape == (CONFIG.num_layers, 8)  # the CLI's defaults
    rho = np.asarray(prof.rho, np.float64)
    np.testing.assert_allclose(prof.mean("rho"), rho.mean(1))
    half = 1.96 * rho.std(1, ddof=1) / np.sqrt(8)
    np.testing.assert_allclose(prof.ci("rho"), np.stack([rho.mean(1) - half, rho.mean(1) + half], -1))

    # layer 2 against NumPy norms, with the directions drawn exactly as the definition says
    _, hidden = rhojax.forward((CONFIG, P1), TOKENS, return_hidden=True)
    hidden = np.asarray(hidden, np.float64)
    layer_key = jax.random.fold_in(key, 2)
    g = np.stack([np.asarray(jax.random.normal(jax.random.fold_in(layer_key, k), hidden.shape[1:]), np.float64)
                  for k in range(8)])
    layer2 = jax.tree.map(lambda a: a[2], P1["blocks"])

    @jax.jit
    def block_fn(h):
        return rhojax.models.block(CONFIG, layer2, h, jnp.arange(h.shape[-2]))

    np.testing.assert_allclose(rho[2], numpy_rho(hidden[2], hidden[3], block_fn, g, 0.01), rtol=2e-3)

    def small(m, t):
        return rhojax.rho_profile(m, t, key, samples=3, linearised=False)

    jitted = jax.jit(small)((CONFIG, P1), TOKENS)
    both = jax.vmap(lambda p: small((CONFIG, p), TOKENS))(stacked(P1, P2))
    for i, p in enumerate((P1, P2)):
        single = small((CONFIG, p), TOKENS)
        np.testing.assert_allclose(both.rho[i], single.rho, rtol=1e-4)
        np.testing.assert_allclose(both.token_rho_mean[i], single.token_rho_mean, rtol=1e-4)
    np.testing.assert_allclose(jitted.rho, small((CONFIG, P1), TOKENS).rho, rtol=1e-4)
    assert not np.allclose(both.rho[0], both.rho[1])


def numpy_block_influence(params):
    _, hidden = rhojax.forward((CONFIG, params), TOKENS, return_hidden=True)
    h = np.asarray(hidden, np.float64)
    cos = (h[:-1] * h[1:]).sum(-1) / (np.linalg.norm(h[:-1], axis=-1) * np.linalg.norm(h[1:], axis=-1))
    return 1 - cos.mean(axis=(1, 2)), 1 - cos[:, :, 1:].mean(axis=(1, 2))


def test_block_influence_matches_numpy_under_jit_and_vmap():
    bi, bi_no_bos = numpy_block_influence(P1)
    result = jax.jit(rhojax.block_influence)((CONFIG, P1), TOKENS)
    np.testing.assert_allclose(result.bi, bi, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(result.bi_without_bos, bi_no_bos, rtol=1e-4, atol=1e-6)
    assert result.tokens == TOKENS.size
    both = jax.vmap(lambda p: rhojax.block_influence((CONFIG, p), TOKENS))(stacked(P1, P2))
    np.testing.assert_allclose(both.bi[1], numpy_block_influence(P2)[0], rtol=1e-4, atol=1e-6)


def test_drift_core_under_jit_and_vmap():
    _, hidden = rhojax.forward((CONFIG, P1), TOKENS, return_hidden=True)
    e = 0.05 * jax.random.normal(jax.random.key(4), (2, *hidden.shape[1:]))
    drift = rhojax.propagation.relative_drift
    agg, _ = jax.jit(lambda p: drift(CONFIG, p, hidden, 1, e))(P1)
    # NumPy: run the clean states from h_1 + e through blocks 1..3 with the model's own blocks
    h = jnp.asarray(hidden[1] + e)
    expected = [np.linalg.norm(e[k]) / np.linalg.norm(hidden[1]) for k in range(2)]
    tracks = [expected]
    for t in range(3):
        h = rhojax.models.block(CONFIG, jax.tree.map(lambda a, t=t: a[t + 1], P1["blocks"]), h,
                                jnp.arange(TOKENS.shape[1]))
        d = np.asarray(h, np.float64) - np.asarray(hidden[t + 2], np.float64)
        tracks.append([np.linalg.norm(d[k]) / np.linalg.norm(hidden[t + 2]) for k in range(2)])
    np.testing.assert_allclose(np.asarray(agg)[:, 1:], np.array(tracks).T, rtol=1e-3)
    assert np.all(np.asarray(agg)[:, 0] == 0)
    both = jax.vmap(lambda p: drift(CONFIG, p, hidden, 1, e)[0])(stacked(P1, P1))
    np.testing.assert_allclose(both[0], agg, rtol=1e-5)


@pytest.mark.parametrize(("method", "level", "extra"), [
    ("magnitude", 0.5, {}),
    ("magnitude_row", 0.5, {}),
    ("wanda", 0.5, {"input_norm": "norm"}),
    ("sparsegpt", 0.5, {"hessian": "hessian"}),
    ("lowrank", 4, {}),
    ("lowrank_aware", 4, {"hessian": "hessian"}),
    ("rtn", 4, {}),
    ("rotated_rtn", 4, {"key": "key"}),
])
def test_compression_operators_under_jit_and_vmap(method, level, extra):
    w1, w2 = rhojax.get_site(P1, (1, "up")), rhojax.get_site(P2, (1, "up"))
    x = np.asarray(jax.random.normal(jax.random.key(5), (40, w1.shape[0])), np.float64)
    given = {"norm": jnp.asarray(np.linalg.norm(x, axis=0), jnp.float32),
             "hessian": jnp.asarray(x.T @ x, jnp.float32), "key": jax.random.key(6)}
    kwargs = {name: given[value] for name, value in extra.items()}
    eager = [rhojax.compress(w, method, level, **kwargs) for w in (w1, w2)]
    jitted = jax.jit(lambda w: rhojax.compress(w, method, level, **kwargs))(w1)
    mapped = jax.vmap(lambda w: rhojax.compress(w, method, level, **kwargs))(jnp.stack([w1, w2]))
    np.testing.assert_allclose(jitted, eager[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(mapped, np.stack(eager), rtol=1e-4, atol=1e-5)
    assert not np.allclose(eager[0], w1)
    if method == "magnitude":  # the plain rule: the 50% smallest |w| of the matrix are zero
        w = np.asarray(w1)
        threshold = np.sort(np.abs(w).ravel())[w.size // 2 - 1]
        np.testing.assert_array_equal(np.asarray(eager[0]) == 0, np.abs(w) <= threshold)


# --- sites, depth, errors -----------------------------------------------------------------------------------

def test_set_site_is_pure_and_touches_one_slice():
    w = jnp.full(CONFIG.site_shape("up"), 3.0)
    new = rhojax.set_site(P1, (2, "up"), w)
    assert float(jnp.abs(P1["blocks"]["up"]["w"][2] - 3.0).min()) > 0  # the input is unchanged
    np.testing.assert_array_equal(rhojax.get_site(new, (2, "up")), w)
    before, after = np.asarray(P1["blocks"]["up"]["w"]), np.asarray(new["blocks"]["up"]["w"])
    np.testing.assert_array_equal(np.delete(after, 2, 0), np.delete(before, 2, 0))
    assert new["blocks"]["down"] is P1["blocks"]["down"]
    model = rhojax.set_site(model_of(P1), (2, "up"), w)
    assert isinstance(model, rhojax.Model)
    np.testing.assert_array_equal(rhojax.get_site(model, (2, "up")), w)
    traced = jax.jit(lambda p, i: rhojax.get_site(p, (i, "q")))(P1, 3)
    np.testing.assert_array_equal(traced, P1["blocks"]["q"]["w"][3])


@pytest.mark.parametrize(("site", "message"), [
    ((4, "up"), r"site layer 4: choose an integer in 0\.\.3"),
    ((1, "c_fc"), "site kind 'c_fc': choose one of q, k, v, o, gate, up, down"),
    ((1,), r"give a pair \(layer, kind\)"),
])
def test_site_errors_list_valid_choices(site, message):
    with pytest.raises(rhojax.RhojaxError, match=message):
        rhojax.get_site(P1, site)
    with pytest.raises(rhojax.RhojaxError, match="w has shape"):
        rhojax.set_site(P1, (1, "up"), jnp.zeros((3, 3)))


def test_rank_layers_and_remove_layers():
    bi = np.array([0.3, 0.1, 0.4, 0.2])
    rho = np.array([[1.5, 1.5], [0.9, 0.9], [1.02, 0.98], [0.5, 0.5]])  # |mean - 1| = .5, .1, 0, .5
    np.testing.assert_array_equal(rhojax.rank_layers("bi", bi=bi), [1, 3, 0, 2])
    np.testing.assert_array_equal(rhojax.rank_layers("rho", rho=rho), [2, 1, 0, 3])
    np.testing.assert_array_equal(rhojax.rank_layers("rho", rho=rho, rho_order="descending")[:2], [0, 3])
    # blend 0.5 of the per-layer ranks rank_rho (2, 1, 0, 3) and rank_bi (2, 0, 3, 1), ties by rank_bi
    blend = 0.5 * np.array([2, 1, 0, 3]) + 0.5 * np.array([2, 0, 3, 1])
    expected = sorted(range(4), key=lambda i: (blend[i], [2, 0, 3, 1][i], i))
    np.testing.assert_array_equal(rhojax.rank_layers("blend", bi=bi, rho=rho, lam=0.5), expected)
    with pytest.raises(rhojax.RhojaxError, match="criterion 'shortgpt': choose rho, bi or blend"):
        rhojax.rank_layers("shortgpt", bi=bi)
    with pytest.raises(rhojax.RhojaxError, match="needs lam"):
        rhojax.rank_layers("blend", rho=rho, bi=bi)
    # result objects are accepted as they come
    result = rhojax.BlockInfluence(bi=jnp.asarray(bi), bi_without_bos=jnp.asarray(bi), tokens=1)
    np.testing.assert_array_equal(rhojax.rank_layers("bi", bi=result), [1, 3, 0, 2])

    config, params = rhojax.remove_layers((CONFIG, P1), [1, 3])
    assert config.num_layers == 2
    np.testing.assert_array_equal(params["blocks"]["q"]["w"], np.asarray(P1["blocks"]["q"]["w"])[[0, 2]])
    assert rhojax.forward((config, params), TOKENS).shape == (3, 10, CONFIG.vocab_size)


def test_invalid_enumerations_are_rejected_with_choices():
    w = rhojax.get_site(P1, (0, "up"))
    with pytest.raises(rhojax.RhojaxError, match="method 'wanda2': choose one of magnitude, magnitude_row, wanda"):
        rhojax.compress(w, "wanda2", 0.5)
    with pytest.raises(rhojax.RhojaxError, match="needs input norms"):
        rhojax.compress(w, "wanda", 0.5)
    prof = rhojax.rho_profile((CONFIG, P1), TOKENS, jax.random.key(0), samples=2, linearised=False)
    with pytest.raises(rhojax.RhojaxError, match="statistic 'rhoo': choose one of rho, beta"):
        prof.mean("rhoo")
    with pytest.raises(rhojax.RhojaxError, match="pass linearised=True"):
        prof.ci("rho_linear")
    with pytest.raises(rhojax.RhojaxError, match="dtype 'float16' is not supported; choose one of float32, bfloat16"):
        rhojax.load("smollm2-135m", dtype="float16")
    with pytest.raises(rhojax.RhojaxError, match="pass a rhojax.Model"):
        rhojax.loss(P1, TOKENS)


def test_library_errors_name_arguments_not_cli_flags():
    """No error raised in the library (outside the CLI layer) starts its message with a command-line flag."""
    root = Path(rhojax.__file__).parent
    #: rhojax/bounds/levels.py: its ``--plan`` message is asserted by the bounds CLI test (left to its owner).
    allowed = {root / "bounds" / "levels.py"}
    offenders = []
    for path in sorted(root.rglob("*.py")):
        if path.is_relative_to(root / "commands") or path == root / "cli.py" or path in allowed:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if "Error(f\"--" in line or "Error(\"--" in line:
                offenders.append(f"{path.relative_to(root)}:{number}")
    assert not offenders, offenders


def test_public_names_are_exported():
    for name in rhojax.__all__:
        assert getattr(rhojax, name) is not None
    for package in (rhojax.eval, rhojax.io, rhojax.data, rhojax.sensitivity, rhojax.compress, rhojax.models,
                    rhojax.depth, rhojax.propagation):
        assert package.__all__ and all(hasattr(package, name) for name in package.__all__)
    assert callable(rhojax.compress) and "wanda" in rhojax.compress.METHODS
    assert (Path(rhojax.__file__).parent / "py.typed").exists()
