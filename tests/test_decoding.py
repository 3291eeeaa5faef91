"""Greedy and batched beam search: beam 1 == greedy, exhaustive optimum, EOS / max_len, batching."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from vidcap_core.decoding import (
    Hypothesis,
    beam_search,
    beam_search_unbatched,
    gnmt_length_penalty,
    greedy_decode,
)
from vidcap_core.errors import ConfigError
from vidcap_core.models import (
    ARCH_NAMES,
    BOS_ID,
    CELL_NAMES,
    EOS_ID,
    PAD_ID,
    CaptionModel,
    ModelConfig,
    build_model,
)

B, T, F, H, E, R = 3, 6, 16, 16, 12, 4
ALL = [(arch, cell) for arch in ARCH_NAMES for cell in CELL_NAMES]


def assert_close(actual, expected, rtol: float = 1e-5, atol: float = 1e-5) -> None:
    """np.testing on tensors: torch.testing would import torch.distributed and sympy (seconds of CPU)."""
    np.testing.assert_allclose(
        torch.as_tensor(actual).detach().double().numpy(), torch.as_tensor(expected).detach().double().numpy(), rtol=rtol, atol=atol
    )
EOS_BIAS = 0.5  # with the sharpened random classifier: captions of 0 to 8 tokens (guarded below)


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_model(arch: str, cell: str, vocab_size: int = 20, eos_bias: float = 0.0, seed: int = 0) -> CaptionModel:
    """A random-weight model; `eos_bias` shifts the EOS logit so captions end at different lengths."""
    torch.manual_seed(seed)
    config = ModelConfig(
        arch=arch, cell=cell, feature_dim=F, vocab_size=vocab_size,
        embed_size=E, hidden_size=H, attention_size=8, num_layers=2, max_tokens=8,
    )
    model = build_model(config).eval()
    with torch.no_grad():
        model.classifier.weight.mul_(8.0)  # sharper distributions: more varied argmax paths
        model.classifier.bias[EOS_ID] += eos_bias
    return model


def tiny_inputs(seed: int = 1, batch: int = B, regions: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    shape = (batch, T, F) if regions is None else (batch, T, regions, F)
    mask = torch.ones(batch, T, dtype=torch.bool)
    mask[1 % batch, 3:] = False
    return torch.randn(shape, generator=g), mask


def sequence_logprobs(model, feats, mask, sequences: list[list[int]], ended: list[bool]) -> torch.Tensor:
    """Log-probability of each sequence (EOS included when `ended`) for one clip, by teacher forcing."""
    n = len(sequences)
    width = max(len(s) for s in sequences) + 1
    inputs = torch.full((n, width), PAD_ID, dtype=torch.long)
    for i, seq in enumerate(sequences):
        inputs[i, : len(seq) + 1] = torch.tensor([BOS_ID, *seq])
    with torch.no_grad():
        logits, _ = model(feats.expand(n, *feats.shape[1:]), mask.expand(n, -1), inputs)
    logprobs = torch.log_softmax(logits.float(), -1)  # (n, width, V)
    totals = []
    for i, (seq, eos) in enumerate(zip(sequences, ended)):
        targets = seq + ([EOS_ID] if eos else [])
        totals.append(sum(logprobs[i, t, tok] for t, tok in enumerate(targets)))
    return torch.stack(totals)


@pytest.mark.parametrize(("arch", "cell"), ALL)
def test_beam_of_one_is_exactly_greedy(arch, cell):
    model = tiny_model(arch, cell, eos_bias=EOS_BIAS)
    feats, mask = tiny_inputs(batch=6)
    greedy = greedy_decode(model, feats, mask)
    beams = beam_search(model, feats, mask, beam_size=1)
    assert [hyps[0].tokens for hyps in beams] == greedy.tokens
    # Equal up to float rounding: beam search drops finished clips from its batch, and a
    # matrix product over fewer rows may round differently in the last bits.
    assert_close(torch.tensor([hyps[0].logprob for hyps in beams]), greedy.scores, rtol=1e-6, atol=1e-6)
    assert [hyps[0].score for hyps in beams] == [hyps[0].logprob for hyps in beams]
    if arch == "attention":
        for hyps, att in zip(beams, greedy.attention):
            np.testing.assert_allclose(hyps[0].attention, att, atol=1e-6)


def test_eos_bias_gives_captions_of_different_lengths():
    """Guards the test above: it must see captions that end early and ones cut at max_len."""
    lengths = set()
    for arch, cell in ALL:
        lengths |= {len(t) for t in greedy_decode(tiny_model(arch, cell, eos_bias=EOS_BIAS), *tiny_inputs(batch=6)).tokens}
    assert len(lengths) >= 4 and 8 in lengths and min(lengths) < 8


@pytest.mark.parametrize(("arch", "cell"), ALL)
def test_greedy_output_and_scores_match_teacher_forcing(arch, cell):
    model = tiny_model(arch, cell, eos_bias=EOS_BIAS)
    feats, mask = tiny_inputs(batch=4)
    result = greedy_decode(model, feats, mask, max_len=6)
    assert result.scores.shape == (4,)
    for i, tokens in enumerate(result.tokens):
        assert len(tokens) <= 6 and not {PAD_ID, BOS_ID, EOS_ID} & set(tokens)
        ended = len(tokens) < 6
        expected = sequence_logprobs(model, feats[i : i + 1], mask[i : i + 1], [tokens], [ended])
        assert_close(result.scores[i : i + 1], expected, rtol=1e-5, atol=1e-5)
        if arch == "attention":
            assert result.attention[i].shape == (len(tokens), T)
            np.testing.assert_allclose(result.attention[i].sum(-1), 1.0, atol=1e-5)
        else:
            assert result.attention is None
    if arch == "attention":
        assert np.all(result.attention[1][:, 3:] == 0.0)  # clip 1 has 3 real frames


@pytest.mark.parametrize(("arch", "cell"), ALL)
def test_beam_search_finds_the_exhaustive_optimum(arch, cell):
    """V = 6 (4 emittable tokens), max_len = 3: 40 possible captions, so the best is known."""
    model = tiny_model(arch, cell, vocab_size=6, eos_bias=1.0)
    feats, mask = tiny_inputs(batch=2)
    words, max_len = [3, 4, 5], 3
    sequences = [list(s) for n in range(max_len) for s in itertools.product(words, repeat=n)]
    ended = [True] * len(sequences)
    cut = [list(s) for s in itertools.product(words, repeat=max_len)]
    sequences, ended = sequences + cut, ended + [False] * len(cut)
    beams = beam_search(model, feats, mask, beam_size=16, max_len=max_len, n_best=5)
    greedy = greedy_decode(model, feats, mask, max_len=max_len)
    for i, hyps in enumerate(beams):
        exhaustive = sequence_logprobs(model, feats[i : i + 1], mask[i : i + 1], sequences, ended)
        best = torch.sort(exhaustive, descending=True)
        assert [h.tokens for h in hyps] == [sequences[j] for j in best.indices[:5].tolist()]
        assert_close(torch.tensor([h.logprob for h in hyps]), best.values[:5], rtol=1e-5, atol=1e-5)
        assert hyps[0].score >= greedy.scores[i].item() - 1e-6


@pytest.mark.parametrize(("arch", "cell"), ALL)
def test_beam_hypotheses_are_sorted_and_scored(arch, cell):
    model = tiny_model(arch, cell, eos_bias=EOS_BIAS)
    feats, mask = tiny_inputs()
    for alpha in (0.0, 1.0):
        beams = beam_search(model, feats, mask, beam_size=4, n_best=4, length_penalty=alpha)
        for i, hyps in enumerate(beams):
            assert len(hyps) == 4 and all(isinstance(h, Hypothesis) for h in hyps)
            scores = [h.score for h in hyps]
            assert scores == sorted(scores, reverse=True)
            assert len({tuple(h.tokens) for h in hyps}) == 4  # no duplicate captions
            for h in hyps:
                assert not {PAD_ID, BOS_ID, EOS_ID} & set(h.tokens) and len(h.tokens) <= 8
                ended = len(h.tokens) < 8
                length = len(h.tokens) + 1 if ended else 8
                assert h.score == pytest.approx(h.logprob / gnmt_length_penalty(length, alpha))
                expected = sequence_logprobs(model, feats[i : i + 1], mask[i : i + 1], [h.tokens], [ended])
                assert h.logprob == pytest.approx(expected.item(), abs=1e-4)
                if arch == "attention":
                    assert h.attention.shape == (len(h.tokens), T)
                    if i == 1:
                        assert np.all(h.attention[:, 3:] == 0.0)


def test_length_penalty_prefers_longer_captions():
    model = tiny_model("meanpool", "gru")  # raw beam search ends these captions at 3 to 8 tokens
    feats, mask = tiny_inputs(batch=6)
    raw = beam_search(model, feats, mask, beam_size=5, length_penalty=0.0)
    long = beam_search(model, feats, mask, beam_size=5, length_penalty=2.0)
    raw_lengths = [len(h[0].tokens) for h in raw]
    long_lengths = [len(h[0].tokens) for h in long]
    assert all(b >= a for a, b in zip(raw_lengths, long_lengths)) and sum(long_lengths) > sum(raw_lengths)


@pytest.mark.parametrize(("arch", "cell"), ALL)
def test_batched_beam_search_equals_clip_by_clip(arch, cell):
    model = tiny_model(arch, cell, eos_bias=EOS_BIAS)
    feats, mask = tiny_inputs(batch=5)
    batched = beam_search(model, feats, mask, beam_size=3, n_best=3)
    single = beam_search_unbatched(model, feats, mask, beam_size=3, n_best=3)
    assert [[h.tokens for h in hyps] for hyps in batched] == [[h.tokens for h in hyps] for hyps in single]
    for a, b in zip(batched, single):
        np.testing.assert_allclose([h.score for h in a], [h.score for h in b], rtol=1e-5, atol=1e-5)


def test_spatio_temporal_attention_decodes():
    model = build_model(
        ModelConfig(arch="attention", cell="lstm", feature_dim=F, vocab_size=20, embed_size=E, hidden_size=H)
    )
    feats, mask = tiny_inputs(regions=R)
    greedy = greedy_decode(model, feats, mask, max_len=5)
    beams = beam_search(model, feats, mask, beam_size=3, max_len=5)
    for att in greedy.attention + [hyps[0].attention for hyps in beams]:
        assert att.shape[1] == T * R
    assert np.all(greedy.attention[1][:, 3 * R :] == 0.0)


def test_eos_first_gives_empty_captions_and_no_eos_cuts_at_max_len():
    feats, mask = tiny_inputs()
    eager = tiny_model("meanpool", "lstm", eos_bias=1e4)
    assert greedy_decode(eager, feats, mask).tokens == [[], [], []]
    assert [h[0].tokens for h in beam_search(eager, feats, mask, beam_size=3)] == [[], [], []]
    never = tiny_model("meanpool", "lstm", eos_bias=-1e4)
    assert all(len(t) == 5 for t in greedy_decode(never, feats, mask, max_len=5).tokens)
    for hyps in beam_search(never, feats, mask, beam_size=3, max_len=5, n_best=3):
        assert len(hyps) == 3 and all(len(h.tokens) == 5 for h in hyps)


def test_decoding_runs_in_eval_mode_and_restores_the_mode():
    model = build_model(ModelConfig("attention", "gru", F, 20, embed_size=E, hidden_size=H, dropout=0.5))
    feats, mask = tiny_inputs()
    model.eval()
    reference = greedy_decode(model, feats, mask)
    model.train()
    assert greedy_decode(model, feats, mask).tokens == reference.tokens
    assert beam_search(model, feats, mask, beam_size=1)[0][0].tokens == reference.tokens[0]
    assert model.training


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"beam_size": 0}, "beam_size"),
        ({"beam_size": 2, "n_best": 3}, "n_best"),
        ({"beam_size": 2, "max_len": 0}, "max_len"),
        ({"beam_size": 2, "length_penalty": -1.0}, "length_penalty"),
    ],
)
def test_bad_decoding_options_raise_config_error(options, message):
    model = tiny_model("meanpool", "rnn")
    feats, mask = tiny_inputs()
    with pytest.raises(ConfigError, match=message):
        beam_search(model, feats, mask, **options)
    with pytest.raises(ConfigError, match="max_len"):
        greedy_decode(model, feats, mask, max_len=0)
