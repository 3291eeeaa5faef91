"""The Gradio app, built by a factory (STYLE rule 8): `build_app(...)` makes the Blocks,
`launch_app(app, ...)` serves it. Nothing is built or loaded at import; `build_app` warms up
(decoder children started, every served model loaded and run once on an example), so the page is
ready when it is served and the first request is as fast as the tenth.

Page, top to bottom: what the selected model can describe, in plain words (details in a fold); the
upload (a video file), the **Caption** button right under it (in view without scrolling at 1280x800
and 760 px wide), the message and the caption, then a preview the browser can play whatever the
upload's codec (an H.264 proxy of the frames the model samples: no "video not playable" error for a
file the model reads); beside it the bundled SynthClips examples with their references, the model,
beam size and frame count. Below: a Caption tab (beam hypotheses, frame strip, attention heatmap and
per-word most-attended frame, timings, the semantic checker's verdict on examples) and a Compare tab
(the checkpoints results/checkpoints/index.json lists for it, side by side, wrapping). API: `/caption`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr

from demo.cards import CompareColumn, compare_columns
from demo.examples import (
    DEFAULT_EXAMPLES_DIR,
    ExampleSet,
    ensure_examples,
    load_examples,
)
from demo.handlers import (
    BEST_MODEL,
    CREATE_CHECKPOINTS,
    Captioned,
    DemoHandlers,
    DemoLimits,
    Failed,
    ModelCache,
    Outcome,
    Preview,
    find_checkpoints,
)
from demo.render import (
    COMPARE_HEATMAP_WIDTH_PX,
    attended_html,
    attention_heatmap,
    caption_text,
    compare_markdown,
    details_markdown,
    error_markdown,
    example_markdown,
    frame_strip,
    hypotheses_html,
    ood_markdown,
    scope_markdown,
    timings_markdown,
    verdict_html,
)
from demo.uploads import VIDEO_KINDS, VIDEO_SUFFIXES
from vidcap_core.options import READABLE
from vidcap_core.video import IsolatedDecoder

log = logging.getLogger("vidcap-demo")

CONCURRENCY_LIMIT = 2  # captions computed at once; the rest wait in the queue
QUEUE_MAX_SIZE = 16  # waiting requests beyond this are told the queue is full
UPLOAD_HARD_CAP = 2.0  # Gradio refuses uploads over this many times the limit before they reach the disk
COMPARE_COLUMN_MIN_PX = 340  # Compare columns wrap onto new rows rather than shrink below this
CSS = """
.vidcap-error { padding: 0.6em 0.9em; border-radius: 6px; background: #fff4e5; color: #7a4100;
                border: 1px solid #f0b35b; }
.vidcap-warning { padding: 0.7em 0.9em; border-radius: 6px; background: #fdecea; color: #8a1c12;
                  border: 2px solid #e0564a; font-size: 1.05em; }
/* Tables of the Caption tab: as wide as their column at most, cells wrap, headers stay whole. */
.vidcap-table { width: 100%; border-collapse: collapse; table-layout: auto; }
.vidcap-table th, .vidcap-table td { padding: 4px 8px; text-align: left; vertical-align: top;
                                     white-space: normal; overflow-wrap: anywhere; border-bottom: 1px solid #ddd; }
.vidcap-table th { white-space: nowrap; }
.vidcap-label { font-weight: 600; margin: 0.6em 0 0.2em; }
/* The frame strip shows every sampled frame at once: as many columns of at least 120 px (room for the
   '#12 · 0.7 s' label) as the page is wide, wrapping into rows, and as tall as its rows. Gradio's
   gallery keeps `columns` columns of at least 100 px and caps its height at 55vh, so 32 frames
   scrolled inside it, and a narrow window cut off the right-hand columns. */
#frame-strip .grid-wrap { max-height: none; min-height: 0; overflow-y: visible; }
#frame-strip .grid-container { grid-template-columns: repeat(auto-fill, minmax(120px, 1fr)); grid-template-rows: none; }
"""
INTRO = (
    "# vidcap: caption a video\n"
    "Upload a video or pick a SynthClips example, then press **Caption**. **Compare** runs the same clip through "
    "several models. Runs on CPU, offline; API: `/caption`."
)
PREVIEW_LABEL = "Preview: the frames the model reads, at their pace in the video"

__all__ = ["DemoLimits", "build_app", "launch_app"]


def build_app(
    checkpoints: dict[str, Path] | Path,
    examples_dir: Path | None = DEFAULT_EXAMPLES_DIR,
    limits: DemoLimits | None = None,
    default_model: str | None = None,
    warm_up: bool = True,
) -> gr.Blocks:
    """The demo's Blocks, with its queue configured.

    `checkpoints`: name -> checkpoint file, or a results folder (`best` = results/best/model.pt plus
    results/checkpoints/*.pt). `examples_dir`: a SynthClips folder (generated there at first start
    when absent; None = no examples). `warm_up`: start decoders and load and run every model now
    (False: on first use). Raises ConfigError when there is no checkpoint.
    """
    limits = limits or DemoLimits()
    found = find_checkpoints(checkpoints) if isinstance(checkpoints, Path) else dict(checkpoints)
    models = ModelCache(found)
    examples = ExampleSet()
    if examples_dir is not None:
        examples = load_examples(ensure_examples(Path(examples_dir)))
    # Probing and decoding run in child processes: a decoder crash on an upload fails that request only.
    handlers = DemoHandlers(models, limits, examples, IsolatedDecoder(workers=CONCURRENCY_LIMIT))
    default = default_model or (BEST_MODEL if BEST_MODEL in models.names else models.names[0])
    columns = compare_columns(models.checkpoints)
    if warm_up:
        for line in handlers.warm_up():
            log.info("warm-up: %s", line)

    with gr.Blocks(title="vidcap demo", analytics_enabled=False, delete_cache=(3600, 3600)) as app:
        gr.Markdown(INTRO, elem_id="intro")
        scope = gr.Markdown(scope_markdown(models.scope(default)), elem_id="model-scope")
        with gr.Accordion("About this model: training data, features, vocabulary, the out-of-distribution check",
                          open=False, elem_id="model-details"):
            details = gr.Markdown(details_markdown(models.scope(default)))
        with gr.Row():
            with gr.Column(scale=3, min_width=300):
                video = gr.File(label=f"Video ({VIDEO_KINDS})", file_types=list(VIDEO_SUFFIXES), type="filepath",
                                height=110, elem_id="video")
                caption_button = gr.Button("Caption", variant="primary", elem_id="caption-button")
                message = gr.HTML(elem_id="message", min_height=0)
                caption = gr.Textbox(label="Caption", interactive=False, elem_id="caption")
                preview = gr.Video(label=PREVIEW_LABEL, interactive=False, visible=False, height=240, loop=True,
                                   elem_id="preview")
            with gr.Column(scale=2, min_width=260):
                if len(examples):  # labelled by a reference caption: a table of paths would be cut off
                    gr.Examples(examples=[[str(e.path)] for e in examples], inputs=[video],
                                example_labels=[f"{e.video_id}: {e.references[0]}" for e in examples],
                                label="SynthClips examples (click one)")
                references = gr.Textbox(label="Reference captions (SynthClips examples)", lines=3,
                                        interactive=False, elem_id="references")
                model = gr.Dropdown(choices=models.names, value=default, label="Model",
                                    info="best = chosen on validation by vidcap-bench", elem_id="model")
                beam = gr.Slider(1, limits.max_beam, value=min(READABLE.beam, limits.max_beam), step=1,
                                 label="Beam size", info="1 = greedy; top hypotheses need 2 or more")
                frames = gr.Slider(0, limits.max_frames, value=0, step=1, label="Frames",
                                   info="sampled evenly; 0 = as many as the model was trained on", elem_id="frames")
        with gr.Tabs():
            with gr.Tab("Caption details"):
                timings = gr.Markdown(elem_id="timings")
                hypotheses = gr.HTML(elem_id="hypotheses-box")
                strip = gr.Gallery(label="Sampled frames (every frame the model saw, in order)", columns=8,
                                   height="auto", object_fit="contain", allow_preview=True, elem_id="frame-strip")
                heatmap = gr.Image(type="numpy", visible=False, interactive=False, show_label=False,
                                   elem_id="heatmap")  # its title is drawn in the picture, not under a label
                attended = gr.HTML(elem_id="attended-box")
                example_info = gr.Markdown()
                verdict = gr.HTML(elem_id="verdict-box")
            with gr.Tab("Compare"):
                compare_button = gr.Button("Compare the models", variant="primary", elem_id="compare-button")
                compare_note = gr.Markdown(compare_note_markdown(columns))
                compare_outputs: list[gr.components.Component] = []
                with gr.Row(elem_id="compare-columns"):
                    for column in columns:
                        with gr.Column(min_width=COMPARE_COLUMN_MIN_PX, elem_classes=["compare-column"]):
                            gr.Markdown(f"### {column.title}\n`{column.name}`")
                            compare_outputs += [
                                gr.Textbox(label="Caption", interactive=False),
                                gr.Markdown(),
                                gr.Image(label="Attention", type="numpy", visible=False, interactive=False,
                                         elem_classes=["compare-heatmap"]),
                            ]
        api_video = gr.File(visible=False)  # the API's input: any file name, so a bad one gets {"error"}
        api_result = gr.JSON(visible=False, label="caption_result")
        api_trigger = gr.Button(visible=False)

        page_outputs = [message, caption, timings, hypotheses, strip, heatmap, attended, example_info, verdict]
        caption_button.click(guarded(lambda *a: caption_page(handlers.caption_video(*a), models), len(page_outputs)),
                             inputs=[video, model, beam, frames], outputs=page_outputs,
                             api_name="caption_page", api_visibility="undocumented")
        compare_button.click(guarded(lambda *a: compare_page(handlers.compare(*a)), 1 + len(compare_outputs)),
                             inputs=[video, beam, frames], outputs=[compare_note, *compare_outputs],
                             api_name="compare_page", api_visibility="undocumented")
        video.change(guarded(lambda *a: preview_page(handlers.preview(*a) if a[0] else None), 3),
                     inputs=[video, model, frames], outputs=[message, preview, references], api_visibility="private")
        api_trigger.click(guarded_json(handlers.caption_video), inputs=[api_video, model, beam, frames],
                          outputs=api_result, api_name="caption",
                          api_description="Caption a video: (video file, model name, beam size, frames; 0 = the "
                                          "model's own count) -> {caption, hypotheses, attention, timings_ms, ood: "
                                          "{score, threshold, flagged}} or {error}. ood.flagged: the video looks "
                                          "unlike the training data, so the caption is probably wrong.")
        model.change(lambda name: (scope_markdown(models.scope(name)), details_markdown(models.scope(name))),
                     inputs=model, outputs=[scope, details], api_visibility="private")
    app.queue(default_concurrency_limit=CONCURRENCY_LIMIT, max_size=QUEUE_MAX_SIZE)
    return app


def launch_app(app: gr.Blocks, host: str = "127.0.0.1", port: int | None = 7860, limits: DemoLimits | None = None,
               examples_dir: Path | None = DEFAULT_EXAMPLES_DIR, prevent_thread_lock: bool = False,
               quiet: bool = False) -> tuple[Any, str, str]:
    """Serve `app` (offline: no analytics, no SSR, system fonts); returns Gradio's (app, local_url, share_url).

    Pass the `limits` and `examples_dir` given to build_app: Gradio refuses uploads over
    UPLOAD_HARD_CAP x the size limit itself, and may serve the example clips wherever they are.
    """
    limits = limits or DemoLimits()
    allowed = [str(Path(examples_dir).resolve())] if examples_dir is not None else []
    theme = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                              font_mono=["ui-monospace", "monospace"])
    return app.launch(server_name=host, server_port=port, prevent_thread_lock=prevent_thread_lock, quiet=quiet,
                      ssr_mode=False, share=False, allowed_paths=allowed, theme=theme, css=CSS,
                      max_file_size=f"{int(limits.max_upload_mb * UPLOAD_HARD_CAP)}mb", footer_links=["api"])


def compare_note_markdown(columns: list[CompareColumn]) -> str:
    """Above the Compare columns: what they show, or which have no checkpoint and how to make them."""
    missing = [column for column in columns if column.missing is not None]
    if not missing:
        return "Same clip, same beam size and frame count, through each model below."
    names = ", ".join(f"{column.title} ({column.missing})" for column in missing)
    return error_markdown(f"No checkpoint for: {names}. `{CREATE_CHECKPOINTS}` writes the grid's; the other columns "
                          "still work.")


def preview_page(outcome: Preview | Failed | None) -> tuple[Any, Any, str]:
    """preview() -> (message, preview, references): the playable preview (and an example's reference
    captions), or the one message saying why the file cannot be read (no preview then, so the browser
    never shows an error of its own); all empty when the upload was cleared."""
    hidden = gr.update(value=None, visible=False)
    if outcome is None:
        return "", hidden, ""
    if isinstance(outcome, Failed):
        return error_markdown(outcome.message), hidden, ""
    references = "" if outcome.example is None else outcome.example.references_text()
    return "", gr.update(value=str(outcome.path), visible=True), references


def caption_page(outcome: Outcome, models: ModelCache | None = None) -> tuple[Any, ...]:
    """Handler result -> values of (message, caption, timings, hypotheses, strip, heatmap, attended,
    example_info, verdict). The message warns when the video looks unlike the training data (and,
    given `models`, says what the model can describe)."""
    if isinstance(outcome, Failed):
        hidden = gr.update(value=None, visible=False)
        return (error_markdown(outcome.message), "", "", "", [], hidden, "", "", "")
    picture = attention_heatmap(outcome)
    has_attention = picture is not None
    return (
        ood_markdown(outcome, models.scope(outcome.model) if models is not None and outcome.ood else None),
        caption_text(outcome),
        timings_markdown(outcome),
        hypotheses_html(outcome),
        frame_strip(outcome),
        gr.update(value=picture, visible=has_attention),
        attended_html(outcome) if has_attention else "",
        example_markdown(outcome),
        verdict_html(outcome),
    )


def compare_page(outcomes: dict[str, Outcome]) -> tuple[Any, ...]:
    """compare() -> (note, then caption, details, heatmap per compare column, in compare()'s order)."""
    values: list[Any] = [gr.update()]
    for outcome in outcomes.values():
        if isinstance(outcome, Captioned):
            picture = attention_heatmap(outcome, COMPARE_HEATMAP_WIDTH_PX)
            values += [caption_text(outcome), compare_markdown(outcome),
                       gr.update(value=picture, visible=picture is not None)]
        else:
            values += ["", compare_markdown(outcome), gr.update(value=None, visible=False)]
    return tuple(values)


def guarded(fn: Callable[..., tuple[Any, ...]], n_outputs: int) -> Callable[..., tuple[Any, ...]]:
    """A page handler that cannot crash the page: an unexpected exception is logged with its
    traceback and shown as a message (first output), the other outputs left unchanged."""

    def run(*args: Any) -> tuple[Any, ...]:
        try:
            return fn(*args)
        except Exception as exc:  # noqa: BLE001 - the server must keep serving; the log has the traceback
            log.exception("demo request failed")
            return (error_markdown(unexpected(exc)), *[gr.update() for _ in range(n_outputs - 1)])

    return run


def guarded_json(caption_video: Callable[..., Outcome]) -> Callable[..., dict[str, Any]]:
    def caption(video: str | None, model_name: str, beam: float = 1, frames: float = 0) -> dict[str, Any]:
        try:
            return caption_video(video, model_name, beam, frames).to_json()
        except Exception as exc:  # noqa: BLE001 - an API caller gets {error}, the log gets the traceback
            log.exception("/caption request failed")
            return {"error": unexpected(exc)}

    return caption


def unexpected(exc: Exception) -> str:
    return (f"Unexpected error ({type(exc).__name__}: {exc}). The server log has the details; "
            "please report it with the file that caused it.")
