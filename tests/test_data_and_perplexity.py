"""Corpora split, token windows and perplexity against independent plain computations."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rhojax.data.corpora import documents, wiki_documents, wiki_split_of
from rhojax.data.windows import token_windows
from rhojax.errors import DataError
from rhojax.eval.perplexity import final_state_nll, perplexity, window_nll
from rhojax.models import ModelConfig, forward, init_params

TINY = ModelConfig(
    family="llama",
    vocab_size=50,
    hidden_size=32,
    num_layers=2,
    num_heads=4,
    num_kv_heads=2,
    head_dim=8,
    intermediate_size=48,
    norm_eps=1e-5,
)


def test_wiki_split_is_disjoint_deterministic_and_sized():
    calibration, evaluation = wiki_documents("calibration"), wiki_documents("evaluation")
    assert not set(calibration) & set(evaluation)
    assert wiki_documents("evaluation") == evaluation
    assert 0.15 < len(evaluation) / (len(calibration) + len(evaluation)) < 0.25
    assert wiki_split_of("Paris") == wiki_split_of("Paris")


def test_evaluation_only_corpora_refuse_calibration():
    assert len(documents("lambada", "evaluation")) == 5153
    assert len(documents("news", "evaluation")) > 100
    with pytest.raises(DataError, match="evaluation-only"):
        documents("news", "calibration")


def test_text_file_and_missing_file(tmp_path):
    path = tmp_path / "mine.txt"
    path.write_text("first document\n\nsecond one\n")
    assert documents(str(path), "evaluation") == ["first document", "second one"]
    with pytest.raises(DataError, match="no such file"):
        documents(str(tmp_path / "nope.txt"), "evaluation")


class _CharTokenizer:
    bos_id, eos_id = 0, None

    def encode(self, text):
        return [ord(c) % 40 + 1 for c in text]

    def encode_batch(self, texts):
        return [self.encode(t) for t in texts]


def test_windows_are_bos_plus_consecutive_chunks():
    docs = ["abcdefghij", "klmnop"]
    windows = token_windows(_CharTokenizer(), docs, seq_len=5, num_windows=3)
    stream = _CharTokenizer().encode("abcdefghij\n\nklmnop\n\n")
    assert windows.shape == (3, 5)
    assert (windows[:, 0] == 0).all()
    assert windows[:, 1:].reshape(-1).tolist() == stream[:12]
    with pytest.raises(DataError, match="lower --tokens"):
        token_windows(_CharTokenizer(), docs, seq_len=5, num_windows=10)


def test_perplexity_equals_plain_numpy_and_ignores_batch_padding():
    params = init_params(TINY, jax.random.key(0), scale=0.3)
    windows = np.random.default_rng(1).integers(0, TINY.vocab_size, size=(5, 12)).astype(np.int32)
    logits = np.asarray(forward(TINY, params, jnp.asarray(windows)), dtype=np.float64)
    logp = (
        logits
        - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True))
        - logits.max(-1, keepdims=True)
    )
    nll = -np.take_along_axis(logp[:, :-1], windows[:, 1:, None], axis=-1).mean()
    for batch_size in (1, 2, 5):
        result = perplexity(TINY, params, windows, batch_size=batch_size)
        assert result.scored_tokens == 5 * 11
        assert result.perplexity == pytest.approx(np.exp(nll), rel=1e-5)


def test_final_state_nll_matches_full_forward():
    params = init_params(TINY, jax.random.key(2), scale=0.3)
    tokens = jnp.asarray(np.random.default_rng(3).integers(0, TINY.vocab_size, size=(2, 10)))
    _, hidden = forward(TINY, params, tokens, return_hidden=True)
    np.testing.assert_allclose(
        final_state_nll(TINY, params, hidden[-1], tokens), window_nll(TINY, params, tokens), rtol=1e-5
    )
