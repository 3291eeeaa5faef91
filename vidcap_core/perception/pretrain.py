"""Pretrain synth-cnn on SynthClips frames: what lies in each region of a 4x4 grid.

Frames come from real SynthClips clip plans rendered by the same renderer as the dataset
(1-3 objects, hidden objects appearing, distractor specks, noise, rotation, objects caught
mid-move, mid-growth, mid-fade and mid-colour-change), a few frames per clip. For every region
of synth-cnn's grid the targets are those of the object whose centre lies in it (if any):

  object   BCE, target = the object's opacity (0 for an empty region)
  shape    cross-entropy over SHAPES
  colour   soft cross-entropy over COLOURS (a blend of two during a colour change)
  size     soft cross-entropy over SIZES (a blend while growing or shrinking)
  offset   squared error of the centre inside the region, (x, y) in [-1, 1]
  angle    squared error of (sin, cos) of symmetry-order x angle (not for circles, which have none)

so that each region's code says which shape of which colour and size is there, exactly where,
at what turn: enough to follow moves, bounces, growth, fades, spins and colour changes from
frame to frame. Attribute losses are weighted by the object's opacity (a faint object says less).
Frames are rendered once into a pool (uint8), then batches are drawn from it.
"""

from __future__ import annotations

import math
import os
import platform
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from vidcap_core.errors import ConfigError
from vidcap_core.features.backbones.synth_cnn import REGION_HEADS, SynthCNN, SynthCNNConfig, save_synth_cnn
from vidcap_core.features.oracle import ROTATION_ORDER
from vidcap_core.files import json_safe, write_json
from vidcap_core.synth.catalog import COLOURS, SHAPES, SIZES
from vidcap_core.synth.config import PRESETS, SynthConfig
from vidcap_core.synth.plan import ClipPlan, sample_clip_plan
from vidcap_core.synth.render import interpolate_object_states, object_tracks, render_clip

HEADS = REGION_HEADS
FEATURES_NOTE = (
    "per frame: 21 totals (sum over regions) then 16 regions x 21 (sigmoid(object); object x softmax of "
    "shape 5, colour 7, size 2; object x offset 2, angle 2, x and y in the frame) = 357; grid (16, 21)"
)
HELD_OUT_SEED_OFFSET = 1_000_003  # held-out frames never share a generator state with training frames
VISIBLE = 0.5  # objects at least this opaque are the ones the held-out accuracies count
ANGLE_TOLERANCE_DEG = 15.0  # a predicted turn within this (modulo the shape's symmetry) counts as right
POSITION_TOLERANCE_PX = 2.0


@dataclass
class SceneFrames:
    """Frames and their per-region targets (R = grid regions)."""

    images: torch.Tensor  # (N, S, S, 3) uint8
    opacity: torch.Tensor  # (N, R) float: object target; 0 where no object centre lies
    shape: torch.Tensor  # (N, R) int64, -1 where empty
    colour: torch.Tensor  # (N, R, 7) float weights
    size: torch.Tensor  # (N, R, 2) float weights
    offset: torch.Tensor  # (N, R, 2) float in [-1, 1]
    angle: torch.Tensor  # (N, R, 2) float (sin, cos) of order x angle
    has_angle: torch.Tensor  # (N, R) bool: an object that is not a circle

    def __len__(self) -> int:
        return len(self.images)

    def take(self, index: torch.Tensor) -> SceneFrames:
        return SceneFrames(*(getattr(self, f)[index] for f in self.__dataclass_fields__))

    def as_float_images(self) -> torch.Tensor:
        return self.images.permute(0, 3, 1, 2).float().div_(255.0)  # (N, 3, S, S)


def pretraining_config(rng: np.random.Generator, image_size: int) -> SynthConfig:
    """The standard preset at `image_size`, with the distractor count and noise of any preset."""
    return replace(
        PRESETS["standard"],
        frame_size=image_size,
        num_distractors=int(rng.integers(4, 9)),
        noise_level=float(rng.uniform(0.03, 0.09)),
    )


def region_targets(plan: ClipPlan, frames: np.ndarray, grid_side: int) -> dict[str, np.ndarray]:
    """Per-region targets of frames `frames` (K,) of the clip: {name: (K, R, ...)}."""
    size, R, K = plan.frame_size, grid_side * grid_side, len(frames)
    cell = size / grid_side
    tracks = object_tracks(plan)[:, frames]  # (O, K, 8): x, y, radius, angle, opacity, rgb
    colours = interpolate_object_states(plan, lambda s: np.array([c == s.colour for c in COLOURS], float))[:, frames]
    sizes = interpolate_object_states(plan, lambda s: np.array([z == s.size for z in SIZES], float))[:, frames]
    out = {
        "opacity": np.zeros((K, R), np.float32),
        "shape": np.full((K, R), -1, np.int64),
        "colour": np.zeros((K, R, len(COLOURS)), np.float32),
        "size": np.zeros((K, R, len(SIZES)), np.float32),
        "offset": np.zeros((K, R, 2), np.float32),
        "angle": np.zeros((K, R, 2), np.float32),
        "has_angle": np.zeros((K, R), bool),
    }
    for o, shape in enumerate(plan.shapes):
        order = ROTATION_ORDER[shape]
        for k in range(K):
            x, y, _, angle, opacity = tracks[o, k, :5]
            if opacity <= 0.0:
                continue
            col, row = min(int(x // cell), grid_side - 1), min(int(y // cell), grid_side - 1)
            r = row * grid_side + col
            if opacity <= out["opacity"][k, r]:  # two centres in one region (rare): keep the clearer
                continue
            out["opacity"][k, r] = opacity
            out["shape"][k, r] = SHAPES.index(shape)
            out["colour"][k, r] = colours[o, k]
            out["size"][k, r] = sizes[o, k]
            out["offset"][k, r] = ((x - col * cell) / cell * 2.0 - 1.0, (y - row * cell) / cell * 2.0 - 1.0)
            out["angle"][k, r] = (math.sin(order * angle), math.cos(order * angle))
            out["has_angle"][k, r] = order > 0
    return out


def render_scene_frames(num_clips: int, frames_per_clip: int, seed: int, image_size: int, grid_side: int,
                        progress: bool = False) -> SceneFrames:
    """`frames_per_clip` random frames of each of `num_clips` freshly sampled SynthClips clips."""
    rng = np.random.default_rng(seed)
    images, parts = [], []
    for _ in tqdm(range(num_clips), desc="rendering clips", unit="clip", disable=not progress):
        plan = sample_clip_plan(rng, pretraining_config(rng, image_size))
        frames = np.sort(rng.choice(plan.num_frames, size=min(frames_per_clip, plan.num_frames), replace=False))
        images.append(render_clip(plan)[frames])  # (K, S, S, 3)
        parts.append(region_targets(plan, frames, grid_side))
    joined = {name: torch.from_numpy(np.concatenate([p[name] for p in parts])) for name in parts[0]}
    return SceneFrames(images=torch.from_numpy(np.concatenate(images)), **joined)


def pretraining_loss(outputs: dict[str, torch.Tensor], target: SceneFrames) -> torch.Tensor:
    """Sum of the head losses of a batch; outputs are {head: (B, R, outputs)}."""
    weight = target.opacity  # (B, R): attribute losses count an object as much as it is visible
    present = weight > 0
    loss = F.binary_cross_entropy_with_logits(outputs["object"][..., 0], target.opacity)
    if present.any():
        w = weight[present]  # (P,)
        norm = w.sum()
        shape = F.cross_entropy(outputs["shape"][present], target.shape[present], reduction="none")  # (P,)
        colour = -(target.colour[present] * F.log_softmax(outputs["colour"][present], -1)).sum(-1)  # (P,)
        size = -(target.size[present] * F.log_softmax(outputs["size"][present], -1)).sum(-1)  # (P,)
        offset = (outputs["offset"][present] - target.offset[present]).pow(2).sum(-1)  # (P,)
        angled = target.has_angle[present].float()  # (P,)
        angle = (outputs["angle"][present] - target.angle[present]).pow(2).sum(-1) * angled  # (P,)
        loss = loss + ((shape + colour + size + 4.0 * offset + angle) * w).sum() / norm
    return loss


@torch.inference_mode()
def evaluate_regions(model: SynthCNN, frames: SceneFrames, batch_size: int = 256) -> dict[str, float]:
    """Held-out accuracy per object (objects at least VISIBLE opaque), read at its centre's region.

    detected: the region's object logit > 0; shape / colour / size: argmax right (detected or not);
    all: detected and shape, colour and size right; position: centre within POSITION_TOLERANCE_PX;
    angle: turn within ANGLE_TOLERANCE_DEG modulo symmetry (non-circles); count: frames whose number
    of detections equals their number of objects (frames with no object mid-fade);
    false_positive: empty regions (no centre, no object at all) with a detection.
    """
    model.eval()
    outs: dict[str, list[torch.Tensor]] = {head: [] for head in HEADS}
    for start in range(0, len(frames), batch_size):
        batch = frames.images[start : start + batch_size].permute(0, 3, 1, 2).float().div_(255.0)  # (b, 3, S, S)
        for head, value in model.region_outputs(batch).items():
            outs[head].append(value)
    out = {head: torch.cat(values) for head, values in outs.items()}  # head -> (N, R, k)
    visible = frames.opacity >= VISIBLE  # (N, R)
    detected = out["object"][..., 0] > 0  # (N, R)
    shape_ok = out["shape"].argmax(-1) == frames.shape
    colour_ok = out["colour"].argmax(-1) == frames.colour.argmax(-1)
    size_ok = out["size"].argmax(-1) == frames.size.argmax(-1)
    cell_px = model.cfg.image_size / model.cfg.grid_side
    position_ok = ((out["offset"] - frames.offset).abs() * cell_px / 2.0).amax(-1) <= POSITION_TOLERANCE_PX
    turn = lambda v: torch.atan2(v[..., 0], v[..., 1])  # noqa: E731 - order x angle
    order = torch.tensor([max(ROTATION_ORDER[s], 1) for s in SHAPES])[frames.shape.clamp(min=0)]  # (N, R)
    diff = torch.remainder(turn(out["angle"]) - turn(frames.angle) + math.pi, 2 * math.pi) - math.pi
    angle_ok = diff.abs() / order <= math.radians(ANGLE_TOLERANCE_DEG)
    angled = visible & frames.has_angle
    clear = ~((frames.opacity > 0) & (frames.opacity < 1)).any(1)  # (N,) no object mid-fade
    count_ok = (detected.sum(1) == (frames.opacity > 0).sum(1))[clear]
    empty = frames.opacity == 0
    share = lambda ok, where: float(ok[where].float().mean()) if where.any() else float("nan")  # noqa: E731
    return {
        "detected": share(detected, visible),
        "shape": share(shape_ok, visible),
        "colour": share(colour_ok, visible),
        "size": share(size_ok, visible),
        "all": share(detected & shape_ok & colour_ok & size_ok, visible),
        "position": share(position_ok, visible),
        "angle": share(angle_ok, angled),
        "count": float(count_ok.float().mean()) if len(count_ok) else float("nan"),
        "false_positive": share(detected, empty),
    }


def train_steps(model: SynthCNN, pool: SceneFrames, steps: int, batch_size: int, seed: int, progress: bool) -> None:
    gen = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=3e-3, total_steps=steps, pct_start=0.15)
    model.train()
    bar = tqdm(range(steps), desc="pretraining synth-cnn", unit="step", disable=not progress)
    for _ in bar:
        batch = pool.take(torch.randint(len(pool), (batch_size,), generator=gen))
        loss = pretraining_loss(model.region_outputs(batch.as_float_images()), batch)  # (B, 3, S, S) in
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()


def display_path(path: Path) -> str:
    """`path` relative to the working directory when it lies below it, so records hold no home folders."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def pretrain_synth_cnn(
    out: Path,
    steps: int,
    batch_size: int,
    seed: int,
    image_size: int,
    num_clips: int = 3000,
    frames_per_clip: int = 4,
    held_out: int = 300,
    progress: bool = True,
) -> dict[str, float]:
    """Train synth-cnn, write its weights to `out` (safetensors) and a JSON record beside it
    (`out` with suffix .json). Returns the held-out accuracies per object (evaluate_regions).

    Training frames: `frames_per_clip` frames of each of `num_clips` clips; held-out frames: as
    many of `held_out` clips sampled from another seed.
    """
    if steps < 1 or batch_size < 2:
        raise ConfigError(f"pretraining needs steps >= 1 and batch_size >= 2; got steps={steps}, batch_size={batch_size}")
    if image_size < 32 or image_size % 16:
        raise ConfigError(f"image_size {image_size} must be a multiple of 16 and at least 32 (synth-cnn halves it 4 times)")
    if num_clips < 1 or held_out < 1 or frames_per_clip < 1:
        raise ConfigError(f"num_clips ({num_clips}), held_out ({held_out}) and frames_per_clip ({frames_per_clip}) must be >= 1")
    out = Path(out)
    started = time.perf_counter()
    torch.manual_seed(seed)
    model = SynthCNN(SynthCNNConfig(image_size=image_size, heads=HEADS)).to(memory_format=torch.channels_last)
    side = model.cfg.grid_side
    pool = render_scene_frames(num_clips, frames_per_clip, seed, image_size, side, progress)
    test = render_scene_frames(held_out, frames_per_clip, seed + HELD_OUT_SEED_OFFSET, image_size, side, progress)
    rendered = time.perf_counter() - started
    train_steps(model, pool, steps, batch_size, seed, progress)
    accuracies = evaluate_regions(model, test)
    save_synth_cnn(model, out)
    record = {
        "command": f"vidcap pretrain-cnn --out {display_path(out)} --steps {steps} --seed {seed} "
        f"--batch-size {batch_size} --image-size {image_size} --num-clips {num_clips} "
        f"--frames-per-clip {frames_per_clip} --held-out {held_out}",
        "seed": seed,
        "steps": steps,
        "batch_size": batch_size,
        "image_size": image_size,
        "architecture": asdict(model.cfg),
        "features": FEATURES_NOTE,
        "train_frames": len(pool),
        "train_clips": num_clips,
        "held_out_frames": len(test),
        "held_out_clips": held_out,
        "held_out_objects": int((test.opacity >= VISIBLE).sum()),
        "held_out_accuracy_per_object": accuracies,
        "measured": (
            f"per object at least {VISIBLE} opaque, read at the grid region holding its centre: detected, "
            f"shape, colour, size, all (detected with all three right), position (within {POSITION_TOLERANCE_PX} px), "
            f"angle (within {ANGLE_TOLERANCE_DEG} deg modulo symmetry, non-circles); count per frame; "
            "false_positive over empty regions"
        ),
        "render_seconds": round(rendered, 1),
        "seconds": round(time.perf_counter() - started, 1),
        "torch": torch.__version__,
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, {torch.get_num_threads()} torch threads",
    }
    write_json(out.with_suffix(".json"), json_safe(record))
    return accuracies
