"""`vidcap train`: options (or a .json/.toml config file) -> TrainConfig -> `train`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from vidcap_core.options import ArchName, CellName, ConceptMode, DatasetName, DeviceName, FrameOrder


def train_command(
    out: Annotated[Path, typer.Option("--out", help="Run directory: config.json, vocab.json, last.pt, best.pt, log.jsonl, gradients.jsonl, summary.json, TensorBoard events.")],
    config: Annotated[Optional[Path], typer.Option("--config", help="A .json or .toml file of training options; flags given here override it.")] = None,
    dataset: Annotated[Optional[DatasetName], typer.Option(help="Dataset loader.")] = None,
    root: Annotated[Optional[Path], typer.Option(help="Dataset root folder.")] = None,
    annotations: Annotated[Optional[Path], typer.Option(help="Annotation file (csv datasets, or to override the default).")] = None,
    features: Annotated[Optional[Path], typer.Option(help="Feature folder written by `vidcap features`.")] = None,
    max_videos: Annotated[Optional[str], typer.Option(help="Videos per split: a count (50) or a fraction in (0, 1] (0.1); all by default.")] = None,
    arch: Annotated[Optional[ArchName], typer.Option(help="Architecture.")] = None,
    cell: Annotated[Optional[CellName], typer.Option(help="Recurrent cell.")] = None,
    embed_size: Annotated[Optional[int], typer.Option(help="Word embedding size.")] = None,
    hidden_size: Annotated[Optional[int], typer.Option(help="Recurrent hidden size.")] = None,
    num_layers: Annotated[Optional[int], typer.Option(help="Layers per recurrent stack.")] = None,
    attention_size: Annotated[Optional[int], typer.Option(help="Attention projection size (attention arch).")] = None,
    dropout: Annotated[Optional[float], typer.Option(help="Dropout probability.")] = None,
    max_steps: Annotated[Optional[int], typer.Option(help="Budget: at most this many optimizer steps (a plateau may stop the run earlier).")] = None,
    val_every_steps: Annotated[Optional[int], typer.Option(help="Validate, log and save last.pt every N steps (max_steps must be a multiple).")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Global batch size (split across torchrun ranks).")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Peak Adam learning rate (after the warmup).")] = None,
    warmup_steps: Annotated[Optional[int], typer.Option(help="Steps of linear LR warmup.")] = None,
    plateau_patience: Annotated[Optional[int], typer.Option(help="Validations without progress before the LR is cut; 0 = never cut or stop early.")] = None,
    lr_decay: Annotated[Optional[float], typer.Option(help="Factor of each LR cut, in (0, 1).")] = None,
    max_lr_reductions: Annotated[Optional[int], typer.Option(help="Stop at the next plateau after this many LR cuts without progress.")] = None,
    plateau_start_step: Annotated[Optional[int], typer.Option(help="No LR cut and no stop before this step: a model still on its starting plateau keeps the full LR (0 = the schedule starts at once).")] = None,
    min_delta_exact: Annotated[Optional[float], typer.Option(help="Progress (SynthClips): val exact accuracy up by more than this.")] = None,
    min_rel_delta_cider: Annotated[Optional[float], typer.Option(help="Progress: val CIDEr-D up by more than this share of its best (0.05 = 5%).")] = None,
    weight_decay: Annotated[Optional[float], typer.Option(help="Adam weight decay.")] = None,
    grad_clip: Annotated[Optional[float], typer.Option(help="Clip the total gradient norm to this; 0 turns clipping off.")] = None,
    scheduled_sampling: Annotated[Optional[float], typer.Option(help="Maximum scheduled-sampling probability (0 = off).")] = None,
    scheduled_sampling_ramp_steps: Annotated[Optional[int], typer.Option(help="Steps over which that probability rises linearly from 0.")] = None,
    min_count: Annotated[Optional[int], typer.Option(help="Words rarer than this in train captions become UNK.")] = None,
    max_caption_words: Annotated[Optional[int], typer.Option(help="Maximum words per caption, EOS not counted (training and decoding); 0 = the longest training caption (default).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed of initialisation, data order and dropout.")] = None,
    frame_order: Annotated[Optional[FrameOrder], typer.Option(help="Training-time frame order (shuffled = ablation).")] = None,
    torch_threads: Annotated[Optional[int], typer.Option(help="CPU threads for torch (0 = torch default).")] = None,
    probe_every: Annotated[Optional[int], typer.Option(help="Gradient-flow probe every N validations (0 = only at initialisation).")] = None,
    device: Annotated[Optional[DeviceName], typer.Option(help="auto = cuda if available, else cpu.")] = None,
    concept_mode: Annotated[Optional[ConceptMode], typer.Option(help="--arch concepts: the concept vector initialises the decoder (init, [1]'s best) or is an extra input at every step (input).")] = None,
    concept_loss_weight: Annotated[Optional[float], typer.Option(help="--arch concepts: weight of the multi-label concept loss added to the caption loss.")] = None,
    num_concepts: Annotated[Optional[int], typer.Option(help="--arch concepts on real data: concepts = this many most frequent caption content words (SynthClips: its colours, shapes, sizes, actions).")] = None,
    semantic_consistency: Annotated[Optional[float], typer.Option(help="--arch attention: weight W of the aLSTMs semantic-consistency ranking loss (0 = off).")] = None,
    frame_deltas: Annotated[Optional[float], typer.Option(help="Append X * (x_t - x_{t-1}) to every frame's features, so the decoder sees motion (0 = frame features only; default 10).")] = None,
    regions: Annotated[Optional[bool], typer.Option("--regions/--no-regions", help="--arch attention: attend over the regions of each frame (features extracted with --grid; the oracle's regions are its object slots) instead of whole frames.")] = None,
    resume: Annotated[bool, typer.Option("--resume/--no-resume", help="Continue the run in --out from last.pt if there is one.")] = True,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
    init_from: Annotated[Optional[Path], typer.Option("--init-from", help="Fine-tune (with --scst or --adversarial) from this `vidcap train` run folder (its best.pt) or checkpoint; its options are the defaults, at a tenth of its LR.")] = None,
    scst: Annotated[bool, typer.Option("--scst", help="Self-critical sequence training (Rennie et al. 2017): policy gradient on --reward minus a baseline (--baseline).")] = False,
    adversarial: Annotated[bool, typer.Option("--adversarial", help="LSTM-GAN: pretrain a CNN caption discriminator, then policy gradient on its P(real), alternating D and G.")] = False,
    reward: Annotated[Optional[str], typer.Option(help="SCST reward: cider (CIDEr-D vs the clip's references) or semantic (SynthClips checker's exact score).")] = None,
    mle_weight: Annotated[Optional[float], typer.Option(help="Fine-tuning: share of the MLE loss mixed into the policy-gradient loss, in [0, 1) (default 0.3).")] = None,
    d_pretrain_epochs: Annotated[Optional[float], typer.Option(help="--adversarial: passes over the training pairs that pretrain the discriminator (default 3).")] = None,
    samples: Annotated[Optional[int], typer.Option(help="Fine-tuning: captions sampled per clip each step (K, default 5).")] = None,
    baseline: Annotated[Optional[str], typer.Option(help="Fine-tuning: each sample's baseline, mean (of the clip's other K - 1 samples' rewards, Luo 2020; the default) or greedy (the greedy caption's reward, Rennie et al. 2017).")] = None,
    temperature: Annotated[Optional[float], typer.Option(help="Fine-tuning: sampling temperature of the policy.")] = None,
) -> None:
    """Train a caption model on cached features to a plateau or its step budget; keeps the best validation
    (SynthClips: exact accuracy, then CIDEr-D; else CIDEr-D). Prints the run summary (convergence included) as JSON."""
    from vidcap_core.data import parse_max_videos
    from vidcap_core.errors import VidcapError
    from vidcap_core.training import resolve_config, train

    overrides = dict(
        dataset=dataset, root=path_text(root), features=path_text(features), annotations=path_text(annotations),
        arch=arch, cell=cell, embed_size=embed_size, hidden_size=hidden_size, num_layers=num_layers,
        attention_size=attention_size, dropout=dropout, max_steps=max_steps, val_every_steps=val_every_steps,
        batch_size=batch_size, lr=lr, warmup_steps=warmup_steps, plateau_patience=plateau_patience, lr_decay=lr_decay,
        max_lr_reductions=max_lr_reductions, plateau_start_step=plateau_start_step, min_delta_exact=min_delta_exact, min_rel_delta_cider=min_rel_delta_cider,
        weight_decay=weight_decay, grad_clip=grad_clip, scheduled_sampling=scheduled_sampling,
        scheduled_sampling_ramp_steps=scheduled_sampling_ramp_steps, min_count=min_count,
        max_caption_words=max_caption_words, seed=seed, frame_order=frame_order, torch_threads=torch_threads,
        probe_every=probe_every, device=device, concept_mode=concept_mode, concept_loss_weight=concept_loss_weight,
        num_concepts=num_concepts, semantic_consistency=semantic_consistency, frame_deltas=frame_deltas,
        regions=regions,
    )
    try:
        overrides["max_videos"] = parse_max_videos(max_videos)
        if init_from is not None or scst or adversarial:  # policy-gradient fine-tuning (cli/finetune.py)
            from vidcap_core.cli.finetune import finetune_from_options

            summary = finetune_from_options(out, config, init_from, scst, adversarial, overrides, dict(
                reward=reward, mle_weight=mle_weight, d_pretrain_epochs=d_pretrain_epochs, samples=samples,
                baseline=baseline, temperature=temperature), resume, progress)
            typer.echo(json.dumps(summary, indent=2))
            return
        cfg = resolve_config(config, overrides)
        result = train(cfg, out, resume=resume, progress=progress)
    except VidcapError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    typer.echo(json.dumps(result.summary(), indent=2))


def path_text(path: Path | None) -> str | None:
    """An absolute path string for config.json, so the run can be evaluated from any folder."""
    return str(path.resolve()) if path is not None else None
