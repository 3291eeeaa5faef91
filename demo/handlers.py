"""What the demo does, as plain functions with no Gradio in them: check an upload against the
demo's limits, make a preview the browser can play of what the model reads, caption it with a lazily
loaded, cached Captioner, compare the checkpoints the benchmark lists for the Compare view on it
(demo/cards.py: titles and order come from results/, not from here), and turn every VidcapError into
a message for people (checking the upload and wording its errors: demo/uploads.py).

`DemoHandlers.caption_video`, `.preview` and `.compare` never raise on bad input: they return a
`Failed` whose `message` names the file and says what to do. The page, the `/caption` API and
the tests all go through them.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import threading
import time
import uuid
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from demo.cards import compare_columns, model_card
from demo.examples import Example, ExampleSet
from demo.uploads import CheckedVideo, DemoLimits, check_upload, elapsed_ms, friendly_message, whole_number
from vidcap_core.errors import ConfigError, VidcapError
from vidcap_core.options import READABLE

if TYPE_CHECKING:  # torch-heavy: imported when the first model loads, not at startup
    from vidcap_core.pipeline import Captioner
    from vidcap_core.video import IsolatedDecoder

BEST_MODEL = "best"
CREATE_CHECKPOINTS = "vidcap-bench run --suite cells --out results"
PREVIEW_SIDE = 256  # px, the preview's longer side: the model's own frames are often 64 px
PREVIEWS_KEPT = 64  # preview files kept on disk (Gradio copies each one into its cache when it is shown)


def find_checkpoints(results: Path) -> dict[str, Path]:
    """Every servable checkpoint under a results folder: `best` (results/best/model.pt) first, then
    results/checkpoints/<arch>-<cell>.pt by name. Empty when the benchmark has not run."""
    results = Path(results)
    found: dict[str, Path] = {}
    best = results / "best" / "model.pt"
    if best.is_file():
        found[BEST_MODEL] = best
    for path in sorted((results / "checkpoints").glob("*.pt")):
        found.setdefault(path.stem, path)
    return found


class ModelCache:
    """One Captioner per checkpoint name, loaded on first use (on CPU) and kept."""

    def __init__(self, checkpoints: dict[str, Path], device: str = "cpu") -> None:
        if not checkpoints:
            raise ConfigError(f"no checkpoints to serve; `{CREATE_CHECKPOINTS}` writes results/best/model.pt.")
        self.checkpoints = {name: Path(path) for name, path in checkpoints.items()}
        self.device = device
        self._loaded: dict[str, Captioner] = {}
        self._lock = threading.Lock()  # two queued requests must not load the same model twice

    @property
    def names(self) -> list[str]:
        return list(self.checkpoints)

    def scope(self, name: str) -> ModelScope:
        """What model `name` knows (loads it if needed)."""
        return ModelScope.of(name, self.checkpoints[name], self.get(name))

    def get(self, name: str) -> Captioner:
        if name not in self.checkpoints:
            raise ConfigError(f"unknown model {name!r}; choose one of {', '.join(self.checkpoints)}.")
        with self._lock:
            if name not in self._loaded:
                from vidcap_core.pipeline import Captioner

                self._loaded[name] = Captioner.from_checkpoint(self.checkpoints[name], device=self.device)
            return self._loaded[name]


@dataclass(frozen=True)
class ModelScope:
    """What a served model knows, for the page: from its checkpoint and the benchmark's JSON card next to
    it (demo/cards.py; {} for a checkpoint without one)."""

    name: str
    title: str  # the card's title, else the name
    plain: str  # what it can describe, in plain words (Captioner.scope)
    card: dict[str, Any]
    backbone: str
    weights: str  # the backbone's weights id (committed synth-cnn sha256:...)
    num_frames: int
    frame_size: tuple[int, int]
    vocabulary: list[str]  # the words it can say (special tokens left out)
    ood_threshold: float | None  # None when the checkpoint has no OOD calibration

    @property
    def data_summary(self) -> str:
        """The training data in one phrase, e.g. "SynthClips standard (seed 0)"; "" when not recorded."""
        return str(self.card.get("data") or "")

    @classmethod
    def of(cls, name: str, checkpoint: Path, captioner: Captioner) -> ModelScope:
        card = model_card(checkpoint)
        words = [w for w in captioner.vocab.tokens if not (w.startswith("<") and w.endswith(">"))]
        facts = captioner.preprocessing
        return cls(name, str(card.get("title") or name), captioner.scope, card, str(facts.get("backbone")),
                   str(facts.get("weights") or "n/a"), captioner.num_frames, captioner.frame_size, words,
                   None if captioner.ood is None else captioner.ood.threshold)


@dataclass
class Captioned:
    """One caption of one clip by one model, with everything the page shows about it."""

    model: str
    video: Path
    caption: str
    score: float
    hypotheses: list[tuple[str, float]]  # best first
    attention: np.ndarray | None  # (words, T) for attention models, else None
    frames: np.ndarray  # (T, H, W, 3) uint8: what the model saw
    frame_indices: list[int]  # (T,) index of each sampled frame in the source video
    fps: float
    timings_ms: dict[str, float]  # decode_video (probe + read), features, caption, total
    example: Example | None = None  # set when the clip is one of the bundled SynthClips examples
    verdict: dict[str, float | None] | None = None  # semantic checker per slot (None = does not apply)
    ood: dict[str, Any] | None = None  # {score, threshold, flagged}: unlike the training data? None = not calibrated
    ended: bool = True  # False: no hypothesis finished its sentence before the length limit; `caption` is cut

    @property
    def words(self) -> list[str]:
        return self.caption.split()

    def most_attended(self) -> list[tuple[str, int, float]]:
        """(word, sampled-frame position, weight) of the frame each word looked at most."""
        if self.attention is None:
            return []
        best = self.attention.argmax(axis=1)  # (words,)
        return [(word, int(t), float(self.attention[i, t])) for i, (word, t) in enumerate(zip(self.words, best))]

    def to_json(self) -> dict[str, Any]:
        """The `/caption` API answer: caption, hypotheses, attention, timings_ms and the rest."""
        return {
            "model": self.model,
            "caption": self.caption,
            "score": round(self.score, 5),
            "ended": self.ended,
            "hypotheses": [{"caption": text, "score": round(score, 5)} for text, score in self.hypotheses],
            "attention": None if self.attention is None else np.round(self.attention.astype(np.float64), 5).tolist(),
            "most_attended": [{"word": w, "frame": t, "source_frame": self.frame_indices[t], "weight": round(a, 5)}
                              for w, t, a in self.most_attended()],
            "frame_indices": self.frame_indices,
            "timings_ms": self.timings_ms,
            "references": None if self.example is None else list(self.example.references),
            "verdict": self.verdict,
            "ood": self.ood,
        }


@dataclass
class Failed:
    """A request the demo refused or could not do; `message` is for the person who asked."""

    message: str
    model: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"error": self.message}


Outcome = Captioned | Failed


@dataclass
class Preview:
    """An H.264 mp4 of the frames the model samples, for the browser to play (any upload's codec)."""

    path: Path
    frames: int
    fps: int
    example: Example | None = None  # set when the upload is one of the bundled SynthClips examples


@dataclass
class DemoHandlers:
    """The demo's request handlers over a set of checkpoints, limits and bundled examples."""

    models: ModelCache
    limits: DemoLimits = field(default_factory=DemoLimits)
    examples: ExampleSet = field(default_factory=ExampleSet)
    # Where probing and decoding run: None = in this process; the served app passes an
    # IsolatedDecoder, so a decoder that crashes on an upload costs that request, not the server.
    decoder: IsolatedDecoder | None = None
    # The READABLE preset's repetition block (vidcap caption's default too); the beam size is the page's control.
    no_repeat_ngram: int = READABLE.no_repeat_ngram
    previews: PreviewFolder = field(default_factory=lambda: PreviewFolder())

    def caption_video(self, path: str | Path | None, model_name: str, beam: int = 1, frames: int = 0) -> Outcome:
        """Caption one video with `model_name`; `frames` 0 means as many frames as the model was trained on."""
        try:
            beam, frames = self.check_controls(beam, frames)
            video = check_upload(path, self.limits, self.decoder)
            return self.run(video, model_name, beam, frames)
        except VidcapError as exc:
            return Failed(friendly_message(exc, path), model_name)

    def preview(self, path: str | Path | None, model_name: str, frames: int = 0) -> Preview | Failed:
        """An H.264 mp4 (PREVIEW_SIDE px) of the frames `model_name` samples from the upload, cropped as
        the model crops them, at their pace in the video: a preview every browser plays, whatever the
        upload's codec (10-bit HEVC, AV1 in MKV...), and the check that the model can read the file."""
        from vidcap_core.synth.generator import write_video
        from vidcap_core.video import read_frames

        try:
            _, frames = self.check_controls(1, frames)
            video = check_upload(path, self.limits, self.decoder)
            captioner = self.models.get(model_name)
            count = frames or captioner.num_frames
            read = read_frames if self.decoder is None else self.decoder.read
            pictures = read(video.path, count, preview_size(captioner.frame_size))  # (T, H, W, 3) uint8
            fps = preview_fps(count, video.info.duration_s)
            target = self.previews.new_file(".mp4")
            write_video(pictures, target, fps)
        except VidcapError as exc:
            return Failed(friendly_message(exc, path), model_name)
        return Preview(target, count, fps, self.examples.match(video.path))

    def compare(self, path: str | Path | None, beam: int = 1, frames: int = 0) -> dict[str, Outcome]:
        """The clip through every column of the Compare view (demo.cards.compare_columns, from the
        benchmark's index.json), in column order; a column without a served checkpoint gets a Failed
        saying why."""
        columns = compare_columns(self.models.checkpoints)
        try:
            beam, frames = self.check_controls(beam, frames)
            video = check_upload(path, self.limits, self.decoder)
        except VidcapError as exc:
            return {column.name: Failed(friendly_message(exc, path), column.name) for column in columns}
        outcomes: dict[str, Outcome] = {}
        for column in columns:
            name = column.name
            if column.missing is not None:
                outcomes[name] = Failed(f"No checkpoint served for this column ({column.missing}); "
                                        f"`{CREATE_CHECKPOINTS}` writes the grid's.", name)
                continue
            try:
                outcomes[name] = self.run(video, name, beam, frames)
            except VidcapError as exc:
                outcomes[name] = Failed(friendly_message(exc, path), name)
        return outcomes

    def warm_up(self) -> list[str]:
        """Everything a first request would otherwise wait for, done at startup: start the decoder
        children, load every served model, and caption the first example once with each (torch and
        the decoders pay their first-call costs here). Returns one line per step for the log."""
        done: list[str] = []
        started = time.perf_counter()
        if self.decoder is not None:
            self.decoder.start()
            done.append(f"decoder processes started ({elapsed_ms(started):.0f} ms)")
        for name in self.models.names:
            started = time.perf_counter()
            self.models.get(name)
            done.append(f"model {name} loaded ({elapsed_ms(started):.0f} ms)")
        if len(self.examples):
            clip = self.examples.examples[0].path
            for name in self.models.names:
                started = time.perf_counter()
                outcome = self.caption_video(clip, name, beam=1)
                state = "ok" if isinstance(outcome, Captioned) else f"failed: {outcome.message}"
                done.append(f"first caption with {name}: {state} ({elapsed_ms(started):.0f} ms)")
        return done

    def check_controls(self, beam: int | float, frames: int | float) -> tuple[int, int]:
        beam_i = whole_number("beam size", beam)
        frames_i = whole_number("number of frames", frames)
        if not 1 <= beam_i <= self.limits.max_beam:
            raise ConfigError(f"beam size {beam_i} is out of range; choose 1 (greedy) to {self.limits.max_beam}.")
        if not 0 <= frames_i <= self.limits.max_frames:
            raise ConfigError(f"number of frames {frames_i} is out of range; choose 1 to {self.limits.max_frames}, "
                              "or 0 for as many as the model was trained on.")
        return beam_i, frames_i

    def run(self, video: CheckedVideo, model_name: str, beam: int, frames: int) -> Captioned:
        """Caption a checked upload through `Captioner.caption` (the one corridor) and add what only
        the page shows: the probe's time, a total, the example's references and the checker's verdict."""
        captioner = self.models.get(model_name)
        if self.decoder is not None:
            captioner = captioner.decoding_with(self.decoder)
        result = captioner.caption(video.path, beam=beam, n_best=min(beam, self.limits.max_hypotheses),
                                   no_repeat_ngram=self.no_repeat_ngram, num_frames=frames or None,
                                   video_info=video.info)  # probed by check_upload already
        timings = dict(result.timings_ms)
        timings["decode_video"] += video.probe_ms
        timings = {key: round(value, 1) for key, value in timings.items()}
        timings["total"] = round(sum(timings.values()), 1)
        example = self.examples.match(video.path)
        return Captioned(
            model=model_name,
            video=video.path,
            caption=result.caption,
            score=result.score,
            hypotheses=result.hypotheses,
            attention=result.attention,
            frames=result.frames,
            frame_indices=result.frame_indices,
            fps=video.info.fps,
            timings_ms=timings,
            example=example,
            verdict=None if example is None else semantic_verdict(result.caption, example),
            ood=result.ood,
            ended=result.ended,
        )


class PreviewFolder:
    """Where previews are written: a temporary folder of this process (Gradio serves files from the
    system's temp folder), keeping the newest PREVIEWS_KEPT files; removed when this object is
    collected or the process exits."""

    def __init__(self) -> None:
        self._folder: Path | None = None
        self._lock = threading.Lock()

    def new_file(self, suffix: str) -> Path:
        with self._lock:
            if self._folder is None:
                self._folder = Path(tempfile.mkdtemp(prefix="vidcap-demo-previews-"))
                weakref.finalize(self, shutil.rmtree, self._folder, ignore_errors=True)
            kept = sorted(self._folder.glob(f"*{suffix}"), key=lambda p: p.stat().st_mtime)
            for old in kept[: max(0, len(kept) - PREVIEWS_KEPT + 1)]:
                old.unlink(missing_ok=True)
            return self._folder / f"{uuid.uuid4().hex}{suffix}"


def preview_size(frame_size: tuple[int, int]) -> tuple[int, int]:
    """The model's frame (H, W) scaled so its longer side is PREVIEW_SIDE, both even (H.264 yuv420p)."""
    height, width = frame_size
    scale = PREVIEW_SIDE / max(height, width)
    return max(2, 2 * round(height * scale / 2)), max(2, 2 * round(width * scale / 2))


def preview_fps(frames: int, duration_s: float) -> int:
    """Frames per second that show `frames` sampled frames over the video's duration (1 to 30)."""
    if not math.isfinite(duration_s) or duration_s <= 0:
        return 8
    return int(min(30, max(1, round(frames / duration_s))))


def semantic_verdict(caption: str, example: Example) -> dict[str, float | None]:
    """The SynthClips checker's per-slot score of `caption` against the example's ground truth
    (fraction of events right; None where a slot does not apply, e.g. order for one event)."""
    from vidcap_core.synth import score_caption

    scores = score_caption(caption, example.truth)
    return {slot: None if math.isnan(value) else round(float(value), 4) for slot, value in scores.items()}


