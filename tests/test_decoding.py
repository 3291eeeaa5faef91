"""Greedy and batched beam search: beam 1 == greedy, exhaustive optimum, EOS / max_len, batching,
the n-gram repetition block, and `decode` choosing between them."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from fixtures_models import ARCH_VARIANTS, arch_options

from vidcap_core.decoding import (
    Hypothesis,
    beam_search,
    beam_search_unbatched,
    block_repeated_ngrams,
    decode,
    gnmt_length_penalty,
    greedy_decode,
)
from vidcap_core.errors import ConfigError
from vidcap_core.models import (
    BOS_ID,
    CELL_NAMES,
    EOS_ID,
    PAD_ID,
    CaptionModel,
    ModelConfig,
    build_model,
)

B, T, F, H, E, R = 3, 6, 16, 16, 12, 4
ALL = [(arch, cell) for arch in ARCH_VARIANTS for cell in CELL_NAMES]  # + "concepts:input" (fixtures_models)


def assert_close(actual, expected, rtol: float = 1e-5, atol: float = 1e-5) -> None:
    """np.testing on tensors: torch.testing would import torch.distributed and sympy (seconds of CPU)."""
    np.testing.assert_allclose(
        torch.as_tensor(actual).detach().double().numpy(), torch.as_tensor(expected).detach().double().numpy(), rtol=rtol, atol=atol
    )
EOS_BIAS = 0.5  # with the sharpened random classifier: captions of 0 to 8 tokens (guarded below)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_model(arch: str, cell: str, vocab_size: int = 20, eos_bias: float = 0.0, seed: int = 0,
               frame_deltas: float = 0.0) -> CaptionModel:
    """A random-weight model; `eos_bias` shifts the EOS logit so captions end at different lengths."""
    torch.manual_seed(seed)
    config = ModelConfig(
        cell=cell, feature_dim=F, vocab_size=vocab_size,
        embed_size=E, hidden_size=H, attention_size=8, num_layers=2, max_tokens=8, frame_deltas=frame_deltas,
        **arch_options(arch),
    )
    model = build_model(config).eval()
    with torch.no_grad():
        model.classifier.weight.mul_(8.0)  # sharper distributions: more varied argmax paths
        model.classifier.bias[EOS_ID] += eos_bias
    return model


def best_of_each(decoded: list[list[Hypothesis]]) -> list[Hypothesis]:
    """The best hypothesis of each clip (greedy gives exactly one)."""
    return [hyps[0] for hyps in decoded]


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
@pytest.mark.parametrize("frame_deltas", [0.0, 10.0])
def test_beam_of_one_is_exactly_greedy(arch, cell, frame_deltas):
    model = tiny_model(arch, cell, eos_bias=EOS_BIAS, frame_deltas=frame_deltas)
    feats, mask = tiny_inputs(batch=6)
    greedy = best_of_each(greedy_decode(model, feats, mask))
    beams = beam_search(model, feats, mask, beam_size=1)
    assert [hyps[0].tokens for hyps in beams] == [g.tokens for g in greedy]
    # Equal up to float rounding: beam search drops finished clips from its batch, and a
    # matrix product over fewer rows may round differently in the last bits.
    assert_close(torch.tensor([hyps[0].logprob for hyps in beams]), [g.logprob for g in greedy], rtol=1e-6, atol=1e-6)
    assert [hyps[0].score for hyps in beams] == [hyps[0].logprob for hyps in beams]
    if arch == "attention":
        for hyps, g in zip(beams, greedy):
            np.testing.assert_allclose(hyps[0].attention, g.attention, atol=1e-6)


def test_eos_bias_gives_captions_of_different_lengths():
    """Guards the test above: it must see captions that end early and ones cut at max_len."""
    lengths = set()
    for arch, cell in ALL:
        lengths |= {len(h.tokens) for h in best_of_each(greedy_decode(tiny_model(arch, cell, eos_bias=EOS_BIAS), *tiny_inputs(batch=6)))}
    assert len(lengths) >= 4 and 8 in lengths and min(lengths) < 8


@pytest.mark.parametrize(("arch", "cell"), ALL)
def test_greedy_output_and_scores_match_teacher_forcing(arch, cell):
    model = tiny_model(arch, cell, eos_bias=EOS_BIAS)
    feats, mask = tiny_inputs(batch=4)
    decoded = greedy_decode(model, feats, mask, max_len=6)
    assert [len(hyps) for hyps in decoded] == [1, 1, 1, 1]
    for i, h in enumerate(best_of_each(decoded)):
        tokens = h.tokens
        assert len(tokens) <= 6 and not {PAD_ID, BOS_ID, EOS_ID} & set(tokens)
        ended = len(tokens) < 6
        expected = sequence_logprobs(model, feats[i : i + 1], mask[i : i + 1], [tokens], [ended])
        assert_close([h.logprob], expected, rtol=1e-5, atol=1e-5)
        assert h.score == h.logprob
        if arch == "attention":
            assert h.attention.shape == (len(tokens), T)
            np.testing.assert_allclose(h.attention.sum(-1), 1.0, atol=1e-5)
        else:
            assert h.attention is None
    if arch == "attention":
        assert np.all(decoded[1][0].attention[:, 3:] == 0.0)  # clip 1 has 3 real frames


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
    greedy = best_of_each(greedy_decode(model, feats, mask, max_len=max_len))
    for i, hyps in enumerate(beams):
        exhaustive = sequence_logprobs(model, feats[i : i + 1], mask[i : i + 1], sequences, ended)
        best = torch.sort(exhaustive, descending=True)
        assert [h.tokens for h in hyps] == [sequences[j] for j in best.indices[:5].tolist()]
        assert_close(torch.tensor([h.logprob for h in hyps]), best.values[:5], rtol=1e-5, atol=1e-5)
        assert hyps[0].score >= greedy[i].score - 1e-6


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
    greedy = best_of_each(greedy_decode(model, feats, mask, max_len=5))
    beams = beam_search(model, feats, mask, beam_size=3, max_len=5)
    for att in [g.attention for g in greedy] + [hyps[0].attention for hyps in beams]:
        assert att.shape[1] == T * R
    assert np.all(greedy[1].attention[:, 3 * R :] == 0.0)


def test_eos_first_gives_empty_captions_and_no_eos_cuts_at_max_len():
    feats, mask = tiny_inputs()
    eager = tiny_model("meanpool", "lstm", eos_bias=1e4)
    assert [h.tokens for h in best_of_each(greedy_decode(eager, feats, mask))] == [[], [], []]
    assert [h[0].tokens for h in beam_search(eager, feats, mask, beam_size=3)] == [[], [], []]
    assert all(h.ended for h in best_of_each(greedy_decode(eager, feats, mask)))
    never = tiny_model("meanpool", "lstm", eos_bias=-1e4)
    assert all(len(h.tokens) == 5 for h in best_of_each(greedy_decode(never, feats, mask, max_len=5)))
    assert not any(h.ended for h in best_of_each(greedy_decode(never, feats, mask, max_len=5)))  # cut, not ended
    for hyps in beam_search(never, feats, mask, beam_size=3, max_len=5, n_best=3):
        assert len(hyps) == 3 and all(len(h.tokens) == 5 and not h.ended for h in hyps)


def test_ended_says_whether_a_hypothesis_emitted_eos():
    """`ended`: EOS emitted before max_len (tokens shorter than max_len); False exactly for the cut ones."""
    feats, mask = tiny_inputs(batch=6)
    for arch, cell in ALL:
        model = tiny_model(arch, cell, eos_bias=EOS_BIAS)
        for hyps in [*greedy_decode(model, feats, mask), *beam_search(model, feats, mask, beam_size=3, n_best=3)]:
            assert all(h.ended == (len(h.tokens) < model.config.max_tokens) for h in hyps)


def test_decoding_runs_in_eval_mode_and_restores_the_mode():
    model = build_model(ModelConfig("attention", "gru", F, 20, embed_size=E, hidden_size=H, dropout=0.5))
    feats, mask = tiny_inputs()
    model.eval()
    reference = [h.tokens for h in best_of_each(greedy_decode(model, feats, mask))]
    model.train()
    assert [h.tokens for h in best_of_each(greedy_decode(model, feats, mask))] == reference
    assert beam_search(model, feats, mask, beam_size=1)[0][0].tokens == reference[0]
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


# ----------------------------------------------------------------------------- n-gram repetition block


def repeated_ngrams(tokens: list[int], n: int) -> list[tuple[int, ...]]:
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return sorted({g for g in grams if grams.count(g) > 1})


def test_block_repeated_ngrams_by_hand():
    V = 8
    history = torch.tensor([[4, 5, 4, 5], [4, 4, 6, 7]])  # (2, 4)
    blocked = lambda n: [set(torch.isinf(row).nonzero().flatten().tolist()) for row in
                         block_repeated_ngrams(torch.zeros(2, V), history, n)]
    assert blocked(0) == [set(), set()]
    assert blocked(1) == [{4, 5}, {4, 6, 7}]
    assert blocked(2) == [{4}, set()]  # row 0 ends in 5 and "5 4" occurred; row 1 ends in 7, never seen before
    assert blocked(3) == [{4}, set()]  # row 0 ends in "4 5", followed by 4 before
    assert blocked(4) == [set(), set()]  # "5 4 5" occurred only as the suffix itself
    assert blocked(5) == [set(), set()]  # fewer than 5 tokens: nothing to repeat yet
    # "4 5" was followed by 6 and by 7; and 6 also follows "6 7", which does not match: still blocked
    rows = [[4, 5, 6, 4, 5, 7, 4, 5], [4, 5, 6, 7, 6, 7, 4, 5]]
    blocked3 = block_repeated_ngrams(torch.zeros(2, V), torch.tensor(rows), 3)
    assert [set(torch.isinf(row).nonzero().flatten().tolist()) for row in blocked3] == [{6, 7}, {6}]


def bigram_model(table: dict[int, dict[int, float]], vocab_size: int = 8) -> CaptionModel:
    """A real mean-pool RNN whose weights make its next-token logits depend on the previous token only:
    logits[next] = table[previous][next] (0 where unlisted), whatever the video."""
    config = ModelConfig(arch="meanpool", cell="rnn", feature_dim=F, vocab_size=vocab_size, embed_size=vocab_size,
                         hidden_size=vocab_size, num_layers=1, dropout=0.0, max_tokens=8)
    model = build_model(config).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
        model.embed.weight.copy_(torch.eye(vocab_size))  # one-hot words
        model.decoder.rnn.weight_ih_l0[:, :vocab_size] = 20.0 * torch.eye(vocab_size)  # h = tanh(20 onehot) ~ onehot
        for previous, row in table.items():
            for following, logit in row.items():
                model.classifier.weight[following, previous] = logit / math.tanh(20.0)
    return model


# BOS -> 4; 4 -> 5 (or 6); 5 -> 4 (or EOS); 6 -> EOS: unblocked, "4 5 4 5 ..." runs to max_tokens.
LOOPING = {BOS_ID: {4: 5.0}, 4: {5: 5.0, 6: 4.0}, 5: {4: 5.0, EOS_ID: 3.0}, 6: {EOS_ID: 5.0}}


@pytest.mark.parametrize(("n", "expected"), [(0, [4, 5, 4, 5, 4, 5, 4, 5]), (1, [4, 5]), (2, [4, 5, 4, 6]),
                                             (3, [4, 5, 4, 5]), (4, [4, 5, 4, 5, 4, 6])])
def test_the_block_changes_a_looping_caption_as_worked_out_by_hand(n, expected):
    model = bigram_model(LOOPING)
    feats, mask = tiny_inputs(batch=2)
    for decoded in (greedy_decode(model, feats, mask, no_repeat_ngram=n),
                    beam_search(model, feats, mask, beam_size=1, no_repeat_ngram=n),
                    decode(model, feats, mask, beam=1, no_repeat_ngram=n)):
        assert [h.tokens for h in best_of_each(decoded)] == [expected, expected]
    # scores stay the model's own log-probs of what was emitted (blocking does not renormalise)
    h = greedy_decode(model, feats[:1], mask[:1], no_repeat_ngram=n)[0][0]
    teacher = sequence_logprobs(model, feats[:1], mask[:1], [expected], [len(expected) < 8])
    assert h.logprob == pytest.approx(teacher.item(), abs=1e-4)


def test_block_picks_the_best_caption_without_repeats_in_beam_search():
    model = bigram_model(LOOPING)
    feats, mask = tiny_inputs(batch=1)
    free = beam_search(model, feats, mask, beam_size=4, n_best=4)[0]
    assert any(repeated_ngrams(h.tokens, 2) for h in free)  # e.g. 4 5 4 5 ...
    blocked = beam_search(model, feats, mask, beam_size=4, n_best=4, no_repeat_ngram=2)[0]
    assert [h.tokens for h in blocked] != [h.tokens for h in free]
    assert all(not repeated_ngrams(h.tokens, 2) for h in blocked)


@pytest.mark.parametrize(("arch", "cell"), ALL)
def test_beam_of_one_is_exactly_greedy_with_the_block(arch, cell):
    model = tiny_model(arch, cell, eos_bias=EOS_BIAS)
    feats, mask = tiny_inputs(batch=6)
    for n in (1, 2, 3):
        greedy = best_of_each(greedy_decode(model, feats, mask, no_repeat_ngram=n, length_penalty=1.0))
        beams = best_of_each(beam_search(model, feats, mask, beam_size=1, no_repeat_ngram=n, length_penalty=1.0))
        assert [b.tokens for b in beams] == [g.tokens for g in greedy]
        assert_close([b.score for b in beams], [g.score for g in greedy], rtol=1e-6, atol=1e-6)
        assert_close([b.logprob for b in beams], [g.logprob for g in greedy], rtol=1e-6, atol=1e-6)
        if arch == "attention":
            for b, g in zip(beams, greedy):
                assert g.attention.shape == (len(g.tokens), T)
                np.testing.assert_allclose(b.attention, g.attention, atol=1e-6)
                np.testing.assert_allclose(g.attention.sum(-1), 1.0, atol=1e-5)


def test_blocked_ngrams_never_repeat():
    """Random models loop often at max_tokens 8; with the block no hypothesis repeats an n-gram."""
    feats, mask = tiny_inputs(batch=6)
    looped = 0
    for arch, cell in ALL:
        model = tiny_model(arch, cell, eos_bias=-2.0)  # long captions: room to repeat
        looped += sum(bool(repeated_ngrams(h.tokens, 2)) for h in best_of_each(greedy_decode(model, feats, mask)))
        for n in (1, 2, 3):
            decoded = greedy_decode(model, feats, mask, no_repeat_ngram=n) + beam_search(
                model, feats, mask, beam_size=3, n_best=3, no_repeat_ngram=n)
            for hyps in decoded:
                for h in hyps:
                    assert repeated_ngrams(h.tokens, n) == [], (arch, cell, n, h.tokens)
    assert looped >= 5  # guards the test: unblocked, these models do repeat bigrams


def test_decode_chooses_greedy_or_beam_search():
    model = tiny_model("attention", "gru", eos_bias=EOS_BIAS)
    feats, mask = tiny_inputs()
    one = decode(model, feats, mask, beam=1, no_repeat_ngram=2)
    assert [[h.tokens for h in hyps] for hyps in one] == [
        [h.tokens for h in hyps] for hyps in greedy_decode(model, feats, mask, no_repeat_ngram=2)]
    three = decode(model, feats, mask, beam=3, n_best=2, length_penalty=1.0, max_len=6)
    reference = beam_search(model, feats, mask, beam_size=3, n_best=2, length_penalty=1.0, max_len=6)
    assert [[(h.tokens, h.score) for h in hyps] for hyps in three] == [[(h.tokens, h.score) for h in hyps] for hyps in reference]


@pytest.mark.parametrize(
    ("options", "message"),
    [({"beam": 0}, "beam_size"), ({"beam": 1, "n_best": 2}, "n_best"), ({"no_repeat_ngram": -1}, "no_repeat_ngram"),
     ({"no_repeat_ngram": True}, "no_repeat_ngram"), ({"beam": 2, "no_repeat_ngram": 1.5}, "no_repeat_ngram"),
     ({"length_penalty": float("nan")}, "length_penalty")],
)
def test_bad_decode_options_raise_config_error(options, message):
    model = tiny_model("meanpool", "rnn")
    with pytest.raises(ConfigError, match=message):
        decode(model, *tiny_inputs(), **options)
