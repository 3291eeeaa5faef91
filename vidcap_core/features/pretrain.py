"""Pretrain synth-cnn on single SynthClips stills: shape, colour, size and 3x3 position.

Only stills are used, so the CNN learns what is in a frame and where, never motion: motion
must come from the caption model reading the frame sequence. Stills are rendered once into a
pool (rendering costs more than a training step on a CPU), and every batch is drawn from the
pool with random horizontal/vertical flips, whose position labels are mirrored accordingly.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from vidcap_core.errors import ConfigError
from vidcap_core.features.backbones import SynthCNN, SynthCNNConfig, save_synth_cnn
from vidcap_core.synth import COLOURS, SHAPES, SIZES, render_random_still

POSITIONS: tuple[str, ...] = (
    "top left", "top", "top right", "left", "centre", "right", "bottom left", "bottom", "bottom right",
)  # render_random_still's 3x3 cells, row-major
HEADS: dict[str, list[str]] = {
    "shape": list(SHAPES),
    "colour": list(COLOURS),
    "size": list(SIZES),
    "position": list(POSITIONS),
}
HELD_OUT_SEED_OFFSET = 1_000_003  # held-out stills never share a generator state with training stills


@dataclass
class Stills:
    images: torch.Tensor  # (N, 3, S, S) float in [0, 1]
    labels: dict[str, torch.Tensor]  # head -> (N,) int64


def render_stills(count: int, seed: int, image_size: int, progress: bool = False) -> Stills:
    rng = np.random.default_rng(seed)
    frames, labels = [], {head: [] for head in HEADS}
    for _ in tqdm(range(count), desc="rendering stills", unit="still", disable=not progress):
        frame, label = render_random_still(rng, image_size)  # (S, S, 3) uint8
        frames.append(frame)
        for head in HEADS:
            labels[head].append(label[head])
    images = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float().div_(255.0)  # (N, 3, S, S)
    return Stills(images, {head: torch.tensor(values, dtype=torch.int64) for head, values in labels.items()})


def flip_batch(images: torch.Tensor, position: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random horizontal and vertical flips per image; 3x3 position cells are mirrored to match."""
    N = images.shape[0]
    row, col = position // 3, position % 3
    flip_x = torch.rand(N, generator=gen) < 0.5
    flip_y = torch.rand(N, generator=gen) < 0.5
    images = torch.where(flip_x.view(N, 1, 1, 1), images.flip(3), images)
    images = torch.where(flip_y.view(N, 1, 1, 1), images.flip(2), images)
    col = torch.where(flip_x, 2 - col, col)
    row = torch.where(flip_y, 2 - row, row)
    return images, row * 3 + col


@torch.inference_mode()
def evaluate_heads(model: SynthCNN, stills: Stills, batch_size: int = 256) -> dict[str, float]:
    """Accuracy per head on `stills`."""
    model.eval()
    correct = {head: 0 for head in model.heads}
    for start in range(0, len(stills.images), batch_size):
        logits = model.classify(stills.images[start : start + batch_size])  # head -> (b, classes)
        for head, scores in logits.items():
            correct[head] += int((scores.argmax(1) == stills.labels[head][start : start + batch_size]).sum())
    return {head: hits / len(stills.images) for head, hits in correct.items()}


def train_steps(model: SynthCNN, pool: Stills, steps: int, batch_size: int, seed: int, progress: bool) -> None:
    gen = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=3e-3, total_steps=steps, pct_start=0.15)
    model.train()
    bar = tqdm(range(steps), desc="pretraining synth-cnn", unit="step", disable=not progress)
    for _ in bar:
        index = torch.randint(len(pool.images), (batch_size,), generator=gen)
        images, position = flip_batch(pool.images[index], pool.labels["position"][index], gen)  # (B, 3, S, S)
        targets = {head: pool.labels[head][index] for head in HEADS} | {"position": position}
        logits = model.classify(images)  # head -> (B, classes)
        loss = torch.stack([F.cross_entropy(logits[head], targets[head]) for head in HEADS]).sum()
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
    num_stills: int | None = None,
    held_out: int = 500,
    progress: bool = True,
) -> dict[str, float]:
    """Train synth-cnn, write its weights to `out` (safetensors) and a JSON record beside it
    (`out` with suffix .json). Returns held-out accuracy per head.

    `num_stills`: size of the training pool (default: min(steps * batch_size, 8000)).
    """
    if steps < 1 or batch_size < 2:
        raise ConfigError(f"pretraining needs steps >= 1 and batch_size >= 2; got steps={steps}, batch_size={batch_size}")
    if image_size < 32 or image_size % 16:
        raise ConfigError(f"image_size {image_size} must be a multiple of 16 and at least 32 (synth-cnn halves it 4 times)")
    out = Path(out)
    started = time.perf_counter()
    pool_size = num_stills if num_stills is not None else min(steps * batch_size, 8000)
    pool = render_stills(pool_size, seed, image_size, progress)
    test = render_stills(held_out, seed + HELD_OUT_SEED_OFFSET, image_size, progress)
    torch.manual_seed(seed)
    model = SynthCNN(SynthCNNConfig(image_size=image_size, heads=HEADS)).to(memory_format=torch.channels_last)
    train_steps(model, pool, steps, batch_size, seed, progress)
    accuracies = evaluate_heads(model, test)
    save_synth_cnn(model, out)
    record = {
        "command": f"vidcap pretrain-cnn --out {display_path(out)} --steps {steps} --seed {seed} "
        f"--batch-size {batch_size} --image-size {image_size} --held-out {held_out}"
        + (f" --num-stills {num_stills}" if num_stills is not None else ""),
        "seed": seed,
        "steps": steps,
        "batch_size": batch_size,
        "image_size": image_size,
        "train_stills": pool_size,
        "held_out_stills": held_out,
        "held_out_accuracy": accuracies,
        "heads": HEADS,
        "seconds": round(time.perf_counter() - started, 1),
        "torch": torch.__version__,
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, {torch.get_num_threads()} torch threads",
    }
    sidecar = out.with_suffix(".json")
    tmp = sidecar.with_name(sidecar.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, sidecar)
    return accuracies
