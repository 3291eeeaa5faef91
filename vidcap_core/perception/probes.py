"""How much of a SynthClips clip's story can a read-out find in its frame features?

For a feature cache of a SynthClips folder, fit read-outs on the train clips (regularisation or
epoch chosen on the val clips) and report accuracy on the test clips, in-distribution and
held-out-composition clips separately, next to the majority-class rate. Read-outs:

  mean     multinomial logistic regression on the features averaged over frames (F,): order-blind
  frames   the same on all frames concatenated in order (T * F,)
  gru      a small GRU over the frame sequence (frame projection 64, hidden 64, one linear head
           per target), trained for all targets at once: a non-linear read-out

Targets: the first event's actor colour (at its start), shape and action, the number of events and
the number of objects. A first event's colour is not a linear function of any per-frame state
(which object changes first is a choice over time), so the linear read-outs stay far below 1
even on the oracle's perfect state: they compare feature sets on equal terms, but the GRU read-out
is the one closer to what a caption decoder can get out of them.

Per frame (probe_frame_features): a one-hidden-layer MLP on one frame's features predicts the
scene the oracle records for that frame: the number of objects, the set of colours, the set of
shapes, and the set of (colour, shape) pairs, i.e. which object is which colour (binding).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from vidcap_core.errors import FeatureError
from vidcap_core.features.oracle import SLOT_FIELDS, SynthClipsPlans, oracle_features
from vidcap_core.features.store import FeatureStore
from vidcap_core.synth.catalog import ACTIONS, COLOURS, SHAPES
from vidcap_core.synth.checker import load_ground_truth
from vidcap_core.synth.truth import ClipTruth

TARGETS: dict[str, Callable[[ClipTruth], int]] = {
    "first_colour": lambda truth: COLOURS.index(truth.events[0].colour),
    "first_shape": lambda truth: SHAPES.index(truth.events[0].shape),
    "first_action": lambda truth: ACTIONS.index(truth.events[0].action),
    "num_events": lambda truth: len(truth.events),
    "num_objects": lambda truth: len(truth.objects),
}
POOLINGS = ("mean", "frames", "gru")
LINEAR_POOLINGS = ("mean", "frames")
GRU_EPOCHS = 60
GRU_SIZE = 64
DECAYS = (1e-4, 1e-3, 1e-2, 1e-1)  # L2 strengths tried; the val split picks one
GROUPS = ("test in-distribution", "test held-out")


@dataclass
class ClipMatrix:
    """Pooled features and targets of one split."""

    features: np.ndarray  # (N, D) float32, or (N, T, F) for the gru read-out
    targets: dict[str, np.ndarray]  # target -> (N,) int64
    heldout: np.ndarray  # (N,) bool: shows a composition held out of train and val


def pool(frames: np.ndarray, pooling: str) -> np.ndarray:
    """(T, F) or (T, R, G) features of one clip -> the read-out's input: (F,), (T * F,) or (T, F)."""
    flat = frames.reshape(frames.shape[0], -1)  # (T, F)
    if pooling == "mean":
        return flat.mean(0)  # (F,)
    if pooling == "frames":
        return flat.reshape(-1)  # (T * F,)
    if pooling == "gru":
        return flat  # (T, F)
    raise FeatureError(f"unknown pooling {pooling!r}: choose one of {', '.join(POOLINGS)}")


def clip_matrix(store: FeatureStore, truths: dict[str, ClipTruth], split: str, pooling: str) -> ClipMatrix:
    ids = sorted(v for v, t in truths.items() if t.split == split)
    missing = [v for v in ids if not store.has(v)]
    if missing:
        raise FeatureError(
            f"features in {store.dir} lack {len(missing)} {split} clips of the SynthClips folder (e.g. {missing[0]}): "
            f"extract every split of that folder into {store.dir}"
        )
    if not ids:
        raise FeatureError(f"the SynthClips folder has no {split} clips to probe with")
    features = np.stack([pool(store.load(v), pooling) for v in ids]).astype(np.float32)  # (N, D) or (N, T, F)
    targets = {name: np.array([target(truths[v]) for v in ids], dtype=np.int64) for name, target in TARGETS.items()}
    return ClipMatrix(features, targets, np.array([truths[v].heldout for v in ids]))


def fit_logistic(x: torch.Tensor, y: torch.Tensor, classes: int, decay: float, iterations: int = 150) -> tuple[torch.Tensor, torch.Tensor]:
    """Multinomial logistic regression by full-batch L-BFGS: weights (D, C), bias (C,)."""
    weight = x.new_zeros(x.shape[1], classes, requires_grad=True)
    bias = x.new_zeros(classes, requires_grad=True)
    optimiser = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=iterations, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = F.cross_entropy(x @ weight + bias, y) + decay * weight.pow(2).sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    return weight.detach(), bias.detach()


def standardise(train: np.ndarray, *others: np.ndarray) -> list[torch.Tensor]:
    """z-scores per feature (last axis) with the train split's mean and std (a constant one stays 0)."""
    axes = tuple(range(train.ndim - 1))
    mean, std = train.mean(axes), train.std(axes)
    std = np.where(std > 1e-6, std, 1.0)
    return [torch.from_numpy((a - mean) / std).float() for a in (train, *others)]


def accuracy(weight: torch.Tensor, bias: torch.Tensor, x: torch.Tensor, y: np.ndarray) -> float:
    if len(y) == 0:
        return float("nan")
    return float(((x @ weight + bias).argmax(1).numpy() == y).mean())


def probe_one(train: ClipMatrix, val: ClipMatrix, test: ClipMatrix, target: str) -> dict[str, float]:
    """Fit target `target` on train, choose L2 on val, score test groups; also the majority rates."""
    x_train, x_val, x_test = standardise(train.features, val.features, test.features)
    y_train = train.targets[target]
    classes = int(max(y_train.max(), val.targets[target].max(), test.targets[target].max())) + 1
    fits = []
    for decay in DECAYS:
        with torch.random.fork_rng(devices=[]):
            weight, bias = fit_logistic(x_train, torch.from_numpy(y_train), classes, decay)
        fits.append((accuracy(weight, bias, x_val, val.targets[target]), decay, weight, bias))
    val_accuracy, decay, weight, bias = max(fits, key=lambda fit: (fit[0], fit[1]))  # ties: the stronger L2
    majority = int(np.bincount(y_train).argmax())
    row = {"decay": decay, "val": val_accuracy, "train": accuracy(weight, bias, x_train, y_train)}
    for group, mask in zip(GROUPS, (~test.heldout, test.heldout)):
        row[group] = accuracy(weight, bias, x_test[torch.from_numpy(mask)], test.targets[target][mask])
        row[f"{group} majority"] = float((test.targets[target][mask] == majority).mean()) if mask.any() else float("nan")
        row[f"{group} clips"] = int(mask.sum())
    return row


class SequenceProbe(torch.nn.Module):
    """GRU over (B, T, F) frame features; one linear head per target on the last hidden state."""

    def __init__(self, feature_dim: int, classes: dict[str, int]) -> None:
        super().__init__()
        self.project = torch.nn.Sequential(torch.nn.Dropout(0.1), torch.nn.Linear(feature_dim, GRU_SIZE), torch.nn.ReLU())
        self.gru = torch.nn.GRU(GRU_SIZE, GRU_SIZE, batch_first=True)
        self.heads = torch.nn.ModuleDict({name: torch.nn.Linear(GRU_SIZE, n) for name, n in classes.items()})

    def forward(self, feats: torch.Tensor) -> dict[str, torch.Tensor]:
        _, last = self.gru(self.project(feats))  # (1, B, H)
        return {name: head(last[0]) for name, head in self.heads.items()}  # name -> (B, C)


def probe_sequence(train: ClipMatrix, val: ClipMatrix, test: ClipMatrix, targets: Sequence[str], seed: int = 0) -> list[dict[str, float]]:
    """Train one SequenceProbe for all `targets` (Adam, GRU_EPOCHS epochs, the epoch with the best
    mean val accuracy kept) and score it like probe_one; one row per target."""
    x_train, x_val, x_test = standardise(train.features, val.features, test.features)  # (N, T, F)
    classes = {t: int(max(m.targets[t].max() for m in (train, val, test))) + 1 for t in targets}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SequenceProbe(x_train.shape[2], classes)
        optimiser = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-4)
        gen = torch.Generator().manual_seed(seed)
        y_train = {t: torch.from_numpy(train.targets[t]) for t in targets}
        best: tuple[float, dict[str, torch.Tensor]] = (-1.0, {})
        for _ in range(GRU_EPOCHS):
            model.train()
            for index in torch.randperm(len(x_train), generator=gen).split(32):
                out = model(x_train[index])
                loss = sum(F.cross_entropy(out[t], y_train[t][index]) for t in targets)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
            model.eval()
            with torch.no_grad():
                out = model(x_val)
            score = float(np.mean([(out[t].argmax(1).numpy() == val.targets[t]).mean() for t in targets]))
            if score > best[0]:
                best = (score, {k: v.clone() for k, v in model.state_dict().items()})
        model.load_state_dict(best[1])
        model.eval()
        with torch.no_grad():
            predicted = {split: {t: v.argmax(1).numpy() for t, v in model(x).items()}
                         for split, x in (("train", x_train), ("val", x_val), ("test", x_test))}
    rows = []
    for t in targets:
        majority = int(np.bincount(train.targets[t]).argmax())
        row = {"target": t, "decay": float("nan"), "val": float((predicted["val"][t] == val.targets[t]).mean()),
               "train": float((predicted["train"][t] == train.targets[t]).mean())}
        for group, mask in zip(GROUPS, (~test.heldout, test.heldout)):
            hits = predicted["test"][t][mask] == test.targets[t][mask]
            row[group] = float(hits.mean()) if mask.any() else float("nan")
            row[f"{group} majority"] = float((test.targets[t][mask] == majority).mean()) if mask.any() else float("nan")
            row[f"{group} clips"] = int(mask.sum())
        rows.append(row)
    return rows


def probe_features(
    features: dict[str, Path],
    synth_root: Path,
    poolings: Sequence[str] = POOLINGS,
    targets: Sequence[str] = tuple(TARGETS),
    max_train: int | None = None,
) -> pd.DataFrame:
    """Linear-probe accuracy of every feature cache in `features` ({label: folder}) on the SynthClips
    folder `synth_root`: one row per (features, pooling, target). `max_train` caps the train clips
    (the first N by id) to measure a smaller set."""
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        raise FeatureError(f"unknown probe target(s) {unknown}: choose from {', '.join(TARGETS)}")
    bad = [p for p in poolings if p not in POOLINGS]
    if bad:
        raise FeatureError(f"unknown read-out(s) {bad}: choose from {', '.join(POOLINGS)}")
    truths = load_ground_truth(Path(synth_root))
    if max_train is not None:
        keep = sorted(v for v, t in truths.items() if t.split == "train")[:max_train]
        truths = {v: t for v, t in truths.items() if t.split != "train" or v in set(keep)}
    rows = []
    for label, folder in features.items():
        store = FeatureStore(folder)
        for pooling in poolings:
            train, val, test = (clip_matrix(store, truths, split, pooling) for split in ("train", "val", "test"))
            if pooling == "gru":
                found = probe_sequence(train, val, test, targets)
            else:
                found = [{"target": target, **probe_one(train, val, test, target)} for target in targets]
            rows += [{"features": label, "backbone": store.meta["backbone"], "pooling": pooling,
                      "train clips": len(train.features), **row} for row in found]
    return pd.DataFrame(rows)


def probe_table(results: pd.DataFrame) -> pd.DataFrame:
    """The report's view: test accuracy per (target, pooling) row and features column, in-distribution
    and held-out side by side, with the in-distribution majority rate."""
    wide = results.pivot_table(index=["target", "pooling"], columns="features", values=list(GROUPS), sort=False)
    wide.columns = [f"{feats} ({'in-dist' if group == GROUPS[0] else 'held-out'})" for group, feats in wide.columns]
    majority = results.groupby(["target", "pooling"], sort=False)[f"{GROUPS[0]} majority"].first()
    return wide.assign(**{"majority (in-dist)": majority}).round(3)


# ----------------------------------------------------------------------------- per-frame scene probes

FRAME_TARGETS = ("count", "colours", "shapes", "pairs")  # pairs: which colour is which shape (binding)
FRAME_EPOCHS = 40
FRAME_HIDDEN = 256


def frame_scene_targets(slots: np.ndarray) -> dict[str, np.ndarray]:
    """Per frame, from oracle slots (T, R, G) with opacity >= 0.5 counting as seen: the number of
    objects (T,), and multi-hot sets (T, k) of colours (7), shapes (5) and colour-shape pairs (35)."""
    col = {name: i for i, name in enumerate(SLOT_FIELDS)}
    seen = slots[..., col["opacity"]] >= 0.5  # (T, R)
    colour = slots[..., [col[f"colour={c}"] for c in COLOURS]].argmax(-1)  # (T, R)
    shape = slots[..., [col[f"shape={s}"] for s in SHAPES]].argmax(-1)  # (T, R)
    T = len(slots)
    colours, shapes = np.zeros((T, len(COLOURS)), np.float32), np.zeros((T, len(SHAPES)), np.float32)
    pairs = np.zeros((T, len(COLOURS) * len(SHAPES)), np.float32)
    for t, r in zip(*np.nonzero(seen)):
        colours[t, colour[t, r]] = shapes[t, shape[t, r]] = 1.0
        pairs[t, colour[t, r] * len(SHAPES) + shape[t, r]] = 1.0
    return {"count": seen.sum(1).astype(np.int64), "colours": colours, "shapes": shapes, "pairs": pairs}


@dataclass
class FrameMatrix:
    """Frame features of one split's clips, and each frame's scene targets."""

    features: np.ndarray  # (N, F) float32
    targets: dict[str, np.ndarray]  # FRAME_TARGETS -> (N,) int64 or (N, k) float32
    heldout: np.ndarray  # (N,) bool: the frame's clip shows a held-out composition


def frame_matrix(store: FeatureStore, plans, truths: dict[str, ClipTruth], split: str, frames_per_clip: int) -> FrameMatrix:
    """`frames_per_clip` evenly spaced frames of each clip of `split`, with targets from the ground truth."""
    ids = sorted(v for v, t in truths.items() if t.split == split)
    feats, parts, heldout = [], [], []
    for video_id in ids:
        frames = store.load(video_id)  # (T, F)
        _, slots = oracle_features(plans.plan(video_id), len(frames))  # (T, R, G) at the same frame indices
        pick = np.linspace(0, len(frames) - 1, min(frames_per_clip, len(frames))).round().astype(int)
        feats.append(frames.reshape(len(frames), -1)[pick])
        parts.append(frame_scene_targets(slots[pick]))
        heldout += [truths[video_id].heldout] * len(pick)
    targets = {name: np.concatenate([p[name] for p in parts]) for name in FRAME_TARGETS}
    return FrameMatrix(np.concatenate(feats).astype(np.float32), targets, np.array(heldout))


def frame_hits(out: dict[str, torch.Tensor], targets: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per frame, whether each target is exactly right (a set: every member and non-member right)."""
    hits = {"count": out["count"].argmax(1).numpy() == targets["count"]}
    for name in FRAME_TARGETS[1:]:
        hits[name] = ((out[name] > 0).numpy() == (targets[name] > 0.5)).all(1)
    return hits


def probe_frames(store: FeatureStore, plans, truths: dict[str, ClipTruth], frames_per_clip: int = 16, seed: int = 0) -> list[dict]:
    """A one-hidden-layer MLP per frame, for all FRAME_TARGETS at once (the epoch with the best mean
    val accuracy kept): can the frame's features say how many objects there are, which colours,
    which shapes, and which colour each shape has? One row per target."""
    train, val, test = (frame_matrix(store, plans, truths, split, frames_per_clip) for split in ("train", "val", "test"))
    x_train, x_val, x_test = standardise(train.features, val.features, test.features)
    sizes = {"count": 4, "colours": len(COLOURS), "shapes": len(SHAPES), "pairs": len(COLOURS) * len(SHAPES)}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        body = torch.nn.Sequential(torch.nn.Dropout(0.1), torch.nn.Linear(x_train.shape[1], FRAME_HIDDEN), torch.nn.ReLU())
        heads = torch.nn.ModuleDict({name: torch.nn.Linear(FRAME_HIDDEN, k) for name, k in sizes.items()})
        model = torch.nn.ModuleDict({"body": body, "heads": heads})
        run = lambda x: {n: h(model["body"](x)) for n, h in model["heads"].items()}  # noqa: E731
        optimiser = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
        gen = torch.Generator().manual_seed(seed)
        y = {n: torch.from_numpy(v) for n, v in train.targets.items()}
        best: tuple[float, dict[str, torch.Tensor]] = (-1.0, {})
        for _ in range(FRAME_EPOCHS):
            model.train()
            for index in torch.randperm(len(x_train), generator=gen).split(128):
                out = run(x_train[index])
                loss = F.cross_entropy(out["count"], y["count"][index])
                loss = loss + sum(F.binary_cross_entropy_with_logits(out[n], y[n][index]) for n in FRAME_TARGETS[1:])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
            model.eval()
            with torch.no_grad():
                score = float(np.mean([h.mean() for h in frame_hits(run(x_val), val.targets).values()]))
            if score > best[0]:
                best = (score, {k: v.clone() for k, v in model.state_dict().items()})
        model.load_state_dict(best[1])
        model.eval()
        with torch.no_grad():
            hits = {split: frame_hits(run(x), m.targets) for split, x, m in
                    (("train", x_train, train), ("val", x_val, val), ("test", x_test, test))}
    rows = []
    for name in FRAME_TARGETS:
        row = {"target": name, "train": float(hits["train"][name].mean()), "val": float(hits["val"][name].mean())}
        for group, mask in zip(GROUPS, (~test.heldout, test.heldout)):
            row[group] = float(hits["test"][name][mask].mean()) if mask.any() else float("nan")
            row[f"{group} frames"] = int(mask.sum())
        rows.append(row)
    return rows


def probe_frame_features(features: dict[str, Path], synth_root: Path, frames_per_clip: int = 16) -> pd.DataFrame:
    """probe_frames for every feature cache in `features` ({label: folder}) of the SynthClips folder
    `synth_root`: one row per (features, target)."""
    truths = load_ground_truth(Path(synth_root))
    plans = SynthClipsPlans(Path(synth_root))
    rows = []
    for label, folder in features.items():
        store = FeatureStore(folder)
        rows += [{"features": label, "backbone": store.meta["backbone"], **row}
                 for row in probe_frames(store, plans, truths, frames_per_clip)]
    return pd.DataFrame(rows)


def frame_probe_table(results: pd.DataFrame) -> pd.DataFrame:
    """Test accuracy per frame target (rows) and features (columns), in-distribution and held-out."""
    wide = results.pivot_table(index="target", columns="features", values=list(GROUPS), sort=False)
    wide.columns = [f"{feats} ({'in-dist' if group == GROUPS[0] else 'held-out'})" for group, feats in wide.columns]
    return wide.round(3)
