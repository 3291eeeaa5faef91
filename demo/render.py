"""Turn handler results into what the page shows: HTML tables that wrap (never a fixed-width grid that
cuts columns off), Markdown, the frame strip and the attention heatmap (rendered off-screen with
matplotlib's Agg canvas, no pyplot state, so two queued requests can draw at once), drawn at the pixel
width it is shown at so its labels stay readable.

The plain-words texts (what a model can describe, why a clip was flagged) come from
`vidcap_core.pipeline.scope`, which `vidcap caption` prints too.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np

from demo.handlers import Captioned, Failed, ModelScope, Outcome

HEATMAP_DPI = 100
HEATMAP_FONT = 11  # points at the picture's own size: it is drawn as wide as it is shown
HEATMAP_WIDTH_PX = 680  # the Caption tab: fits a 760 px wide window without being scaled down
COMPARE_HEATMAP_WIDTH_PX = 320  # a Compare column (demo.app.COMPARE_COLUMN_MIN_PX wide at least)
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
CUT_NOTE = "cut at the model's length limit: no hypothesis finished its sentence"


def error_markdown(message: str) -> str:
    return f"<div class='vidcap-error'>⚠️ {html.escape(message)}</div>"


def ood_markdown(result: Captioned, scope: ModelScope | None = None) -> str:
    """The warning shown above a caption of a video unlike the training data (score, why, and what the
    model can describe); empty otherwise."""
    from vidcap_core.pipeline.scope import ood_warning

    warning = ood_warning(result.ood)
    if warning is None:
        return ""
    headline, _, rest = warning.partition(" (")
    plain = f" {html.escape(scope.plain)}" if scope is not None else ""
    return (f"<div class='vidcap-warning' id='ood-warning'>⚠️ <b>{html.escape(headline)}</b> "
            f"({html.escape(rest)}{plain}</div>")


def scope_markdown(scope: ModelScope) -> str:
    """The plain-words sentence at the top of the page: what the selected model can describe."""
    return f"**What model `{scope.name}` can describe.** {html.escape(scope.plain)}"


def details_markdown(scope: ModelScope) -> str:
    """The details fold: training data, features, how the model was chosen, its vocabulary, the OOD check."""
    card = scope.card
    lines = []
    if scope.data_summary:
        lines.append(f"- Trained on {html.escape(scope.data_summary)} ({html.escape(scope.title)}"
                     + (f", seed {card['seed']}" if card.get("seed") is not None else "") + ").")
    else:
        lines.append("- No benchmark card next to this checkpoint: its training data is not recorded beyond the "
                     "features and vocabulary below.")
    features = card.get("features") or f"{scope.backbone}, {scope.num_frames} frames"
    lines.append(f"- Sees {scope.num_frames} frames per video ({scope.frame_size[0]}x{scope.frame_size[1]} pixels) "
                 f"through the `{html.escape(str(features))}` features; backbone weights "
                 f"`{html.escape(scope.weights)}`.")
    if card.get("selection_rule"):
        lines.append(f"- Chosen by the benchmark on validation: {html.escape(str(card['selection_rule']))}.")
    if card.get("best_step") is not None:
        convergence = card.get("convergence") or {}
        lines.append(f"- Checkpoint from training step {card['best_step']} of {card.get('steps_done')} "
                     f"({html.escape(str(convergence.get('reason', 'no convergence verdict')))}).")
    if card.get("run_key"):
        lines.append(f"- Benchmark run key `{html.escape(str(card['run_key']))}`.")
    lines.append(f"- Vocabulary ({len(scope.vocabulary)} words): {html.escape(', '.join(scope.vocabulary))}.")
    if scope.ood_threshold is None:
        lines.append("- No out-of-distribution calibration is stored with this checkpoint "
                     "(`vidcap calibrate-ood` writes one), so unfamiliar videos are not flagged.")
    else:
        lines.append("- Each caption gets an out-of-distribution score (how far the clip's features and its frames' "
                     "low-level statistics lie from the training clips', in units of each one's threshold); above "
                     f"{scope.ood_threshold:.1f} the page warns.")
    return "\n".join(lines)


def html_table(headers: Sequence[str], rows: Sequence[Sequence[object]], table_id: str) -> str:
    """A plain HTML table whose cells wrap, as wide as its container at most (`.vidcap-table` in the CSS)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table class='vidcap-table' id='{table_id}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def hypotheses_rows(result: Captioned) -> list[list[object]]:
    return [[rank, text, round(score, 3)] for rank, (text, score) in enumerate(result.hypotheses, start=1)]


def hypotheses_html(result: Captioned) -> str:
    """The top beam hypotheses (finished sentences only: vidcap_core's Captioner leaves cut ones out)."""
    if len(result.hypotheses) < 2:
        return ""
    table = html_table(["#", "hypothesis", "score"], hypotheses_rows(result), "hypotheses")
    return f"<div class='vidcap-label'>Top beam hypotheses (log-probability scores)</div>{table}"


def caption_text(result: Captioned) -> str:
    return result.caption if result.ended else f"{result.caption} [{CUT_NOTE}]"


def frame_label(result: Captioned, position: int) -> str:
    """'#3 · 1.2 s' (sampled position, time in the video): short enough not to be cut under a thumbnail."""
    source = result.frame_indices[position] if position < len(result.frame_indices) else position
    return f"#{position} · {source / result.fps:.1f} s" if result.fps > 0 else f"#{position} · frame {source}"


def frame_strip(result: Captioned) -> list[tuple[np.ndarray, str]]:
    """(image, label) of every sampled frame, in order: what the model saw."""
    return [(result.frames[t], frame_label(result, t)) for t in range(len(result.frames))]


def attended_rows(result: Captioned) -> list[list[object]]:
    return [[word, frame_label(result, t), round(weight, 3)] for word, t, weight in result.most_attended()]


def attended_html(result: Captioned) -> str:
    rows = attended_rows(result)
    if not rows:
        return ""
    table = html_table(["word", "frame it looked at most", "weight"], rows, "attended")
    return f"<div class='vidcap-label'>Per word</div>{table}"


def verdict_rows(result: Captioned) -> list[list[object]]:
    if result.verdict is None:
        return []
    rows = []
    for slot, value in result.verdict.items():
        shown = "n/a" if value is None else ("✓" if value == 1.0 else "✗" if value == 0.0 else f"{value:.0%}")
        rows.append([slot, shown, SLOT_MEANINGS.get(slot, "")])
    return rows


def verdict_html(result: Captioned) -> str:
    rows = verdict_rows(result)
    if not rows:
        return ""
    table = html_table(["slot", "verdict", "checks"], rows, "verdict")
    return f"<div class='vidcap-label'>Semantic checker vs ground truth</div>{table}"


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


def attention_heatmap(result: Captioned, width_px: int = HEATMAP_WIDTH_PX) -> np.ndarray | None:
    """(H, W, 3) uint8 picture of the words x frames attention, `width_px` wide (drawn at the size it is
    shown, so its labels stay HEATMAP_FONT points), or None for non-attention models."""
    if result.attention is None or result.attention.size == 0:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    attention = result.attention  # (words, T)
    words, frames = attention.shape
    compact = width_px < HEATMAP_WIDTH_PX
    font = HEATMAP_FONT - 2 if compact else HEATMAP_FONT
    row_px = 2.0 * font  # a word label per row, with room
    height_px = max(180.0, row_px * words + (90 if compact else 110))
    figure = Figure(figsize=(width_px / HEATMAP_DPI, height_px / HEATMAP_DPI), dpi=HEATMAP_DPI)
    canvas = FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    image = axes.imshow(attention, aspect="auto", cmap="viridis", vmin=0.0)
    axes.set_yticks(range(words), labels=result.words[:words], fontsize=font)
    max_ticks = max(2, int((width_px - 160) / (3.2 * font)))  # a tick label is up to 2 digits plus a gap
    step = max(1, int(np.ceil(frames / max_ticks)))
    axes.set_xticks(range(0, frames, step), labels=[str(t) for t in range(0, frames, step)], fontsize=font - 1)
    axes.set_xlabel("sampled frame (#, as in the frame strip)", fontsize=font)
    axes.set_title("Where each word looked" if compact else "Attention: where each word looked (each row sums to 1)",
                   fontsize=font + 1)
    colorbar = figure.colorbar(image, ax=axes, fraction=0.05)
    colorbar.ax.tick_params(labelsize=font - 1)
    figure.tight_layout()
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()  # (H, W, 3)


def compare_markdown(outcome: Outcome) -> str:
    """The details under one compare column: hypotheses, verdict summary, timings, or the error."""
    if isinstance(outcome, Failed):
        return error_markdown(outcome.message)
    lines = [f"{rank}. {html.escape(text)} ({score:.3f})" for rank, (text, score) in enumerate(outcome.hypotheses, 1)]
    parts = ["**Hypotheses**\n\n" + "\n".join(lines)]
    if not outcome.ended:
        parts.append(f"_{CUT_NOTE}._")
    if outcome.verdict is not None:
        slots = ", ".join(f"{slot} {'n/a' if v is None else f'{v:.0%}'}" for slot, v in outcome.verdict.items())
        parts.append(f"**Semantic checker**: {slots}")
    if outcome.attention is not None:
        looked = ", ".join(f"{word}→#{t}" for word, t, _ in outcome.most_attended())
        parts.append(f"**Looked at most**: {html.escape(looked)}")
    parts.append(timings_markdown(outcome))
    return "\n\n".join(parts)
