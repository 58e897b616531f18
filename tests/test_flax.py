"""rhojax.flax: NNX modules over rhojax params, checked against transformers and the functional model."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
from flax import nnx

from rhojax import flax as rflax
from rhojax.errors import RhojaxError
from rhojax.io.hf import load_hf_folder
from rhojax.models import ModelConfig, forward, init_params
from rhojax.models.params import block_spec, top_spec
from tests.hf_reference import FAMILY_CASES, build_reference


def _nll(logits: jax.Array, tokens: jax.Array) -> jax.Array:
    logp = jax.nn.log_softmax(logits[..., :-1, :], axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, tokens[..., 1:, None], axis=-1))


def _leaves_by_path(params: dict) -> dict:
    return {jax.tree_util.keystr(k): v for k, v in jax.tree_util.tree_leaves_with_path(params)}


@pytest.mark.parametrize("name", sorted(FAMILY_CASES))
def test_flax_model_matches_forward_and_transformers(name, tmp_path):
    reference = build_reference(name, tmp_path)
    config, params = load_hf_folder(tmp_path)
    model = rflax.from_params(config, params)
    tokens = jnp.asarray(np.random.default_rng(1).integers(0, config.vocab_size, size=(2, 17)))
    ours = np.asarray(model(tokens))
    np.testing.assert_allclose(ours, np.asarray(forward(config, params, tokens)), atol=1e-6, rtol=0)
    with torch.no_grad():
        expected = reference(torch.tensor(np.asarray(tokens))).logits.numpy()
    assert np.max(np.abs(ours - expected)) < 1e-4
    # Under nnx.jit and nnx.vmap (one sequence per call) the logits do not change.
    np.testing.assert_allclose(np.asarray(nnx.jit(lambda m, t: m(t))(model, tokens)), ours, atol=1e-6, rtol=0)
    mapped = nnx.vmap(lambda m, t: m(t), in_axes=(None, 0))(model, tokens[:, None, :])[:, 0]
    np.testing.assert_allclose(np.asarray(mapped), ours, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", ["llama_gqa_untied", "gpt2_conv1d"])
def test_names_address_the_checkpoint_tensors(name, tmp_path):
    """``model.layers.N.<hf module>.kernel`` is the transposed torch weight of that exact module."""
    reference = build_reference(name, tmp_path)
    model = rflax.from_params(*load_hf_folder(tmp_path))
    state = reference.state_dict()
    if name.startswith("gpt2"):  # Conv1D weights are already (in, out); c_attn is split into q|k|v
        d = model.config.hidden_size
        fused = state["transformer.h.2.attn.c_attn.weight"].numpy()
        np.testing.assert_array_equal(np.asarray(rflax.get(model, "transformer.h.2.attn.k_proj.kernel")),
                                      fused[:, d : 2 * d])
        np.testing.assert_array_equal(np.asarray(rflax.get(model, "transformer.h.1.mlp.c_fc.bias")),
                                      state["transformer.h.1.mlp.c_fc.bias"].numpy())
        np.testing.assert_array_equal(np.asarray(model.transformer.h[0].ln_2.scale),
                                      state["transformer.h.0.ln_2.weight"].numpy())
    else:
        for layer in range(model.config.num_layers):
            for hf in ("self_attn.q_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.down_proj"):
                np.testing.assert_array_equal(np.asarray(rflax.get(model, f"model.layers.{layer}.{hf}.kernel")),
                                              state[f"model.layers.{layer}.{hf}.weight"].numpy().T)
        np.testing.assert_array_equal(np.asarray(model.model.layers[1].post_attention_layernorm.scale),
                                      state["model.layers.1.post_attention_layernorm.weight"].numpy())
        np.testing.assert_array_equal(np.asarray(model.lm_head.kernel[...]), state["lm_head.weight"].numpy().T)


def _config(family: str) -> ModelConfig:
    if family == "gpt2":
        return ModelConfig("gpt2", 53, 16, 3, 4, 4, 4, 32, 1e-5, max_position_embeddings=32, tie_embeddings=True)
    return ModelConfig("llama", 53, 16, 3, 4, 2, 6, 24, 1e-6, max_position_embeddings=32, qkv_bias=True,
                       qk_norm=True)


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_no_copy_and_exact_round_trip(family):
    config = _config(family)
    params = init_params(config, jax.random.PRNGKey(0))
    model = rflax.from_params(config, params)
    back_config, back = rflax.to_params(model)
    assert back_config == config
    original, returned = _leaves_by_path(params), _leaves_by_path(back)
    assert original.keys() == returned.keys()
    assert all(returned[k] is original[k] for k in original)  # the very same arrays: no copy either way
    n_params = len(nnx.state(model, nnx.Param).flat_state())
    assert n_params == len(top_spec(config)) + len(block_spec(config)) == len(original)


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_gradient_equals_functional_gradient_and_one_step_lowers_loss(family):
    config = _config(family)
    params = init_params(config, jax.random.PRNGKey(1), scale=0.2)
    tokens = jax.random.randint(jax.random.PRNGKey(2), (2, 12), 0, config.vocab_size)
    model = rflax.from_params(config, params)

    def loss(m):
        return _nll(m(tokens), tokens)

    value, grads = nnx.value_and_grad(loss)(model)
    expected = jax.grad(lambda p: _nll(forward(config, p, tokens), tokens))(params)
    paths = rflax.module_paths(config)
    flat = {".".join(map(str, k)): v[...] for k, v in grads.flat_state()}
    for path, dotted in paths.items():
        node = expected
        for part in path.split("/"):
            node = node[part]
        np.testing.assert_allclose(np.asarray(flat[dotted]), np.asarray(node), atol=1e-6, rtol=1e-5)

    optimizer = nnx.Optimizer(model, optax.adamw(1e-2), wrt=nnx.Param)
    optimizer.update(model, grads)  # one gradient step through the module
    after = float(loss(model))
    assert after < float(value)
    assert float(_nll(forward(config, params, tokens), tokens)) == pytest.approx(float(value))  # params untouched


def test_layer_views_and_layer_masked_training():
    config = _config("llama")
    params = init_params(config, jax.random.PRNGKey(3), scale=0.2)
    model = rflax.from_params(config, params)
    view = model.model.layers[1]
    np.testing.assert_array_equal(np.asarray(view.mlp.up_proj.kernel), np.asarray(params["blocks"]["up"]["w"][1]))
    view.self_attn.k_norm.scale = jnp.full((config.head_dim,), 2.0)
    scale = np.asarray(model.model.layers.self_attn.k_norm.scale[...])
    assert np.all(scale[1] == 2.0) and np.all(scale[[0, 2]] == 1.0)
    rflax.set_(model, "model.layers.2.self_attn.q_proj.bias", jnp.ones(config.q_size))
    assert np.all(np.asarray(rflax.get(model, "model.layers.2.self_attn.q_proj.bias")) == 1.0)
    with pytest.raises(RhojaxError, match="layer 7"):
        rflax.get(model, "model.layers.7.mlp.up_proj.kernel")
    with pytest.raises(RhojaxError, match="no such parameter"):
        rflax.get(model, "model.layers.0.mlp.fc9.kernel")

    before = nnx.state(model, nnx.Param).flat_state()
    before = {k: np.asarray(v[...]) for k, v in before}
    tokens = jax.random.randint(jax.random.PRNGKey(4), (2, 10), 0, config.vocab_size)
    tx = rflax.masked(optax.adamw(1e-2, weight_decay=0.1), rflax.layer_mask(model, [1]))
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)

    @nnx.jit
    def train_step(model, optimizer):
        optimizer.update(model, nnx.grad(lambda m: _nll(m(tokens), tokens))(model))

    train_step(model, optimizer)
    for k, v in nnx.state(model, nnx.Param).flat_state():
        new = np.asarray(v[...])
        if k[:2] == ("model", "layers"):
            np.testing.assert_array_equal(new[[0, 2]], before[k][[0, 2]])
            assert np.any(new[1] != before[k][1])
        else:
            np.testing.assert_array_equal(new, before[k])


@pytest.mark.slow
def test_packaged_model_in_flax_matches_forward(smollm2):
    model = rflax.from_params(smollm2.config, smollm2.params)
    tokens = jnp.asarray([[smollm2.tokenizer.bos_id, *smollm2.tokenizer.encode("The capital of France is")]])
    np.testing.assert_allclose(np.asarray(model(tokens)), np.asarray(forward(smollm2.config, smollm2.params, tokens)),
                               atol=1e-6, rtol=0)
    assert model.model.layers.mlp.down_proj.kernel[...] is smollm2.params["blocks"]["down"]["w"]


def test_readme_flax_example_runs(tmp_path):
    """The README's Flax + optax example, executed on a tiny random llama saved as a Hugging Face folder."""
    from pathlib import Path

    from rhojax.io.save_hf import save_hf

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    code = readme.split("<!-- readme-flax-example -->\n```python\n", 1)[1].split("```", 1)[0]
    config = ModelConfig("llama", 61, 16, 4, 4, 2, 4, 24, 1e-6, max_position_embeddings=32)
    params = init_params(config, jax.random.PRNGKey(7), scale=0.2)
    save_hf(config, params, tmp_path)
    namespace: dict = {}
    exec(compile(code.replace("path/to/hf-folder", str(tmp_path)), "README.md", "exec"), namespace)
    assert namespace["losses"][-1] < namespace["losses"][0]
    trained = namespace["params"]["blocks"]
    for kind in config.site_kinds:
        np.testing.assert_array_equal(np.asarray(trained[kind]["w"])[[0, 1, 2]],
                                      np.asarray(params["blocks"][kind]["w"])[[0, 1, 2]])
        assert np.any(np.asarray(trained[kind]["w"])[3] != np.asarray(params["blocks"][kind]["w"])[3])
    np.testing.assert_array_equal(np.asarray(namespace["q_proj_3"]), np.asarray(trained["q"]["w"][3]))
