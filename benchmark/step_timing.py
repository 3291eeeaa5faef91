"""One training step of each architecture the full profile trains, at its real sizes: build, time, count.

This file runs in two ways. Imported (`benchmark.perf_training`), it times the checkout it belongs to.
Run as a script with `--serve`, it is a worker that times whatever `vidcap_core` its PYTHONPATH names:
`vidcap-bench perf-training --base REV` starts one worker on a copy of REV and one on the working tree
and asks them in turns, so both revisions are timed side by side in one run by the same harness. For
that it imports nothing but torch, numpy and vidcap_core's model API (build_model, ModelConfig,
masked_nll, the auxiliary losses), which every revision since issue #11 has.

The step is the training loop's (vidcap_core/training/loop.train_step, auxiliary.training_objective):
forward with the auxiliary heads, mean token NLL (+ the concept BCE, + the semantic-consistency ranking
loss), zero_grad, backward, gradient clipping at 5, Adam. The batch: the full profile's sizes (64 clips,
32 frames, hidden 128, embed 64, attention 64, dropout 0.3, frame deltas 10; benchmark/profiles.py) and
features of the backbone each run reads (synth-cnn 357-d frames; synth-slots' 3 object slots of 21 per
frame for attention over objects), random values; captions of the lengths the full profile's batches
have (CAPTION_TOKEN_COUNTS), random words.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

# SynthClips standard (seed 0, min_count 2): the training pairs' token counts (BOS and EOS included) ->
# how many pairs have it (25,200 pairs; vocabulary 80 tokens). Measured with vidcap_core: load_dataset,
# Vocabulary.build, batches.encode_captions over the train split (issue #20). A batch draws 64 of them,
# so its longest caption (what the loop trims it to) has 27 tokens on average and half its decoder steps
# come after a caption's end.
CAPTION_TOKEN_COUNTS: dict[int, int] = {
    6: 1166, 7: 3400, 8: 2769, 9: 1131, 10: 749, 11: 159, 12: 500, 13: 1177, 14: 1729, 15: 1839, 16: 1500,
    17: 986, 18: 674, 19: 616, 20: 892, 21: 1169, 22: 1256, 23: 1256, 24: 942, 25: 621, 26: 367, 27: 188,
    28: 68, 29: 33, 30: 10, 31: 1, 32: 2,
}
SYNTH_VOCABULARY = 80
SYNTH_CNN_DIM = 21 + 16 * 21  # synth-cnn's frame vector: frame totals, then 16 regions of 21
SLOTS, SLOT_DIM = 3, 21  # synth-slots: 3 tracked object slots of 21 per frame
CONSISTENCY_WEIGHT = 0.5  # profiles.Profile.consistency_weight (the seeds suite's aLSTMs run)
GRAD_CLIP = 5.0


@dataclass(frozen=True)
class Sizes:
    """The full profile's training sizes (benchmark/profiles.py `full`)."""

    batch: int = 64
    frames: int = 32
    hidden: int = 128
    embed: int = 64
    attention: int = 64
    dropout: float = 0.3
    frame_deltas: float = 10.0
    lr: float = 3e-3
    vocab: int = SYNTH_VOCABULARY


@dataclass(frozen=True)
class StepCase:
    """One architecture x cell as a full-profile run trains it."""

    name: str
    arch: str
    cell: str
    feature_shape: tuple[int, ...]  # per frame: (F,) or (R, G)
    options: dict[str, Any] = field(default_factory=dict)  # ModelConfig fields beyond the sizes
    consistency: bool = False  # the semantic-consistency loss (attention with a joint embedding)


def full_profile_cases() -> list[StepCase]:
    """Every architecture x cell of the full profile's MLE runs (suites cells, attention, temporal,
    gradients, seeds, beam), on the main features; the same architectures on oracle features differ
    only in the frame projection's width."""
    frames = (SYNTH_CNN_DIM,)
    cases = [StepCase(f"{arch}-{cell}", arch, cell, frames)
             for arch in ("meanpool", "s2vt", "attention") for cell in ("rnn", "gru", "lstm")]
    cases.append(StepCase("attention-lstm-regions", "attention", "lstm", (SLOTS, SLOT_DIM)))
    concepts = {"concepts": synth_concepts()}
    cases.append(StepCase("concepts-lstm", "concepts", "lstm", frames, {**concepts, "concept_mode": "init"}))
    cases.append(StepCase("concepts-lstm-input", "concepts", "lstm", frames, {**concepts, "concept_mode": "input"}))
    cases.append(StepCase("attention-lstm-consistency", "attention", "lstm", frames,
                          {"consistency_size": Sizes().embed}, consistency=True))
    return cases


def synth_concepts() -> list[str]:
    from vidcap_core.synth.concepts import SYNTH_CONCEPTS

    return list(SYNTH_CONCEPTS)


def case_by_name(name: str) -> StepCase:
    for case in full_profile_cases():
        if case.name == name:
            return case
    raise KeyError(f"unknown step case {name!r}: choose one of {', '.join(c.name for c in full_profile_cases())}")


def caption_batch(sizes: Sizes, seed: int) -> Any:
    """(B, L) long captions BOS w .. EOS PAD.., lengths drawn from CAPTION_TOKEN_COUNTS, trimmed to the longest."""
    import numpy as np
    import torch

    rng = np.random.default_rng(seed)
    lengths_available = np.array(sorted(CAPTION_TOKEN_COUNTS))
    weights = np.array([CAPTION_TOKEN_COUNTS[n] for n in lengths_available], dtype=np.float64)
    lengths = rng.choice(lengths_available, size=sizes.batch, p=weights / weights.sum())
    captions = torch.zeros(sizes.batch, int(lengths.max()), dtype=torch.long)
    for row, n in enumerate(lengths):
        captions[row, 0] = 1  # BOS
        captions[row, 1:n - 1] = torch.from_numpy(rng.integers(4, sizes.vocab, size=n - 2))
        captions[row, n - 1] = 2  # EOS
    return captions


@dataclass
class BuiltStep:
    run: Callable[[], float]  # one optimiser step; returns the loss
    model: Any
    caption_length: int
    scored_tokens: int


def build_step(case: StepCase, sizes: Sizes = Sizes(), seed: int = 0) -> BuiltStep:
    """The model, its Adam optimiser and one batch, and the loop's step over them."""
    import torch
    import torch.nn.functional as F

    from vidcap_core.models import ModelConfig, build_model, consistency_ranking_loss, masked_nll, negative_pairs

    torch.manual_seed(seed)
    config = ModelConfig(arch=case.arch, cell=case.cell, feature_dim=case.feature_shape[-1], vocab_size=sizes.vocab,
                         embed_size=sizes.embed, hidden_size=sizes.hidden, attention_size=sizes.attention,
                         dropout=sizes.dropout, frame_deltas=sizes.frame_deltas, max_tokens=max(CAPTION_TOKEN_COUNTS) - 1,
                         **case.options)
    model = build_model(config).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=sizes.lr)
    params = [p for p in model.parameters() if p.requires_grad]
    generator = torch.Generator().manual_seed(seed)
    feats = torch.rand(sizes.batch, sizes.frames, *case.feature_shape, generator=generator)  # (B, T, F) or (B, T, R, G)
    mask = torch.ones(sizes.batch, sizes.frames, dtype=torch.bool)
    captions = caption_batch(sizes, seed)
    clip_ids = torch.arange(sizes.batch)
    concepts = len(case.options.get("concepts", ()))
    labels = (torch.rand(sizes.batch, concepts, generator=generator) < 0.2).float() if concepts else None

    def run() -> float:
        logits, _, outputs = model(feats, mask, captions, auxiliary=True)  # (B, L, V)
        loss = masked_nll(logits[:, :-1], captions[:, 1:])
        if labels is not None:
            loss = loss + F.binary_cross_entropy_with_logits(outputs["concept_logits"].float(), labels)
        if case.consistency:
            negatives = negative_pairs(clip_ids, captions)
            loss = loss + CONSISTENCY_WEIGHT * consistency_ranking_loss(
                outputs["clip_embedding"], outputs["sentence_embedding"], negatives)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, GRAD_CLIP)
        optimizer.step()
        return float(loss.detach())

    return BuiltStep(run, model, int(captions.size(1)), int((captions[:, 1:] != 0).sum()))


@dataclass
class StepTimes:
    """Seconds of each timed step: wall clock and this process's CPU time (one torch thread: the
    same when nothing else ran; CPU time leaves out the time other processes held the core)."""

    wall: list[float]
    cpu: list[float]

    def to_dict(self) -> dict[str, list[float]]:
        return asdict(self)


def time_steps(step: Callable[[], float], count: int) -> StepTimes:
    wall, cpu = [], []
    for _ in range(count):
        started_wall, started_cpu = time.perf_counter(), time.process_time()
        step()
        cpu.append(time.process_time() - started_cpu)
        wall.append(time.perf_counter() - started_wall)
    return StepTimes(wall, cpu)


def serve(stream_in=sys.stdin, stream_out=sys.stdout) -> None:
    """Worker loop: one JSON request per line -> one JSON answer per line.

    {"threads": n} sets torch's thread count; {"case": name, "warmup": w, "steps": s} builds the case once
    (kept for later requests), runs w untimed and s timed steps and answers {"wall": [...], "cpu": [...],
    "loss": last loss}; {"quit": true} ends. Errors answer {"error": text}."""
    import torch

    built: dict[str, BuiltStep] = {}
    for line in stream_in:
        request = json.loads(line)
        try:
            if request.get("quit"):
                break
            if "threads" in request:
                torch.set_num_threads(int(request["threads"]))
                answer: dict[str, Any] = {"threads": torch.get_num_threads()}
            else:
                name = request["case"]
                if name not in built:
                    built[name] = build_step(case_by_name(name))
                step = built[name]
                for _ in range(int(request.get("warmup", 0))):
                    step.run()
                answer = time_steps(step.run, int(request["steps"])).to_dict()
                answer["loss"] = step.run()
        except Exception as exc:  # the driver reports it with the revision's name
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        stream_out.write(json.dumps(answer) + "\n")
        stream_out.flush()


def median_ms(seconds: list[float]) -> float:
    return 1000.0 * statistics.median(seconds)


if __name__ == "__main__":
    if sys.argv[1:] != ["--serve"]:
        sys.exit("usage: python benchmark/step_timing.py --serve  (a worker of `vidcap-bench perf-training`)")
    serve()
