"""Early exit: logit lens, agreement / settled fractions and exit policies."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rhojax.eval.perplexity import token_nll
from rhojax.models import forward, unembed
from rhojax.structure.early_exit import (
    LensRecord,
    agreement,
    collect_lens,
    confident_agreement,
    exit_policy,
    lens_statistics,
    settled,
)
from rhojax.structure.hidden import collect_hidden
from tests.test_structure_helpers import tiny_model, tiny_windows


def test_lens_at_the_last_layer_is_the_models_own_prediction(smollm2, smollm2_windows):
    config, params = smollm2.config, smollm2.params
    tokens = jnp.asarray(smollm2_windows("evaluation", 1, 64))
    logits, hidden = forward(config, params, tokens, return_hidden=True)
    top1, confidence, nll = lens_statistics(config, params, hidden[-2:], tokens)
    np.testing.assert_array_equal(top1[-1], np.argmax(logits[:, :-1], axis=-1))
    np.testing.assert_allclose(nll[-1], token_nll(logits, tokens), rtol=1e-5, atol=1e-5)
    probs = jax.nn.softmax(logits[:, :-1], axis=-1)
    np.testing.assert_allclose(confidence[-1], np.max(probs, axis=-1), rtol=1e-5)
    assert np.mean(top1[0] == top1[-1]) < 1  # the penultimate state is a different predictor


def test_collect_lens_matches_explicit_logits_per_state():
    config, params = tiny_model()
    windows = tiny_windows(3, 10)
    hidden = collect_hidden(config, params, windows, batch_size=2)
    record = collect_lens(config, params, hidden, windows, batch_size=2)
    for s in range(hidden.shape[0]):
        logits = unembed(config, params, jnp.asarray(hidden[s]))
        np.testing.assert_array_equal(record.top1[s], np.argmax(logits[:, :-1], -1).reshape(-1))
        np.testing.assert_allclose(record.nll[s], np.asarray(token_nll(logits, jnp.asarray(windows))).reshape(-1),
                                   rtol=1e-5, atol=1e-6)


@st.composite
def lens_records(draw):
    s, n = draw(st.integers(2, 6)), draw(st.integers(1, 12))
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    return LensRecord(
        top1=rng.integers(0, 3, size=(s, n)),
        confidence=rng.uniform(size=(s, n)),
        nll=rng.uniform(0.0, 5.0, size=(s, n)),
    )


def _loop_exit(record: LensRecord, threshold: float, oracle: bool, min_state: int) -> np.ndarray:
    s, n = record.top1.shape
    exits = []
    for i in range(n):
        e = s - 1
        for t in range(min_state, s):
            ok = record.confidence[t, i] >= threshold and (not oracle or record.top1[t, i] == record.top1[-1, i])
            if ok:
                e = t
                break
        exits.append(e)
    return np.array(exits)


@settings(max_examples=60, deadline=None)
@given(lens_records(), st.sampled_from([0.0, 0.3, 0.8]), st.booleans(), st.integers(0, 2))
def test_fractions_and_exit_policies_match_plain_loops(record, threshold, oracle, min_state):
    s, n = record.top1.shape
    final = record.top1[-1]
    agree = np.array([[record.top1[t, i] == final[i] for i in range(n)] for t in range(s)])
    np.testing.assert_allclose(agreement(record.top1), agree.mean(1))
    done = np.array([[all(agree[u, i] for u in range(t, s)) for i in range(n)] for t in range(s)])
    np.testing.assert_allclose(settled(record.top1), done.mean(1))
    np.testing.assert_allclose(confident_agreement(record, threshold),
                               (agree & (record.confidence >= threshold)).mean(1))
    exits = _loop_exit(record, threshold, oracle, min_state)
    policy = exit_policy(record, threshold, oracle, min_state)
    np.testing.assert_allclose(policy["compute_saving"], np.mean([(s - 1 - e) / (s - 1) for e in exits]))
    np.testing.assert_allclose(policy["perplexity"], np.exp(np.mean([record.nll[e, i] for i, e in enumerate(exits)])))
    match = np.mean([record.top1[e, i] == final[i] for i, e in enumerate(exits)])
    np.testing.assert_allclose(policy["final_top1_match"], match)
    if oracle:
        assert policy["final_top1_match"] == 1.0
    assert settled(record.top1)[-1] == 1.0 and np.all(np.diff(settled(record.top1)) >= 0)
