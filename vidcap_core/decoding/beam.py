"""Beam search batched over clips: all B * K beams advance in one `step()` call per time step."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from vidcap_core.decoding.common import (
    Hypothesis,
    check_decode_options,
    eval_mode,
    gnmt_length_penalty,
    next_token_logprobs,
    resolve_max_len,
)
from vidcap_core.decoding.ngram_block import block_repeated_ngrams
from vidcap_core.models.base import CaptionModel
from vidcap_core.models.config import BOS_ID, EOS_ID


@torch.inference_mode()
def beam_search(
    model: CaptionModel,
    feats: Tensor,
    mask: Tensor | None = None,
    beam_size: int = 5,
    max_len: int | None = None,
    length_penalty: float = 0.0,
    n_best: int = 1,
    no_repeat_ngram: int = 0,
) -> list[list[Hypothesis]]:
    """The `n_best` best captions of each clip, best first.

    Every step scores all B * K live beams at once and keeps, per clip, the K best
    continuations that do not end in EOS. A continuation ending in EOS among a clip's K best
    candidates becomes a finished hypothesis and is not extended. A clip stops when it has K
    finished hypotheses (and is dropped from the batch); at `max_len` tokens (EOS included)
    the live beams are cut and kept as hypotheses. Hypotheses are ranked by
    `logprob / ((5 + length) / 6) ** length_penalty` (GNMT; 0 = raw log-prob sum), where
    length counts the EOS. With `no_repeat_ngram` N > 0, a continuation that would repeat an
    n-gram of N tokens already in its beam gets -inf (never chosen). With beam_size 1 this is
    exactly greedy decoding with the same options.
    """
    check_decode_options(beam_size, n_best, length_penalty, no_repeat_ngram)
    max_len = resolve_max_len(model, max_len)
    K, V = beam_size, model.config.vocab_size
    num_candidates = min(2 * K, K * V)  # at most K candidates end in EOS, so >= K others remain
    with eval_mode(model):
        memory = model.encode(feats, mask)
        state = model.init_state(memory)
        B = memory.batch_size
        device = memory.mask.device
        memory, state = model.expand(memory, state, K)  # row b * K + j is beam j of clip b
        scores = torch.full((B, K), float("-inf"), device=device)  # (A, K) log-prob sums, A = active clips
        scores[:, 0] = 0.0  # one live beam per clip at the start, so no duplicate beams
        tokens = torch.full((B * K,), BOS_ID, dtype=torch.long, device=device)  # (A * K,)
        history = torch.zeros(B * K, 0, dtype=torch.long, device=device)  # (A * K, t)
        att_history: Tensor | None = None  # (A * K, t, N)
        active = list(range(B))  # clip index of each active block of K rows
        finished: list[list[Hypothesis]] = [[] for _ in range(B)]
        for t in range(max_len):
            logits, state, alpha = model.step(tokens, state, memory)
            A = len(active)
            if alpha is not None and att_history is None:
                att_history = alpha.new_zeros(A * K, 0, alpha.size(1))  # (A * K, 0, N)
            logprobs = block_repeated_ngrams(next_token_logprobs(logits), history, no_repeat_ngram)  # (A * K, V)
            logprobs = logprobs.view(A, K, V)  # (A, K, V)
            candidates = (scores.unsqueeze(-1) + logprobs).view(A, K * V)  # (A, K * V)
            top_scores, top_index = candidates.topk(num_candidates, dim=1)  # (A, C), best first
            top_beam = top_index // V  # (A, C)
            top_token = top_index % V  # (A, C)
            is_eos = top_token == EOS_ID  # (A, C)
            block_start = torch.arange(A, device=device) * K  # (A,)

            ends = (is_eos[:, :K] & torch.isfinite(top_scores[:, :K])).nonzero(as_tuple=True)
            if ends[0].numel():
                parent = block_start[ends[0]] + top_beam[ends]  # (E,)
                _finish(finished, active, ends[0], top_scores[ends], history, att_history, parent, t + 1, length_penalty)

            keep = is_eos.to(torch.uint8).sort(dim=1, stable=True).indices[:, :K]  # (A, K) first K non-EOS
            scores = top_scores.gather(1, keep)  # (A, K), still best first
            new_tokens = top_token.gather(1, keep)  # (A, K)
            parent = (block_start.unsqueeze(1) + top_beam.gather(1, keep)).view(-1)  # (A * K,)
            state = model.select(state, parent)
            tokens = new_tokens.view(-1)  # (A * K,)
            history = torch.cat([history[parent], tokens.unsqueeze(1)], dim=1)  # (A * K, t + 1)
            if att_history is not None:
                att_history = torch.cat([att_history[parent], alpha[parent].unsqueeze(1)], dim=1)  # (A * K, t + 1, N)

            live = scores.tolist()  # (A, K)
            done = [len(finished[clip]) >= K or live[a][0] == float("-inf") for a, clip in enumerate(active)]
            if t == max_len - 1:  # cut: the live beams of unfinished clips become hypotheses
                cut = [(a, j) for a in range(A) if not done[a] for j in range(K) if math.isfinite(live[a][j])]
                if cut:
                    a_index = torch.tensor([a for a, _ in cut], device=device)
                    rows = torch.tensor([a * K + j for a, j in cut], device=device)
                    cut_scores = scores.view(-1)[rows]
                    _finish(finished, active, a_index, cut_scores, history, att_history, rows, max_len, length_penalty,
                            ended=False)
                break
            if any(done):
                remaining = [a for a in range(A) if not done[a]]
                if not remaining:
                    break
                kept = torch.tensor(remaining, device=device)  # (A',)
                rows = (kept.unsqueeze(1) * K + torch.arange(K, device=device)).view(-1)  # (A' * K,)
                memory = model.select(memory, rows)
                state = model.select(state, rows)
                tokens, history, scores = tokens[rows], history[rows], scores[kept]
                att_history = None if att_history is None else att_history[rows]
                active = [active[a] for a in remaining]
    return [sorted(hyps, key=lambda h: h.score, reverse=True)[:n_best] for hyps in finished]


def _finish(
    finished: list[list[Hypothesis]],
    active: list[int],
    block: Tensor,
    logprobs: Tensor,
    history: Tensor,
    att_history: Tensor | None,
    rows: Tensor,
    length: int,
    length_penalty: float,
    ended: bool = True,
) -> None:
    """Turn rows of the beam (their tokens so far, EOS excluded) into finished hypotheses; `ended`
    False: rows cut at the length limit without EOS."""
    penalty = gnmt_length_penalty(length, length_penalty)
    token_rows = history[rows].tolist()  # (E, t)
    attention = None if att_history is None else att_history[rows].float().cpu().numpy()  # (E, t, N)
    for i, (a, logprob) in enumerate(zip(block.tolist(), logprobs.tolist())):
        finished[active[a]].append(
            Hypothesis(
                tokens=token_rows[i],
                score=logprob / penalty,
                logprob=logprob,
                attention=None if attention is None else attention[i],
                ended=ended,
            )
        )


def beam_search_unbatched(
    model: CaptionModel,
    feats: Tensor,
    mask: Tensor | None = None,
    beam_size: int = 5,
    max_len: int | None = None,
    length_penalty: float = 0.0,
    n_best: int = 1,
    no_repeat_ngram: int = 0,
) -> list[list[Hypothesis]]:
    """Reference: `beam_search` one clip at a time (B = 1), for the batched-vs-loop benchmark."""
    return [
        beam_search(
            model,
            feats[i : i + 1],
            None if mask is None else mask[i : i + 1],
            beam_size=beam_size,
            max_len=max_len,
            length_penalty=length_penalty,
            n_best=n_best,
            no_repeat_ngram=no_repeat_ngram,
        )[0]
        for i in range(feats.size(0))
    ]
