"""Turn handler results into what the page shows: tables, Markdown, the frame strip and the
attention heatmap (rendered off-screen with matplotlib's Agg canvas, no pyplot state, so two
queued requests can draw at once)."""

from __future__ import annotations

import html

import numpy as np

from demo.handlers import Captioned, Failed, Outcome

STRIP_FRAMES = 16  # the frame strip shows at most this many of the sampled frames, evenly spread
SLOT_MEANINGS = {
    "colour": "colour of each event's object",
    "shape": "shape of each event's object",
    "action": "what happens (direction included)",
    "action_family": "kind of action (direction ignored)",
    "direction": "direction of reversible actions (left/right, grow/shrink, ...)",
    "order": "events told in the order they happen",
    "count": "as many events as happen",
    "exact": "everything right",
}


def error_markdown(message: str) -> str:
    return f"<div class='vidcap-error'>⚠️ {html.escape(message)}</div>"


def hypotheses_rows(result: Captioned) -> list[list[object]]:
    return [[rank, text, round(score, 3)] for rank, (text, score) in enumerate(result.hypotheses, start=1)]


def frame_label(result: Captioned, position: int) -> str:
    source = result.frame_indices[position] if position < len(result.frame_indices) else position
    seconds = f" · {source / result.fps:.1f} s" if result.fps > 0 else ""
    return f"#{position} (frame {source}{seconds})"


def frame_strip(result: Captioned) -> list[tuple[np.ndarray, str]]:
    """(image, label) of up to STRIP_FRAMES sampled frames, evenly spread over the clip."""
    count = len(result.frames)
    shown = np.unique(np.linspace(0, count - 1, min(count, STRIP_FRAMES)).round().astype(int))
    return [(result.frames[t], frame_label(result, int(t))) for t in shown]


def attended_rows(result: Captioned) -> list[list[object]]:
    return [[word, frame_label(result, t), round(weight, 3)] for word, t, weight in result.most_attended()]


def verdict_rows(result: Captioned) -> list[list[object]]:
    if result.verdict is None:
        return []
    rows = []
    for slot, value in result.verdict.items():
        shown = "n/a" if value is None else ("✓" if value == 1.0 else "✗" if value == 0.0 else f"{value:.0%}")
        rows.append([slot, shown, SLOT_MEANINGS.get(slot, "")])
    return rows


def timings_markdown(result: Captioned) -> str:
    t = result.timings_ms
    return (f"**Timings** (ms, model `{result.model}`, {len(result.frames)} frames): decode video {t['decode_video']:.0f} · "
            f"features {t['features']:.0f} · caption {t['caption']:.0f} · total {t['total']:.0f}")


def example_markdown(result: Captioned) -> str:
    """References and the checker's one-line summary for a bundled example; empty otherwise."""
    if result.example is None or result.verdict is None:
        return ""
    exact = result.verdict.get("exact")
    headline = "matches the ground truth exactly" if exact == 1.0 else "does not match the ground truth exactly"
    refs = "\n".join(f"- {html.escape(text)}" for text in result.example.references[:5])
    return (f"**SynthClips example `{result.example.video_id}`**: the caption {headline} (semantic checker, "
            f"per slot below).\n\nReference captions:\n{refs}")


def attention_heatmap(result: Captioned) -> np.ndarray | None:
    """(H, W, 3) uint8 picture of the words x frames attention, or None for non-attention models."""
    if result.attention is None or result.attention.size == 0:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    attention = result.attention  # (words, T)
    words, frames = attention.shape
    figure = Figure(figsize=(max(4.0, 0.32 * frames + 2.0), max(2.0, 0.32 * words + 1.2)), dpi=100)
    canvas = FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    image = axes.imshow(attention, aspect="auto", cmap="viridis", vmin=0.0)
    axes.set_yticks(range(words), labels=result.words[:words])
    step = max(1, frames // 16)
    axes.set_xticks(range(0, frames, step), labels=[str(t) for t in range(0, frames, step)])
    axes.set_xlabel("sampled frame")
    axes.set_title("attention: word x frame (rows sum to 1)", fontsize=10)
    figure.colorbar(image, ax=axes, fraction=0.04)
    figure.tight_layout()
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()  # (H, W, 3)


def compare_markdown(outcome: Outcome) -> str:
    """The details under one compare column: hypotheses, verdict summary, timings, or the error."""
    if isinstance(outcome, Failed):
        return error_markdown(outcome.message)
    lines = [f"{rank}. {html.escape(text)} ({score:.3f})" for rank, (text, score) in enumerate(outcome.hypotheses, 1)]
    parts = ["**Hypotheses**\n\n" + "\n".join(lines)]
    if outcome.verdict is not None:
        slots = ", ".join(f"{slot} {'n/a' if v is None else f'{v:.0%}'}" for slot, v in outcome.verdict.items())
        parts.append(f"**Semantic checker**: {slots}")
    if outcome.attention is not None:
        looked = ", ".join(f"{word}→#{t}" for word, t, _ in outcome.most_attended())
        parts.append(f"**Looked at most**: {html.escape(looked)}")
    parts.append(timings_markdown(outcome))
    return "\n\n".join(parts)
