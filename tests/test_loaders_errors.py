"""Bad input gets a one-line error naming the file or tensor, and nothing half-loaded is returned."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file
from typer.testing import CliRunner

from rhojax.cli import app
from rhojax.errors import LoadError
from rhojax.io.gguf_file import load_gguf, unpermute_rope_rows
from rhojax.io.hf import load_hf_folder
from rhojax.io.resolve import load_model
from tests.hf_reference import build_reference


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("llama")
    build_reference("llama_gqa_untied", folder)
    return folder


def _copy(src, tmp_path):
    dst = tmp_path / "model"
    shutil.copytree(src, dst)
    return dst


def _edit_tensors(folder, edit):
    path = folder / "model.safetensors"
    tensors = load_file(path)
    edit(tensors)
    save_file(tensors, path)


def test_corrupted_safetensors(hf_folder, tmp_path):
    folder = _copy(hf_folder, tmp_path)
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(b"\xff" * 8 + data[8:])
    with pytest.raises(LoadError, match=r"model\.safetensors: corrupted safetensors header"):
        load_hf_folder(folder)


def test_truncated_safetensors(hf_folder, tmp_path):
    folder = _copy(hf_folder, tmp_path)
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(LoadError, match="truncated"):
        load_hf_folder(folder)


def test_unknown_architecture(hf_folder, tmp_path):
    folder = _copy(hf_folder, tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "bert"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(LoadError, match=r"config\.json: unknown architecture model_type='bert'"):
        load_hf_folder(folder)


def test_missing_tensor(hf_folder, tmp_path):
    folder = _copy(hf_folder, tmp_path)
    _edit_tensors(folder, lambda t: t.pop("model.layers.1.mlp.up_proj.weight"))
    with pytest.raises(LoadError, match=r"missing tensor model\.layers\.1\.mlp\.up_proj\.weight"):
        load_hf_folder(folder)


def test_wrong_shape(hf_folder, tmp_path):
    folder = _copy(hf_folder, tmp_path)
    _edit_tensors(folder, lambda t: t.update({"model.norm.weight": np.ones(7, np.float32)}))
    with pytest.raises(LoadError, match=r"final_norm/scale has shape \(7,\), expected \(64,\)"):
        load_hf_folder(folder)


def test_nan_weight(hf_folder, tmp_path):
    folder = _copy(hf_folder, tmp_path)

    def poison(t):
        w = t["model.layers.2.self_attn.v_proj.weight"].copy()
        w[0, 0] = np.nan
        t["model.layers.2.self_attn.v_proj.weight"] = w

    _edit_tensors(folder, poison)
    with pytest.raises(LoadError, match="layer 2 v/w contains NaN or Inf"):
        load_hf_folder(folder)


def test_missing_paths(tmp_path):
    with pytest.raises(LoadError, match="not a packaged model"):
        load_model(str(tmp_path / "nowhere"))
    with pytest.raises(LoadError, match="no config.json"):
        load_hf_folder(tmp_path)
    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(LoadError, match="must be .gguf"):
        load_model(str(tmp_path / "weights.bin"))


def test_truncated_gguf(smollm2, tmp_path):
    damaged = tmp_path / "damaged.gguf"
    with open(smollm2.source, "rb") as f:
        damaged.write_bytes(f.read(1 << 20))
    with pytest.raises(LoadError, match=r"damaged\.gguf: not a readable GGUF file"):
        load_gguf(damaged)


def test_cli_prints_one_line_error_and_exit_code_2(tmp_path):
    result = CliRunner().invoke(app, ["info", str(tmp_path / "missing-model")])
    assert result.exit_code == 2
    assert "error:" in result.output and "Traceback" not in result.output


def test_unpermute_inverts_llama_cpp_permute():
    """llama.cpp permutes rows as reshape(h, 2, hd/2).swapaxes(1, 2); we must undo exactly that."""
    heads, head_dim, width = 3, 8, 5
    w = np.random.default_rng(0).normal(size=(heads * head_dim, width))
    permuted = w.reshape(heads, 2, head_dim // 2, width).swapaxes(1, 2).reshape(w.shape)
    np.testing.assert_array_equal(unpermute_rope_rows(permuted, heads), w)


GEMMA3_CONFIG = {"model_type": "gemma3_text", "vocab_size": 11, "hidden_size": 8, "num_hidden_layers": 2,
                 "num_attention_heads": 2, "intermediate_size": 16, "head_dim": 4}


@pytest.mark.parametrize(
    "change, message",
    [
        ({"final_logit_softcapping": 30.0}, "final_logit_softcapping=30.0 is not supported for gemma3"),
        ({"attn_logit_softcapping": 50.0}, "attn_logit_softcapping=50.0 is not supported"),
        ({"hidden_activation": "gelu"}, "hidden_activation='gelu' is not supported"),
        ({"rope_parameters": {"sliding_attention": {"rope_type": "linear", "factor": 2.0}}},
         "RoPE scaling on sliding-window layers is not supported"),
        ({"layer_types": ["full_attention"]}, "layer_types must list"),
    ],
)
def test_gemma3_options_rhojax_does_not_implement_are_refused(change, message, tmp_path):
    folder = tmp_path / "gemma"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(GEMMA3_CONFIG | change))
    save_file({}, str(folder / "model.safetensors"))
    with pytest.raises(LoadError, match=message):
        load_hf_folder(folder)


def test_attention_bias_is_refused_where_it_cannot_be_read(tmp_path):
    folder = tmp_path / "mistral"
    folder.mkdir()
    config = dict(GEMMA3_CONFIG, model_type="mistral", attention_bias=True)
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(LoadError, match="attention_bias=true .* is not supported for mistral"):
        load_hf_folder(folder)


def test_packaged_parts_are_concatenated_once_and_checked(tmp_path, monkeypatch):
    import hashlib

    from rhojax.io import resolve

    parts = {"a": b"GGUF" + bytes(range(50)), "b": bytes(range(50, 200))}
    for name, data in parts.items():
        (tmp_path / name).write_bytes(data)
    monkeypatch.setattr(resolve, "asset_file", lambda package, relative: tmp_path / relative)
    monkeypatch.setenv("RHOJAX_CACHE", str(tmp_path / "cache"))
    whole = parts["a"] + parts["b"]
    good = resolve.PackagedModel("m.gguf", (("p1", "a"), ("p2", "b")), "test", hashlib.sha256(whole).hexdigest())
    assert resolve.packaged_file(good).read_bytes() == whole
    bad = resolve.PackagedModel("n.gguf", good.parts, "test model", "0" * 64)
    with pytest.raises(LoadError, match=r"n\.gguf: the concatenated parts have sha256 .* reinstall"):
        resolve.packaged_file(bad)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["m.gguf"]  # nothing half-written left
