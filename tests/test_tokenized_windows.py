"""Windows match the tokenizer's view of running text, and so does the perplexity built on them.

The reference side never calls rhojax's data code: it reads the file, tokenizes it whole with
transformers' own tokenizer, cuts ``[BOS] + 511`` windows and runs transformers' PyTorch model.
"""

from __future__ import annotations

import pytest
import torch

from rhojax.data.corpora import wiki_documents
from rhojax.data.windows import corpus_windows, text_windows
from rhojax.eval.perplexity import perplexity


def _multi_paragraph_text() -> str:
    """Real English text with paragraph breaks inside and between articles (those with several paragraphs)."""
    articles = [a for a in wiki_documents("evaluation") if "\n" in a]
    return "\n\n".join(articles) + "\n"


@pytest.mark.slow
def test_windows_equal_the_whole_text_tokenization(smollm2):
    text = _multi_paragraph_text()
    whole = smollm2.tokenizer.backend(text, add_special_tokens=False)["input_ids"]
    assert whole.count(198) > 50  # paragraph breaks before words are "\n" tokens in running text
    for seq_len, num in ((512, 6), (128, 3), (64, 40)):
        windows = text_windows(smollm2.tokenizer, text, seq_len, num)
        expected = [[smollm2.tokenizer.bos_id] + whole[i * (seq_len - 1) : (i + 1) * (seq_len - 1)] for i in range(num)]
        assert windows.tolist() == expected


@pytest.mark.slow
def test_file_perplexity_matches_transformers_on_its_own_tokenization(smollm2, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = tmp_path / "paragraphs.txt"
    path.write_text(_multi_paragraph_text(), encoding="utf-8")
    ours = perplexity(smollm2.config, smollm2.params, corpus_windows(smollm2.tokenizer, str(path), tokens=2048,
                                                                    seq_len=512))

    folder, name = str(smollm2.source.parent), smollm2.gguf_file
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    reference = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32).eval()
    ids = tokenizer(path.read_text(encoding="utf-8"), add_special_tokens=False)["input_ids"]
    bos = tokenizer.convert_tokens_to_ids("<|im_start|>")
    windows = torch.tensor([[bos] + ids[i * 511 : (i + 1) * 511] for i in range(4)])
    with torch.no_grad():
        logits = torch.cat([reference(windows[i : i + 2]).logits for i in range(0, 4, 2)])
    nll = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), windows[:, 1:].reshape(-1))
    assert ours.scored_tokens == 4 * 511
    assert ours.perplexity == pytest.approx(float(torch.exp(nll)), rel=5e-3)


def test_drawn_windows_are_distinct_windows_of_the_text_and_depend_on_the_seed():
    from rhojax.data.windows import DRAW_POOL, drawn_windows
    from tests.tiny_models import smollm2_tokenizer

    tokenizer = smollm2_tokenizer()
    text = "\n\n".join(wiki_documents("calibration")[:400])
    seq_len, num = 32, 5
    ids = tokenizer.backend(text[:200_000], add_special_tokens=False)["input_ids"]
    chunk = seq_len - 1
    pool = [[tokenizer.bos_id] + ids[i * chunk : (i + 1) * chunk] for i in range(DRAW_POOL * num)]
    draws = {seed: drawn_windows(tokenizer, text, seq_len, num, seed).tolist() for seed in (1, 2)}
    for rows in draws.values():
        where = [pool.index(row) for row in rows]  # each one of the first DRAW_POOL * num windows
        assert where == sorted(set(where)) and len(where) == num
    assert draws[1] != draws[2]
    assert corpus_windows(tokenizer, "wiki", "calibration", 5 * seq_len, seq_len, seed=1).tolist() != \
        corpus_windows(tokenizer, "wiki", "calibration", 5 * seq_len, seq_len).tolist()
