"""The Gradio app, built by a factory (STYLE rule 8): `build_app(...)` makes the Blocks,
`launch_app(app, ...)` serves it. Nothing is built or loaded at import; `build_app` warms up
(decoder children started, every served model loaded and run once on an example), so the page is
ready when it is served and the first request is as fast as the tenth.

Page: a video (upload, or a bundled SynthClips example with its references), the model, beam
size and frame count; a Caption tab (caption, beam hypotheses, frame strip, attention heatmap
and per-word most-attended frame, timings, the semantic checker's verdict on examples) and a
Compare tab (RNN, LSTM and attention checkpoints side by side, then each surveyed system whose
checkpoint is served: concepts, semantic consistency, the SCST / LSTM-GAN fine-tunes). API: `/caption`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gradio as gr

from demo.examples import (
    DEFAULT_EXAMPLES_DIR,
    ExampleSet,
    ensure_examples,
    load_examples,
)
from demo.handlers import (
    BEST_MODEL,
    COMPARE_MODELS,
    CREATE_SURVEYED,
    VIDEO_SUFFIXES,
    Captioned,
    DemoHandlers,
    DemoLimits,
    Failed,
    ModelCache,
    Outcome,
    compare_columns,
    find_checkpoints,
)
from demo.render import (
    attended_rows,
    attention_heatmap,
    compare_markdown,
    error_markdown,
    example_markdown,
    frame_strip,
    hypotheses_rows,
    ood_markdown,
    scope_markdown,
    timings_markdown,
    verdict_rows,
)
from vidcap_core.video import IsolatedDecoder

log = logging.getLogger("vidcap-demo")

CONCURRENCY_LIMIT = 2  # captions computed at once; the rest wait in the queue
QUEUE_MAX_SIZE = 16  # waiting requests beyond this are told the queue is full
UPLOAD_HARD_CAP = 2.0  # Gradio refuses uploads over this many times the limit before they reach the disk
DEFAULT_BEAM = 3
CSS = """
.vidcap-error { padding: 0.6em 0.9em; border-radius: 6px; background: #fff4e5; color: #7a4100;
                border: 1px solid #f0b35b; }
.vidcap-warning { padding: 0.7em 0.9em; border-radius: 6px; background: #fdecea; color: #8a1c12;
                  border: 2px solid #e0564a; font-size: 1.05em; }
/* The frame strip shows every sampled frame at once: as many columns of at least 120 px (room for the
   '#12 · 0.7 s' label) as the page is wide, wrapping into rows, and as tall as its rows. Gradio's
   gallery keeps `columns` columns of at least 100 px and caps its height at 55vh, so 32 frames
   scrolled inside it, and a narrow window cut off the right-hand columns. */
#frame-strip .grid-wrap { max-height: none; min-height: 0; overflow-y: visible; }
#frame-strip .grid-container { grid-template-columns: repeat(auto-fill, minmax(120px, 1fr)); grid-template-rows: none; }
"""
INTRO = (
    "# vidcap: caption a video\n"
    "Upload a video ({suffixes}) or pick a SynthClips example, choose a model, then **Caption**. "
    "Attention models also show which frames each word looked at. **Compare** runs the same clip "
    "through the RNN, LSTM and attention checkpoints (and the surveyed systems' when served). Runs on CPU, "
    "offline; API: `/caption`."
)

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
    if warm_up:
        for line in handlers.warm_up():
            log.info("warm-up: %s", line)

    with gr.Blocks(title="vidcap demo", analytics_enabled=False, delete_cache=(3600, 3600)) as app:
        gr.Markdown(INTRO.format(suffixes=", ".join(s[1:] for s in VIDEO_SUFFIXES)))
        scope = gr.Markdown(scope_markdown(models.scope(default)), elem_id="model-scope")
        with gr.Row():
            with gr.Column(scale=3):
                video = gr.Video(label="Video", sources=["upload"], height=280, elem_id="video")
                references = gr.Textbox(label="Reference captions (SynthClips examples)", lines=3,
                                        interactive=False, elem_id="references")
                if len(examples):
                    gr.Examples(examples=[[str(e.path), e.references_text()] for e in examples],
                                inputs=[video, references], label="SynthClips examples (click one)")
            with gr.Column(scale=2):
                model = gr.Dropdown(choices=models.names, value=default, label="Model",
                                    info="best = chosen on validation by vidcap-bench", elem_id="model")
                beam = gr.Slider(1, limits.max_beam, value=min(DEFAULT_BEAM, limits.max_beam), step=1,
                                 label="Beam size", info="1 = greedy; top hypotheses need 2 or more")
                frames = gr.Slider(0, limits.max_frames, value=0, step=1, label="Frames",
                                   info="sampled evenly; 0 = as many as the model was trained on", elem_id="frames")
        with gr.Tabs():
            with gr.Tab("Caption"):
                caption_button = gr.Button("Caption", variant="primary", elem_id="caption-button")
                message = gr.Markdown(elem_id="message")
                caption = gr.Textbox(label="Caption", interactive=False, elem_id="caption")
                timings = gr.Markdown(elem_id="timings")
                hypotheses = gr.Dataframe(headers=["rank", "caption", "score"], label="Top beam hypotheses",
                                          interactive=False, wrap=True)
                strip = gr.Gallery(label="Sampled frames (every frame the model saw, in order)", columns=8,
                                   height="auto", object_fit="contain", allow_preview=True, elem_id="frame-strip")
                heatmap = gr.Image(type="numpy", visible=False, interactive=False, show_label=False,
                                   elem_id="heatmap")  # its title is drawn in the picture, not under a label
                attended = gr.Dataframe(headers=["word", "frame it looked at most", "weight"], visible=False,
                                        label="Per word", interactive=False)
                example_info = gr.Markdown()
                verdict = gr.Dataframe(headers=["slot", "verdict", "checks"], label="Semantic checker vs ground truth",
                                       visible=False, interactive=False)
            with gr.Tab("Compare"):
                compare_button = gr.Button("Compare the models", variant="primary", elem_id="compare-button")
                compare_note = gr.Markdown(missing_note(models.names))
                compare_outputs: list[gr.components.Component] = []
                with gr.Row():
                    for name, title in compare_columns(models.names).items():
                        with gr.Column():
                            gr.Markdown(f"### {title}\n`{name}`")
                            compare_outputs += [
                                gr.Textbox(label="Caption", interactive=False),
                                gr.Markdown(),
                                gr.Image(label="Attention", type="numpy", visible=False, interactive=False),
                            ]
        api_result = gr.JSON(visible=False, label="caption_result")
        api_trigger = gr.Button(visible=False)

        page_outputs = [message, caption, timings, hypotheses, strip, heatmap, attended, example_info, verdict]
        caption_button.click(guarded(lambda *a: caption_page(handlers.caption_video(*a), models), len(page_outputs)),
                             inputs=[video, model, beam, frames], outputs=page_outputs,
                             api_name="caption_page", api_visibility="undocumented")
        compare_button.click(guarded(lambda *a: compare_page(handlers.compare(*a)), 1 + len(compare_outputs)),
                             inputs=[video, beam, frames], outputs=[compare_note, *compare_outputs],
                             api_name="compare_page", api_visibility="undocumented")
        api_trigger.click(guarded_json(handlers.caption_video), inputs=[video, model, beam, frames],
                          outputs=api_result, api_name="caption",
                          api_description="Caption a video: (video file, model name, beam size, frames; 0 = the "
                                          "model's own count) -> {caption, hypotheses, attention, timings_ms, ood: "
                                          "{score, threshold, flagged}} or {error}. ood.flagged: the video looks "
                                          "unlike the training data, so the caption is probably wrong.")
        model.change(lambda name: scope_markdown(models.scope(name)), inputs=model, outputs=scope,
                     api_visibility="private")
        video.upload(lambda: "", outputs=references, api_visibility="private")
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


def missing_note(names: Sequence[str]) -> str:
    missing = [name for name in COMPARE_MODELS if name not in names]
    if not missing:
        return ("Same clip, same beam size and frame count, through each model; the surveyed systems' checkpoints "
                f"(`{CREATE_SURVEYED}`) add a column each when served.")
    files = ", ".join(f"results/checkpoints/{name}.pt" for name in missing)
    return error_markdown(f"Missing checkpoints: {files}. `vidcap-bench run --suite cells --out results` writes them; "
                          f"the other columns still work (`{CREATE_SURVEYED}` adds the surveyed systems').")


def caption_page(outcome: Outcome, models: ModelCache | None = None) -> tuple[Any, ...]:
    """Handler result -> values of (message, caption, timings, hypotheses, strip, heatmap, attended,
    example_info, verdict). The message warns when the video looks unlike the training data (and,
    given `models`, says what that data was)."""
    if isinstance(outcome, Failed):
        hidden = gr.update(value=None, visible=False)
        return (error_markdown(outcome.message), "", "", [], [], hidden, hidden, "", hidden)
    picture = attention_heatmap(outcome)
    has_attention = picture is not None
    return (
        ood_markdown(outcome, models.scope(outcome.model) if models is not None and outcome.ood else None),
        outcome.caption,
        timings_markdown(outcome),
        hypotheses_rows(outcome),
        frame_strip(outcome),
        gr.update(value=picture, visible=has_attention),
        gr.update(value=attended_rows(outcome) if has_attention else None, visible=has_attention),
        example_markdown(outcome),
        gr.update(value=verdict_rows(outcome) or None, visible=outcome.verdict is not None),
    )


def compare_page(outcomes: dict[str, Outcome]) -> tuple[Any, ...]:
    """compare() -> (note, then caption, details, heatmap per compare column, in compare()'s order)."""
    values: list[Any] = [gr.update()]
    for outcome in outcomes.values():
        if isinstance(outcome, Captioned):
            picture = attention_heatmap(outcome)
            values += [outcome.caption, compare_markdown(outcome), gr.update(value=picture, visible=picture is not None)]
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
