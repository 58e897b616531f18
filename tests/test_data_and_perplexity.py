"""Corpora split, token windows and perplexity against independent plain computations."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rhojax.data.corpora import documents, source_text, wiki_documents, wiki_split_of
from rhojax.data.windows import PREFIX_MARGIN, corpus_windows, encode_prefix, safe_cut, text_windows
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


def test_text_file_is_read_whole_and_named_corpora_need_a_split(tmp_path):
    path = tmp_path / "mine.txt"
    path.write_text("first document\n\nsecond one\n")
    assert source_text(str(path)) == "first document\n\nsecond one\n"
    assert source_text("news", "evaluation") == "\n\n".join(documents("news", "evaluation"))
    with pytest.raises(DataError, match="no such file"):
        source_text(str(tmp_path / "nope.txt"))
    with pytest.raises(DataError, match="say which split"):
        source_text("wiki")
    with pytest.raises(DataError, match="choose one of calibration, evaluation"):
        corpus_windows(None, "wiki", "eval", 64, 8)
    (tmp_path / "blank.txt").write_text(" \n\n ")
    with pytest.raises(DataError, match="empty"):
        source_text(str(tmp_path / "blank.txt"))


class _WordTokenizer:
    """A stand-in whose ids depend on context, as BPE's do: a word's id depends on the whitespace before it."""

    bos_id, eos_id = 0, None

    def encode(self, text):
        return [sum(map(ord, piece)) % 97 + 1 for piece in re.findall(r"\s*\S+|\s+", text)]


def test_windows_are_bos_plus_consecutive_chunks_of_the_whole_text():
    text = "alpha beta\n\ngamma delta epsilon\nzeta eta theta iota kappa"
    whole = _WordTokenizer().encode(text)
    windows = text_windows(_WordTokenizer(), text, seq_len=4, num_windows=3)
    assert windows.shape == (3, 4)
    assert (windows[:, 0] == 0).all()
    assert windows[:, 1:].reshape(-1).tolist() == whole[:9]
    with pytest.raises(DataError, match="ask for fewer tokens"):
        text_windows(_WordTokenizer(), text, seq_len=4, num_windows=10)


def test_encode_prefix_equals_the_whole_text_for_every_length():
    rng = np.random.default_rng(0)
    words = ["".join(rng.choice(list("abcdefgh"), size=rng.integers(1, 9))) for _ in range(3000)]
    seps = rng.choice([" ", "  ", "\n", "\n\n", ". "], size=len(words), p=[0.7, 0.05, 0.1, 0.1, 0.05])
    text = "".join(w + s for w, s in zip(words, seps, strict=True))
    whole = _WordTokenizer().encode(text)
    for needed in (1, 50, 200, 700, len(whole) - PREFIX_MARGIN, len(whole), len(whole) + 5):
        assert encode_prefix(_WordTokenizer(), text, needed).tolist() == whole[:needed]


def test_safe_cut_lies_between_two_letters():
    text = "one two\nthree 4 five, six"
    cut = safe_cut(text, len(text))
    assert cut == 3 and text[cut - 1 : cut + 2] == "e t"  # "e 4" and ", s" are not between two letters
    assert safe_cut("12 34\n", 6) is None


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
