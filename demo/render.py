"""Turn handler results into what the page shows: tables, Markdown, the frame strip and the
attention heatmap (rendered off-screen with matplotlib's Agg canvas, no pyplot state, so two
queued requests can draw at once)."""

from __future__ import annotations

import html

import numpy as np

from demo.handlers import Captioned, Failed, ModelScope, Outcome

HEATMAP_DPI = 110
HEATMAP_FONT = 11  # points: readable at the page's width without zooming
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


def ood_markdown(result: Captioned, scope: ModelScope | None = None) -> str:
    """The warning shown above a caption of a video unlike the training data; empty otherwise."""
    if result.ood is None or not result.ood["flagged"]:
        return ""
    trained_on = f" It was trained only on {html.escape(scope.data_summary)}." if scope and scope.data_summary else ""
    return (f"<div class='vidcap-warning' id='ood-warning'>⚠️ <b>This video looks unlike the model's training data</b> "
            f"(out-of-distribution score {result.ood['score']:.1f}, above its threshold {result.ood['threshold']:.1f}), "
            f"so the caption below is probably wrong.{trained_on}</div>")


def scope_markdown(scope: ModelScope) -> str:
    """What the served model knows: its training data, features and vocabulary (from its checkpoint and card)."""
    lines = [f"**What model `{scope.name}` knows.** It captions only what its training data showed; "
             "on other videos it still answers with sentences from that world."]
    lines += [f"- {html.escape(line)}" for line in scope.data_lines]
    lines.append(f"- Sees {scope.num_frames} frames per video through the `{scope.backbone}` backbone "
                 f"({scope.frame_size[0]}x{scope.frame_size[1]} pixels).")
    lines.append(f"- Vocabulary ({len(scope.vocabulary)} words): {html.escape(', '.join(scope.vocabulary))}.")
    if scope.ood_threshold is None:
        lines.append("- No out-of-distribution calibration is stored with this checkpoint "
                     "(`vidcap calibrate-ood` writes one), so unfamiliar videos are not flagged.")
    else:
        lines.append("- Each caption gets an out-of-distribution score (how far the clip's features and its frames' "
                     "low-level statistics lie from the training clips', in units of each one's threshold); above "
                     f"{scope.ood_threshold:.1f} the page warns.")
    return "\n".join(lines)


def hypotheses_rows(result: Captioned) -> list[list[object]]:
    return [[rank, text, round(score, 3)] for rank, (text, score) in enumerate(result.hypotheses, start=1)]


def frame_label(result: Captioned, position: int) -> str:
    """'#3 · 1.2 s' (sampled position, time in the video): short enough not to be cut under a thumbnail."""
    source = result.frame_indices[position] if position < len(result.frame_indices) else position
    return f"#{position} · {source / result.fps:.1f} s" if result.fps > 0 else f"#{position} · frame {source}"


def frame_strip(result: Captioned) -> list[tuple[np.ndarray, str]]:
    """(image, label) of every sampled frame, in order: what the model saw."""
    return [(result.frames[t], frame_label(result, t)) for t in range(len(result.frames))]


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
    figure = Figure(figsize=(max(7.0, 0.34 * frames + 3.0), max(3.2, 0.42 * words + 1.8)), dpi=HEATMAP_DPI)
    canvas = FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    image = axes.imshow(attention, aspect="auto", cmap="viridis", vmin=0.0)
    axes.set_yticks(range(words), labels=result.words[:words], fontsize=HEATMAP_FONT)
    step = 1 if frames <= 32 else int(np.ceil(frames / 32))
    axes.set_xticks(range(0, frames, step), labels=[str(t) for t in range(0, frames, step)], fontsize=HEATMAP_FONT - 1)
    axes.set_xlabel("sampled frame (#, as in the frame strip)", fontsize=HEATMAP_FONT)
    axes.set_ylabel("caption word", fontsize=HEATMAP_FONT)
    axes.set_title("Attention: where each word looked (each row sums to 1)", fontsize=HEATMAP_FONT + 1)
    colorbar = figure.colorbar(image, ax=axes, fraction=0.04)
    colorbar.ax.tick_params(labelsize=HEATMAP_FONT - 1)
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
