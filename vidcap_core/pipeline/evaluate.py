"""Evaluate a trained checkpoint on one split of its dataset: decode, score, write predictions."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidcap_core.checkpoint import check_compatible, load_checkpoint
from vidcap_core.data import load_dataset, require_split
from vidcap_core.decoding.predict import predict
from vidcap_core.devices import pick_device
from vidcap_core.errors import ConfigError, DatasetError
from vidcap_core.evaluation import METRICS, CaptionScores, Scorer, score_captions
from vidcap_core.evaluation.metrics import check_metrics
from vidcap_core.features.clips import EVAL_FRAMES_STREAM, epoch_rng, frame_order_index, stack_features
from vidcap_core.features.store import FeatureStore
from vidcap_core.files import json_safe, write_jsonl
from vidcap_core.runs import RunDir
from vidcap_core.text import Vocabulary

FRAME_ORDERS = ("ordered", "shuffled", "reversed")
# What evaluate_run reads from RUN_DIR/config.json (written by training, read here as plain data).
RUN_CONFIG_KEYS = ("dataset", "root", "features", "annotations", "max_videos", "seed", "batch_size")


@dataclass
class EvalReport:
    split: str
    n_videos: int
    metrics: dict[str, float]  # Bleu_1..4, METEOR, ROUGE_L, CIDEr (+ SPICE when it ran)
    semantic: dict[str, float] | None  # SynthClips only: what the captions get right about the clip
    per_video: dict[str, dict[str, float]]
    predictions_file: Path
    inference_ms_per_clip: float  # decoding only (features are cached), on `device`
    checkpoint: Path
    beam: int
    frame_order: str
    device: str
    notes: list[str] = field(default_factory=list)

    def to_dict(self, per_video: bool = False) -> dict[str, Any]:
        """The `vidcap evaluate --format json` object: split, n_videos, metrics, [semantic], predictions_file, ...

        JSON-safe: a NaN (a semantic slot no caption touched) is None here, null on disk."""
        out: dict[str, Any] = {"split": self.split, "n_videos": self.n_videos, "metrics": self.metrics}
        if self.semantic is not None:
            out["semantic"] = self.semantic
        out["predictions_file"] = str(self.predictions_file)
        out.update(checkpoint=str(self.checkpoint), beam=self.beam, frame_order=self.frame_order,
                   inference_ms_per_clip=self.inference_ms_per_clip, device=self.device, notes=self.notes)
        if per_video:
            out["per_video"] = self.per_video
        return json_safe(out)


def evaluate_checkpoint(
    checkpoint: Path,
    features: Path,
    dataset: str,
    root: Path,
    annotations: Path | None = None,
    max_videos: int | float | None = None,
    split: str = "test",
    beam: int = 1,
    length_penalty: float = 0.0,
    frame_order: str = "ordered",
    seed: int = 0,
    out_dir: Path | None = None,
    batch_size: int = 64,
    device: str = "auto",
    scorer: Scorer | None = None,
    metrics: Sequence[str] = METRICS,
) -> EvalReport:
    """Caption every clip of `split` from cached features and score against its references.

    `seed` fixes the dataset trimming (`max_videos`) and the permutation of `frame_order="shuffled"`.
    Predictions go to `out_dir` (default: the checkpoint's folder) as JSONL. Pass a long-lived
    `scorer` to avoid starting Java per call; `metrics` picks a subset (METEOR's JVM is the slow one).
    """
    if frame_order not in FRAME_ORDERS:
        raise ConfigError(f"frame_order={frame_order!r} is not valid; choose one of {', '.join(FRAME_ORDERS)}.")
    if beam < 1:
        raise ConfigError(f"beam={beam!r} must be >= 1 (1 = greedy).")
    metrics = check_metrics(metrics)
    checkpoint = Path(checkpoint)
    loaded = load_checkpoint(checkpoint)
    store = FeatureStore(Path(features))
    check_compatible(loaded.preprocessing, store.meta, checkpoint=checkpoint, features=store.dir)
    vocab = Vocabulary.from_dict(loaded.vocab, source=str(checkpoint))
    data = load_dataset(dataset, Path(root), annotations=annotations, max_videos=max_videos, seed=seed)
    records = require_split(data, split)  # captioned videos; DatasetError when the split is empty
    clips = stack_features(store, records, regions=bool(loaded.preprocessing.get("grid")))  # what the model reads
    model = loaded.model.to(pick_device(device)).eval()
    frame_index = None
    if frame_order != "ordered":
        frame_index = frame_order_index(clips.mask, frame_order, epoch_rng(seed, 0, EVAL_FRAMES_STREAM))

    started = time.perf_counter()
    predictions = predict(model, clips, vocab, max_len=loaded.config.max_tokens, batch_size=batch_size, beam=beam,
                          length_penalty=length_penalty, frame_index=frame_index)
    ms_per_clip = 1000.0 * (time.perf_counter() - started) / len(clips)
    captions = {video_id: p.caption for video_id, p in predictions.items()}
    references = {r.video_id: list(r.captions) for r in records}
    scores = score(captions, references, scorer, metrics)
    per_video = {vid: {k: float(v) for k, v in s.items()} for vid, s in scores.per_video.items()}
    semantic = synth_semantic(dataset, Path(root), captions)

    target = Path(out_dir) if out_dir is not None else checkpoint.parent
    predictions_file = target / f"predictions_{split}_beam{beam}_{frame_order}.jsonl"
    write_jsonl(predictions_file, [
        {"video_id": vid, "caption": captions[vid], "score": predictions[vid].score,
         "references": references[vid], "metrics": per_video.get(vid, {})}
        for vid in clips.video_ids
    ])
    notes = list(data.notes)
    empty = sum(1 for caption in captions.values() if not caption)
    if empty:  # scored 0 by every metric; usually an undertrained model that emits EOS first
        notes.append(f"{empty} of {len(captions)} captions are empty (EOS first): train longer or check the run's log")
    if scores.spice:
        notes.append(f"SPICE: {scores.spice}")
    return EvalReport(
        split=split,
        n_videos=len(records),
        metrics={k: float(v) for k, v in scores.corpus.items()},
        semantic=semantic,
        per_video=per_video,
        predictions_file=predictions_file,
        inference_ms_per_clip=round(ms_per_clip, 3),
        checkpoint=checkpoint,
        beam=beam,
        frame_order=frame_order,
        device=str(next(model.parameters()).device),
        notes=notes,
    )


def evaluate_run(
    run_dir: Path,
    split: str = "test",
    beam: int = 1,
    length_penalty: float = 0.0,
    frame_order: str = "ordered",
    features: Path | None = None,
    out_dir: Path | None = None,
    device: str = "auto",
    scorer: Scorer | None = None,
    metrics: Sequence[str] = METRICS,
) -> EvalReport:
    """`evaluate_checkpoint` on RUN_DIR/best.pt with the dataset, features and seed of RUN_DIR/config.json."""
    run = RunDir(Path(run_dir))
    if not run.config.is_file() or not run.best.is_file():
        raise DatasetError(f"{run.root} is not a finished training run (needs config.json and best.pt); "
                           "train with `vidcap train --out RUN_DIR` or pass --checkpoint FILE.")
    cfg = run.read_config(required=RUN_CONFIG_KEYS)
    return evaluate_checkpoint(
        run.best,
        features=Path(features) if features is not None else Path(cfg["features"]),
        dataset=cfg["dataset"],
        root=Path(cfg["root"]),
        annotations=Path(cfg["annotations"]) if cfg["annotations"] else None,
        max_videos=cfg["max_videos"],
        split=split,
        beam=beam,
        length_penalty=length_penalty,
        frame_order=frame_order,
        seed=cfg["seed"],
        out_dir=out_dir,
        batch_size=cfg["batch_size"],
        device=device,
        scorer=scorer,
        metrics=metrics,
    )


def score(predictions: dict[str, str], references: dict[str, list[str]], scorer: Scorer | None,
          metrics: Sequence[str]) -> CaptionScores:
    if scorer is not None:
        return scorer.score(predictions, references, metrics=metrics)
    return score_captions(predictions, references, metrics=metrics)


def synth_semantic(dataset: str, root: Path, captions: dict[str, str]) -> dict[str, float] | None:
    """SynthClips' semantic checker over these predictions, or None for other datasets."""
    if dataset != "synth":
        return None
    from vidcap_core.synth import load_ground_truth, semantic_scores

    truths = load_ground_truth(root)
    missing = sorted(set(captions) - set(truths))
    if missing:
        raise DatasetError(f"{root}/ground_truth.json has no entry for {missing[:3]}; regenerate SynthClips there.")
    return {k: float(v) for k, v in semantic_scores(captions, {vid: truths[vid] for vid in captions}).items()}

