"""vidcap-demo: handlers as plain functions, the page's render helpers, the CLI, and the app
launched in-process and driven through gradio_client (`/caption`)."""

from __future__ import annotations

import html
import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from demo.cards import compare_columns, model_card
from demo.examples import ExampleSet, load_examples
from demo.handlers import (
    Captioned,
    DemoHandlers,
    DemoLimits,
    Failed,
    ModelCache,
    Preview,
    find_checkpoints,
)
from vidcap_core.errors import ConfigError
from vidcap_core.options import READABLE
from vidcap_core.synth.checker import SLOTS

SHARED_VIDEOS = Path(__file__).resolve().parents[2] / "shared" / "videos"
REPO = Path(__file__).resolve().parents[1]
NUM_FRAMES = 8
COMPARED = ("s2vt-rnn", "s2vt-lstm", "attention-lstm")  # the compare view's three checkpoints
_BUILT: dict[str, Path] = {}


def build_demo_results(base: Path) -> dict[str, Path]:
    """SynthClips tiny (12 clips) and three small seeded checkpoints (vocabulary from its train
    captions, features from the `random` backbone, untrained weights: the demo's mechanics do not
    depend on caption quality), laid out as `vidcap-bench run` writes them: results/best/model.pt
    and results/checkpoints/<arch>-<cell>.pt with the index.json entries the demo reads (title and
    compare column from benchmark.checkpoint_index). Built once per session, shared with test_demo_browser."""
    if _BUILT:
        return _BUILT
    import torch

    from vidcap_core.checkpoint import save_checkpoint
    from vidcap_core.data import load_dataset
    from vidcap_core.features.backbones import build_backbone
    from vidcap_core.models import ModelConfig, build_model
    from vidcap_core.synth import generate_synthclips
    from vidcap_core.text import Vocabulary

    synth, results = base / "synth", base / "results"
    generate_synthclips("tiny", synth, seed=0, num_clips=12, workers=1)
    train_captions = [c for r in load_dataset("synth", synth).records if r.split == "train" for c in r.captions]
    vocab = Vocabulary.build(train_captions, min_count=1)
    backbone = build_backbone("random")
    preprocessing = {"backbone": "random", "weights": backbone.weights_id, "feature_dim": backbone.feature_dim,
                     "num_frames": NUM_FRAMES, "frame_size": list(backbone.input_size), "grid": False}
    for seed, label in enumerate(COMPARED):
        arch, cell = label.split("-")
        config = ModelConfig(arch=arch, cell=cell, feature_dim=backbone.feature_dim, vocab_size=len(vocab),
                             embed_size=16, hidden_size=32, attention_size=16, max_tokens=8)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = build_model(config)
        save_checkpoint(results / "checkpoints" / f"{label}.pt", model, vocab.to_dict(), preprocessing)
    write_index(results, COMPARED)
    (results / "best").mkdir(parents=True, exist_ok=True)
    shutil.copy(results / "checkpoints" / "attention-lstm.pt", results / "best" / "model.pt")
    _BUILT.update(synth=synth, results=results)
    return _BUILT


def write_index(results: Path, labels: tuple[str, ...] | list[str]) -> None:
    """results/checkpoints/index.json as the benchmark writes it, for `labels` (descriptive fields only)."""
    from benchmark.checkpoint_index import describe
    from vidcap_core.files import write_json

    write_json(results / "checkpoints" / "index.json",
               {label: {"seed": 0, "file": f"{label}.pt", **describe(label), "data": "SynthClips tiny, 12 clips (seed 0)",
                        "features": f"random, {NUM_FRAMES} frames"} for label in labels})


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory) -> dict[str, Path]:
    return build_demo_results(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="session")
def handlers(demo_data) -> DemoHandlers:
    models = ModelCache(find_checkpoints(demo_data["results"]))
    return DemoHandlers(models, DemoLimits(max_beam=4, max_frames=16), load_examples(demo_data["synth"]))


@pytest.fixture(scope="session")
def clip(demo_data) -> Path:
    return load_examples(demo_data["synth"], count=1).examples[0].path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ----------------------------------------------------------------------------- handlers


def test_find_checkpoints_serves_best_then_each_config(demo_data, tmp_path):
    found = find_checkpoints(demo_data["results"])
    assert list(found) == ["best", "attention-lstm", "s2vt-lstm", "s2vt-rnn"]
    assert found["best"] == demo_data["results"] / "best" / "model.pt"
    assert find_checkpoints(tmp_path) == {}
    with pytest.raises(ConfigError, match="vidcap-bench run"):
        ModelCache({})


def test_caption_video_on_a_synthclips_example(handlers, clip):
    outcome = handlers.caption_video(clip, "attention-lstm", beam=3, frames=0)
    assert isinstance(outcome, Captioned), outcome
    assert outcome.caption == outcome.hypotheses[0][0] and 1 <= len(outcome.hypotheses) <= 3  # cut ones left out
    assert [s for _, s in outcome.hypotheses] == sorted((s for _, s in outcome.hypotheses), reverse=True)
    assert outcome.frames.shape == (NUM_FRAMES, 64, 64, 3) and outcome.frames.dtype == np.uint8
    assert outcome.attention.shape == (len(outcome.words), NUM_FRAMES)
    np.testing.assert_allclose(outcome.attention.sum(axis=1), 1.0, rtol=1e-4)
    assert [w for w, _, _ in outcome.most_attended()] == outcome.words
    assert set(outcome.timings_ms) == {"decode_video", "features", "caption", "total"}
    assert outcome.frame_indices == sorted(outcome.frame_indices) and len(outcome.frame_indices) == NUM_FRAMES
    # the clip is a bundled example: the semantic checker judges the caption against its ground truth
    assert outcome.example is not None and outcome.example.path == clip
    assert set(outcome.verdict) == set(SLOTS)
    answer = json.loads(json.dumps(outcome.to_json(), allow_nan=False))
    assert {"caption", "hypotheses", "attention", "timings_ms"} <= set(answer) and "error" not in answer
    assert answer["references"] == list(outcome.example.references)


def test_frames_and_beam_controls_change_the_run(handlers, clip):
    four = handlers.caption_video(clip, "attention-lstm", beam=1, frames=4)
    assert isinstance(four, Captioned), four
    assert four.frames.shape[0] == 4 and len(four.hypotheses) == 1
    assert four.attention.shape == (len(four.words), 4)
    again = handlers.caption_video(clip, "attention-lstm", beam=1.0, frames="4")  # slider floats, JSON strings
    assert isinstance(again, Captioned) and again.caption == four.caption


def test_s2vt_has_no_heatmap_and_models_load_once(handlers, clip):
    outcome = handlers.caption_video(clip, "s2vt-lstm", beam=2, frames=0)
    assert isinstance(outcome, Captioned) and outcome.attention is None and outcome.most_attended() == []
    assert handlers.models.get("s2vt-lstm") is handlers.models.get("s2vt-lstm")


# ----------------------------------------------------------------------------- one corridor: Captioner.caption


def test_demo_captions_through_the_captioner(handlers, demo_data, clip):
    """The demo adds presentation only: its caption is `Captioner.caption`'s with the READABLE preset's block."""
    from vidcap_core.pipeline import Captioner

    assert handlers.no_repeat_ngram == READABLE.no_repeat_ngram
    outcome = handlers.caption_video(clip, "attention-lstm", beam=3, frames=4)
    captioner = Captioner.from_checkpoint(demo_data["results"] / "checkpoints" / "attention-lstm.pt", device="cpu")
    result = captioner.caption(clip, beam=3, n_best=3, no_repeat_ngram=READABLE.no_repeat_ngram, num_frames=4)
    assert isinstance(outcome, Captioned), outcome
    assert (outcome.caption, outcome.hypotheses, outcome.frame_indices) == (result.caption, result.hypotheses,
                                                                           result.frame_indices)
    np.testing.assert_array_equal(outcome.frames, result.frames)
    np.testing.assert_array_equal(outcome.attention, result.attention)
    assert set(outcome.timings_ms) == {*result.timings_ms, "total"}
    assert outcome.ended == result.ended and outcome.to_json()["ended"] == result.ended


def test_captioner_result_frame_override_and_repetition_block(demo_data, clip):
    from vidcap_core.pipeline import Captioner
    from vidcap_core.video import probe_video, sample_frame_indices

    captioner = Captioner.from_checkpoint(demo_data["results"] / "best" / "model.pt", device="cpu")
    four = captioner.caption(clip, num_frames=4)
    assert four.frames.shape == (4, 64, 64, 3) and four.attention.shape == (len(four.caption.split()), 4)
    assert four.frame_indices == sample_frame_indices(probe_video(clip).frames, 4).tolist()
    assert set(four.timings_ms) == {"decode_video", "features", "caption"}
    answer = json.loads(json.dumps(four.to_dict(), allow_nan=False))
    assert "ood" in answer and answer["frame_indices"] == four.frame_indices  # ood: issue #12's score or null
    assert [h["caption"] for h in answer["hypotheses"]] == [four.caption]
    for n in (1, 2):
        for beam in (1, 3):
            words = captioner.caption(clip, beam=beam, n_best=beam, no_repeat_ngram=n)
            for text, _ in words.hypotheses:
                grams = [tuple(text.split()[i : i + n]) for i in range(len(text.split()) - n + 1)]
                assert len(grams) == len(set(grams)), (n, beam, text)
    for bad in ({"num_frames": 0}, {"no_repeat_ngram": -1}, {"beam": 2, "n_best": 3}):
        with pytest.raises(ConfigError):
            captioner.caption(clip, **bad)


def test_captioner_shows_finished_sentences_only(demo_data, clip):
    """Of the beam's hypotheses, the caption and the listed ones are those that ended before the length
    limit, best first; only when none did is the best cut one the caption, with `ended` False."""
    import torch

    from vidcap_core.decoding import decode
    from vidcap_core.models import EOS_ID
    from vidcap_core.pipeline import Captioner

    seen = set()
    for label in COMPARED:  # untrained, 8 tokens at most: a raised EOS logit ends some hypotheses
        captioner = Captioner.from_checkpoint(demo_data["results"] / "checkpoints" / f"{label}.pt", device="cpu")
        for frames, eos_bias in ((2, 0.0), (4, 2.0), (8, 4.0), (8, 6.0)):
            with torch.no_grad():
                captioner.model.classifier.bias[EOS_ID] += eos_bias
            result = captioner.caption(clip, beam=4, n_best=4, num_frames=frames)
            every = decode(captioner.model, captioner.features(result.frames), beam=4, n_best=4)[0]
            ended = [captioner.vocab.decode(h.tokens) for h in every if h.ended]
            shown = [text for text, _ in result.hypotheses]
            assert shown == (ended or [captioner.vocab.decode(every[0].tokens)])
            assert result.ended == bool(ended) and result.caption == shown[0]
            seen.add(result.ended)
    assert seen == {True, False}  # guards the test: both cases happened


def test_vidcap_caption_no_repeat_ngram_option(demo_data, clip):
    import typer

    from vidcap_core.cli.caption import caption_command
    from vidcap_core.pipeline import Captioner

    app = typer.Typer()
    app.command()(caption_command)
    checkpoint = demo_data["results"] / "checkpoints" / "s2vt-lstm.pt"  # untrained: repeats words unblocked

    def caption_line(*options: str) -> dict:
        result = CliRunner().invoke(app, [str(clip), "--checkpoint", str(checkpoint), "--device", "cpu",
                                          "--format", "json", *options])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    # n = 1 (no word twice): the untrained model's repeats may be single words without a repeated pair
    runaway = caption_line("--beam", "1", "--no-repeat-ngram", "0")
    blocked = caption_line("--beam", "1", "--no-repeat-ngram", "1")
    words = blocked["caption"].split()
    assert len(set(runaway["caption"].split())) < len(runaway["caption"].split())  # guards the test
    assert blocked["caption"] != runaway["caption"] and len(words) == len(set(words))
    captioner = Captioner.from_checkpoint(checkpoint, device="cpu")
    expected = captioner.caption(clip, no_repeat_ngram=1)
    assert blocked["caption"] == expected.caption and blocked["frame_indices"] == expected.frame_indices
    # no options: the READABLE preset (beam 3, no repeated 3-gram), as the demo page decodes
    readable = captioner.caption(clip, beam=READABLE.beam, no_repeat_ngram=READABLE.no_repeat_ngram)
    assert caption_line()["caption"] == readable.caption
    help_text = " ".join(CliRunner().invoke(app, ["--help"]).output.replace("│", " ").split())  # rich's box unwrapped
    assert f"'{READABLE.name}' preset: {READABLE.describe()}" in help_text


def write_video_without_frames(path: Path) -> Path:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=8)
        stream.width, stream.height = 64, 64
        container.start_encoding()  # writes the header; PyAV writes no file without it or a packet
    assert path.is_file()
    return path


@pytest.mark.parametrize("case, expected", [
    ("text renamed to mp4", "notes.mp4"),
    ("text file", "upload a video"),
    ("empty file", "empty.mp4"),
    ("no frames", "frames.mp4"),
    ("missing path", "No video given"),
    ("too large", "MB limit"),
    ("too long", "s limit"),
    ("beam too big", "Beam size 9"),
    ("frames not a number", "whole number"),
    ("unknown model", "Unknown model 'gpt'"),
])
def test_bad_input_becomes_a_friendly_error(handlers, clip, tmp_path, case, expected):
    text = tmp_path / "notes.txt"
    text.write_text("not a video\n")
    renamed = tmp_path / "notes.mp4"
    renamed.write_text("not a video either\n")
    (tmp_path / "empty.mp4").write_bytes(b"")
    strict = DemoHandlers(handlers.models, DemoLimits(max_upload_mb=0.001, max_duration_s=0.5), ExampleSet())
    calls = {
        "text renamed to mp4": lambda: handlers.caption_video(renamed, "best"),
        "text file": lambda: handlers.caption_video(text, "best"),
        "empty file": lambda: handlers.caption_video(tmp_path / "empty.mp4", "best"),
        "no frames": lambda: handlers.caption_video(write_video_without_frames(tmp_path / "frames.mp4"), "best"),
        "missing path": lambda: handlers.caption_video(None, "best"),
        "too large": lambda: strict.caption_video(clip, "best"),
        "too long": lambda: DemoHandlers(handlers.models, DemoLimits(max_duration_s=0.5)).caption_video(clip, "best"),
        "beam too big": lambda: handlers.caption_video(clip, "best", beam=9),
        "frames not a number": lambda: handlers.caption_video(clip, "best", frames="many"),
        "unknown model": lambda: handlers.caption_video(clip, "gpt"),
    }
    outcome = calls[case]()
    assert isinstance(outcome, Failed), outcome
    assert expected in outcome.message
    assert "Traceback" not in outcome.message and str(tmp_path) not in outcome.message  # no server paths
    assert outcome.to_json() == {"error": outcome.message}


def test_corrupted_real_video_is_a_friendly_error(handlers):
    corrupted = SHARED_VIDEOS / "corrupted.mp4"
    if not corrupted.is_file():
        pytest.skip(f"{SHARED_VIDEOS} is absent (shared sample videos exist only next to the project checkout)")
    outcome = handlers.caption_video(corrupted, "best", beam=2)
    assert isinstance(outcome, Failed) and outcome.message.startswith("Cannot read video 'corrupted.mp4'")
    assert str(SHARED_VIDEOS) not in outcome.message


def test_compare_runs_each_model_and_names_missing_ones(handlers, demo_data, clip):
    outcomes = handlers.compare(clip, beam=2, frames=0)
    assert list(outcomes) == list(COMPARED)  # index.json's compare_column order
    assert all(isinstance(o, Captioned) for o in outcomes.values()), outcomes
    assert outcomes["attention-lstm"].attention is not None and outcomes["s2vt-rnn"].attention is None

    only_attention = ModelCache({"attention-lstm": demo_data["results"] / "checkpoints" / "attention-lstm.pt"})
    partial = DemoHandlers(only_attention).compare(clip)
    assert list(partial) == list(COMPARED) and isinstance(partial["attention-lstm"], Captioned)
    for name in ("s2vt-rnn", "s2vt-lstm"):  # listed in index.json, not served
        assert isinstance(partial[name], Failed) and f"checkpoints/{name}.pt is missing" in partial[name].message
    bad = handlers.compare(None)
    assert all(isinstance(o, Failed) and "No video given" in o.message for o in bad.values())


def with_surveyed_checkpoints(demo_data: dict[str, Path], target: Path) -> Path:
    """A copy of the demo's results folder plus two surveyed systems as vidcap-bench's `seeds` suite
    names them, listed in index.json: a real concepts-arch checkpoint (concepts-lstm) and
    attention-lstm-scst (an attention checkpoint, as a fine-tune is: fine-tuning keeps G's architecture)."""
    from dataclasses import replace

    import torch

    from vidcap_core.checkpoint import load_checkpoint, save_checkpoint
    from vidcap_core.models import build_model

    results = target / "results"
    shutil.copytree(demo_data["results"], results)
    checkpoints = results / "checkpoints"
    attention = load_checkpoint(checkpoints / "attention-lstm.pt")
    config = replace(attention.config, arch="concepts", concepts=["colour:red", "shape:circle", "action:spin"],
                     concept_mode="init")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        model = build_model(config)
    save_checkpoint(checkpoints / "concepts-lstm.pt", model, attention.vocab, attention.preprocessing)
    shutil.copy(checkpoints / "attention-lstm.pt", checkpoints / "attention-lstm-scst.pt")
    write_index(results, [*COMPARED, "attention-lstm-scst", "concepts-lstm", "meanpool-gru"])  # meanpool: no column
    return results


def test_compare_view_columns_come_from_the_benchmark_index(demo_data, clip, tmp_path):
    from benchmark.checkpoint_index import COMPARE_COLUMNS, title_of
    from demo.app import build_app, compare_page

    results = with_surveyed_checkpoints(demo_data, tmp_path)
    found = find_checkpoints(results)
    columns = compare_columns(found)
    expected = [label for label in COMPARE_COLUMNS if label in (*COMPARED, "concepts-lstm", "attention-lstm-scst")]
    assert [c.name for c in columns] == expected and all(c.missing is None for c in columns)
    assert [c.title for c in columns] == [title_of(label) for label in expected]
    assert model_card(found["concepts-lstm"])["title"] == "Concepts init (LSTM) [1]"
    handlers = DemoHandlers(ModelCache(found), DemoLimits(max_beam=4, max_frames=16))
    outcomes = handlers.compare(clip, beam=2)
    assert list(outcomes) == expected and all(isinstance(o, Captioned) for o in outcomes.values()), outcomes
    assert outcomes["concepts-lstm"].attention is None and outcomes["attention-lstm-scst"].attention is not None
    assert outcomes["attention-lstm-scst"].caption == outcomes["attention-lstm"].caption  # same weights, same caption
    assert len(compare_page(outcomes)) == 1 + 3 * len(columns)
    bad = handlers.compare(None)
    assert list(bad) == expected and all(isinstance(o, Failed) for o in bad.values())
    app = build_app(results, examples_dir=None, warm_up=False)
    page = json.dumps(app.config)
    for column in columns:
        assert f"### {column.title}" in page
    assert "### Mean pool (GRU)" not in page  # listed without a compare_column: no column
    # without an index (checkpoints from `vidcap train`), every served checkpoint is a column
    plain = {"best": results / "best" / "model.pt", "mine": tmp_path / "runs" / "mine" / "best.pt"}
    plain["mine"].parent.mkdir(parents=True)
    shutil.copy(found["s2vt-rnn"], plain["mine"])
    assert [(c.name, c.title, c.missing) for c in compare_columns(plain)] == [("best", "best", None), ("mine", "mine", None)]


def test_the_demo_knows_no_benchmark_label():
    """Titles and columns come from results/ (index.json, summary.json), not from the demo's code."""
    from benchmark.checkpoint_index import COMPARE_COLUMNS, TITLES

    code = "\n".join(path.read_text() for path in (REPO / "demo").glob("*.py"))
    assert not [label for label in COMPARE_COLUMNS if f'"{label}"' in code or f"'{label}'" in code]
    assert not [title for title in TITLES.values() if title in code]


def test_page_values_from_outcomes(handlers, clip):
    from demo.app import caption_page, compare_page
    from demo.render import COMPARE_HEATMAP_WIDTH_PX, HEATMAP_WIDTH_PX, attention_heatmap, frame_strip

    outcome = handlers.caption_video(clip, "best", beam=2)
    picture = attention_heatmap(outcome)
    assert picture.ndim == 3 and picture.shape[2] == 3 and picture.dtype == np.uint8
    assert picture.shape[1] == HEATMAP_WIDTH_PX  # drawn as wide as it is shown: labels stay readable
    assert attention_heatmap(outcome, COMPARE_HEATMAP_WIDTH_PX).shape[1] == COMPARE_HEATMAP_WIDTH_PX
    strip = frame_strip(outcome)  # every sampled frame, in order, with a short label
    assert len(strip) == NUM_FRAMES and strip[0][0].shape == (64, 64, 3) and strip[0][1].startswith("#0 · ")
    assert [label.split(" ")[0] for _, label in strip] == [f"#{t}" for t in range(NUM_FRAMES)]
    big = handlers.caption_video(clip, "best", beam=1, frames=16)
    assert len(frame_strip(big)) == 16
    values = caption_page(outcome)
    assert len(values) == 9 and values[0] == "" and values[1].startswith(outcome.caption)
    assert values[5]["visible"] is True and "<table" in values[8]  # heatmap and verdict shown
    if len(outcome.hypotheses) > 1:
        assert "<table class='vidcap-table' id='hypotheses'>" in values[3]
    failed = caption_page(handlers.caption_video(None, "best"))
    assert "No video given" in failed[0] and failed[1] == ""
    compared = compare_page(handlers.compare(clip))
    assert len(compared) == 1 + 3 * len(COMPARED)


def test_preview_plays_in_any_browser_and_refuses_what_the_model_cannot_read(handlers, clip, tmp_path):
    """The upload's preview is an H.264 yuv420p mp4 (what every browser plays) of the frames the model
    samples, cropped as it crops them, whatever the upload's codec; a file the model cannot read gets
    the same message as captioning it would, and no preview."""
    import av

    from conftest import write_video

    def codec_of(path: Path) -> tuple[str, str, int, int]:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            return stream.codec_context.name, stream.codec_context.pix_fmt, stream.width, stream.height

    shown = handlers.preview(clip, "best")
    assert isinstance(shown, Preview) and shown.frames == NUM_FRAMES and shown.example is not None
    assert codec_of(shown.path) == ("h264", "yuv420p", 256, 256)
    if "yuv420p10le" in [f.name for f in av.codec.Codec("libx265", "w").video_formats or []]:
        hevc = write_video(tmp_path / "hevc10.mp4", 12, codec="libx265", pix_fmt="yuv420p10le",
                           options={"x265-params": "log-level=error"})
        shown = handlers.preview(hevc, "best", frames=4)
        assert isinstance(shown, Preview) and shown.frames == 4 and shown.example is None
        assert codec_of(shown.path)[:2] == ("h264", "yuv420p")
    renamed = tmp_path / "holiday.mp4"
    renamed.write_text("this is text, not a video")
    refused = handlers.preview(renamed, "best")
    assert isinstance(refused, Failed) and refused.message == handlers.caption_video(renamed, "best").message


def test_importing_the_demo_loads_no_model_code():
    code = ("import sys, demo.cli, demo.handlers, demo.examples, demo.render; "
            "heavy = [m for m in ('torch', 'gradio', 'vidcap_core.pipeline') if m in sys.modules]; "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


# ----------------------------------------------------------------------------- CLI


def test_cli_without_a_checkpoint_says_how_to_make_one(tmp_path):
    from demo.cli import app

    result = CliRunner().invoke(app, ["--results", str(tmp_path / "results")])
    assert result.exit_code == 2
    assert "vidcap-bench run --suite cells" in result.output and "vidcap-demo --checkpoint" in result.output
    result = CliRunner().invoke(app, ["--checkpoint", str(tmp_path / "nope.pt")])
    assert result.exit_code == 2 and "nope.pt does not exist" in result.output


def test_cli_checkpoint_becomes_the_default_model(demo_data, tmp_path):
    from demo.cli import serving_checkpoints

    run_best = demo_data["results"] / "checkpoints" / "s2vt-rnn.pt"
    found, default = serving_checkpoints(demo_data["results"], run_best)
    assert default == "s2vt-rnn" and found == find_checkpoints(demo_data["results"])  # already served: same name
    elsewhere = tmp_path / "runs" / "demo" / "best.pt"
    elsewhere.parent.mkdir(parents=True)
    shutil.copy(run_best, elsewhere)
    found, default = serving_checkpoints(demo_data["results"], elsewhere)
    assert default == "demo" and list(found) == ["demo", "best", "attention-lstm", "s2vt-lstm", "s2vt-rnn"]
    found, default = serving_checkpoints(tmp_path, run_best)
    assert found == {"s2vt-rnn": run_best} and default == "s2vt-rnn"


# ----------------------------------------------------------------------------- gradio_client


@pytest.fixture(scope="module")
def served(demo_data):
    from demo.app import build_app, launch_app

    limits = DemoLimits(max_beam=4, max_frames=16)
    app = build_app(demo_data["results"], demo_data["synth"], limits)
    port = free_port()
    launch_app(app, host="127.0.0.1", port=port, limits=limits, examples_dir=demo_data["synth"],
               prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        app.close()


def test_gradio_client_captions_and_gets_friendly_errors(served, clip, tmp_path):
    from gradio_client import Client, handle_file

    client = Client(served, verbose=False)
    answer = client.predict(handle_file(str(clip)), "best", 2, 0, api_name="/caption")
    assert "error" not in answer, answer
    assert answer["caption"] == answer["hypotheses"][0]["caption"] and 1 <= len(answer["hypotheses"]) <= 2
    assert np.array(answer["attention"]).shape == (len(answer["caption"].split()), NUM_FRAMES)
    assert set(answer["timings_ms"]) == {"decode_video", "features", "caption", "total"}
    assert answer["verdict"] is not None  # the upload's bytes are a bundled example's

    renamed = tmp_path / "holiday.mp4"
    renamed.write_text("this is text, not a video")
    answer = client.predict(handle_file(str(renamed)), "best", 1, 0, api_name="/caption")
    assert set(answer) == {"error"} and "holiday.mp4" in answer["error"]

    corrupted = SHARED_VIDEOS / "corrupted.mp4"
    if corrupted.is_file():
        answer = client.predict(handle_file(str(corrupted)), "best", 1, 0, api_name="/caption")
        assert set(answer) == {"error"} and answer["error"].startswith("Cannot read video 'corrupted.mp4'")
    # the server keeps serving after bad input
    answer = client.predict(handle_file(str(clip)), "s2vt-rnn", 1, 4, api_name="/caption")
    assert answer["caption"] == answer["hypotheses"][0]["caption"] and answer["attention"] is None
    if not corrupted.is_file():
        pytest.skip(f"{SHARED_VIDEOS} is absent: the corrupted.mp4 check did not run")


# ----------------------------------------------------------------------------- issue 12: messages, scope, OOD


def write_audio_only(path: Path) -> Path:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        samples = np.zeros((1, 1024), dtype=np.float32)
        for i in range(8):
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_audio_only_uploads_get_one_message(handlers, tmp_path):
    mp3 = tmp_path / "song.mp3"
    mp3.write_bytes(b"ID3 not really audio")
    sound_in_mp4 = write_audio_only(tmp_path / "voice.mp4")
    messages = [handlers.caption_video(path, "best") for path in (mp3, sound_in_mp4)]
    assert all(isinstance(m, Failed) for m in messages), messages
    assert messages[0].message == "song.mp3 holds sound only; this demo captions what it sees, so it needs a video " \
                                  "track: upload a video file (mp4, avi, mkv, mov, webm)."
    assert messages[1].message == messages[0].message.replace("song.mp3", "voice.mp4")


def test_errors_speak_to_demo_users(handlers, tmp_path):
    renamed = tmp_path / "holiday.mp4"
    renamed.write_text("this is text, not a video")
    outcome = handlers.caption_video(renamed, "best")
    assert isinstance(outcome, Failed) and outcome.message.startswith("Cannot read video 'holiday.mp4'")
    assert outcome.message == ("Cannot read video 'holiday.mp4': FFmpeg cannot open it as a video container: it is "
                               "not a video, or it is truncated or damaged; re-encode it (e.g. `ffmpeg -i in.mp4 "
                               "-c:v libx264 -pix_fmt yuv420p out.mp4`) and upload it again.")
    from conftest import write_video

    whole = write_video(tmp_path / "whole.mp4", 40, container_options={"movflags": "faststart"}).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole[: len(whole) // 2])  # header intact, half the frames missing
    outcome = handlers.caption_video(cut, "best")
    assert isinstance(outcome, Failed) and outcome.message.startswith("Cannot read video 'cut.mp4': it is truncated")
    assert outcome.message.endswith("; upload a complete copy of the file.") and str(tmp_path) not in outcome.message


def test_page_states_what_the_model_knows(handlers, demo_data, tmp_path):
    from demo.render import details_markdown, scope_markdown
    from vidcap_core.pipeline.scope import scope_sentence

    scope = handlers.models.scope("best")
    assert scope.vocabulary and all(not w.startswith("<") for w in scope.vocabulary)
    assert scope.plain == scope_sentence(scope.vocabulary) and "cannot describe real-world video" in scope.plain
    assert scope_markdown(scope).endswith(scope.plain)  # the plain sentence at the top; details in the fold
    text = details_markdown(scope)
    assert "No benchmark card" in text and ", ".join(scope.vocabulary) in text and "vidcap calibrate-ood" in text
    assert "sha256" not in scope_markdown(scope)
    best = tmp_path / "best"
    best.mkdir()
    shutil.copy(demo_data["results"] / "best" / "model.pt", best / "model.pt")
    (best / "summary.json").write_text(json.dumps({"data": "SynthClips tiny, 12 clips (seed 0)", "seed": 0,
                                                   "selection_rule": "the highest val exact", "best_step": 30,
                                                   "steps_done": 40, "convergence": {"reason": "plateau"}}))
    carded = ModelCache({"best": best / "model.pt"}).scope("best")
    assert carded.data_summary == "SynthClips tiny, 12 clips (seed 0)"
    details = details_markdown(carded)
    assert "Trained on SynthClips tiny, 12 clips (seed 0)" in details and "the highest val exact" in details
    assert "step 30 of 40" in details
    indexed = handlers.models.scope("s2vt-rnn")  # results/checkpoints/index.json's entry
    assert indexed.title == "RNN (S2VT)" and indexed.data_summary == "SynthClips tiny, 12 clips (seed 0)"


def calibrated_copy(demo_data, folder: Path, threshold: float) -> dict[str, Path]:
    """results/best/model.pt copied with an OOD calibration fitted on the demo's SynthClips
    features and frames, both thresholds then set to `threshold` (0: every clip is flagged; inf: none)."""
    import dataclasses

    from vidcap_core.checkpoint import load_checkpoint
    from vidcap_core.features.backbones import build_backbone
    from vidcap_core.features.extract import encode_frames
    from vidcap_core.ood import fit_ood, save_ood
    from vidcap_core.ood.frame_statistics import Geometry, summarize_clip
    from vidcap_core.video import probe_video, read_frames

    folder.mkdir(parents=True)
    checkpoint = folder / "model.pt"
    shutil.copy(demo_data["results"] / "best" / "model.pt", checkpoint)
    backbone = build_backbone("random")
    paths = sorted((demo_data["synth"] / "videos").glob("*.mp4"))
    frames = [read_frames(p, NUM_FRAMES, 64) for p in paths]
    clips = [encode_frames(backbone, f, batch_size=NUM_FRAMES, grid=False)[0] for f in frames]
    summaries = [summarize_clip(f, Geometry.of(probe_video(p))) for f, p in zip(frames, paths)]
    calibration = fit_ood(clips[:8], clips[8:], summaries[:8], summaries[8:], load_checkpoint(checkpoint).preprocessing)
    save_ood(dataclasses.replace(calibration, features=dataclasses.replace(calibration.features, threshold=threshold),
                                 frames=dataclasses.replace(calibration.frames, threshold=threshold)), checkpoint)
    return {"best": checkpoint}


def test_ood_flag_reaches_the_answer_and_the_page(demo_data, clip, tmp_path):
    from demo.app import caption_page

    familiar = ModelCache(calibrated_copy(demo_data, tmp_path / "familiar", float("inf")))
    outcome = DemoHandlers(familiar).caption_video(clip, "best")
    assert isinstance(outcome, Captioned) and outcome.ood["flagged"] is False
    assert outcome.to_json()["ood"] == outcome.ood and caption_page(outcome, familiar)[0] == ""

    strange = ModelCache(calibrated_copy(demo_data, tmp_path / "strange", 0.0))
    outcome = DemoHandlers(strange).caption_video(clip, "best")
    assert outcome.ood["flagged"] is True and outcome.ood["score"] > 0
    warning = html.unescape(caption_page(outcome, strange)[0])
    assert "looks unlike the model's training data" in warning and "probably wrong" in warning
    assert strange.scope("best").plain in warning  # what the model can describe, next to the warning
    assert caption_page(outcome, strange)[1].startswith(outcome.caption)  # the caption is still shown, under the warning
    assert DemoHandlers(ModelCache(find_checkpoints(demo_data["results"]))).caption_video(clip, "best").ood is None


def test_vidcap_caption_text_warns_like_the_page(demo_data, clip, tmp_path):
    """`vidcap caption`'s default (text) output carries the out-of-distribution warning, its score,
    why, and what the model can describe, under the caption of a flagged clip, and nothing for a
    familiar one."""
    import typer

    from vidcap_core.cli.caption import caption_command
    from vidcap_core.pipeline import Captioner

    app = typer.Typer()
    app.command()(caption_command)

    def text_of(checkpoint: Path) -> str:
        result = CliRunner().invoke(app, [str(clip), "--checkpoint", str(checkpoint), "--device", "cpu"])
        assert result.exit_code == 0, result.output
        return result.stdout

    strange = calibrated_copy(demo_data, tmp_path / "strange", 0.0)["best"]
    lines = text_of(strange).splitlines()
    assert lines[0].startswith(f"{clip}: ") and lines[-1].startswith("  warning: This video looks unlike the model's")
    captioner = Captioner.from_checkpoint(strange, device="cpu")
    ood = captioner.caption(clip).ood
    assert f"out-of-distribution score {ood['score']:.1f}, above 1.0: " in lines[-1]
    assert "probably wrong" in lines[-1] and lines[-1].endswith(captioner.scope)
    familiar = calibrated_copy(demo_data, tmp_path / "familiar", float("inf"))["best"]
    assert "warning" not in text_of(familiar)


def spawned_children() -> set[int]:
    """Pids of this process's multiprocessing `spawn` children (decoder processes among them)."""
    import psutil

    found = set()
    for child in psutil.Process().children():
        try:
            if child.status() != psutil.STATUS_ZOMBIE and "spawn_main" in " ".join(child.cmdline()):
                found.add(child.pid)
        except psutil.Error:  # ended meanwhile
            continue
    return found


def test_captions_after_idling_past_worker_thread_retirement(demo_data, clip, monkeypatch):
    """Issue 12: requests after the server idled failed with a false 'decoder crashed' error,
    because decoder children died with the Gradio/anyio worker thread that spawned them. Here the
    children are spawned by the first request (no warm-up), worker threads retire after 0.3 s
    instead of 10 s, and the client idles past that before each call."""
    import threading
    import time

    from anyio._backends._asyncio import WorkerThread
    from gradio_client import Client, handle_file

    from demo.app import build_app, launch_app

    monkeypatch.setattr(WorkerThread, "MAX_IDLE_TIME", 0.3)
    limits = DemoLimits(max_beam=4, max_frames=16)
    app = build_app(demo_data["results"], None, limits, warm_up=False)
    port = free_port()
    launch_app(app, port=port, limits=limits, examples_dir=None, prevent_thread_lock=True, quiet=True)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        workers_seen: set[threading.Thread] = set()  # thread objects: idents are reused
        children: list[set[int]] = []
        for _ in range(3):
            # concurrent requests make several worker threads (and spawn both decoder children from them);
            # after the idle, the next request keeps one idle worker and retires the others
            jobs = [client.submit(handle_file(str(clip)), "best", 1, 0, api_name="/caption") for _ in range(3)]
            for answer in (job.result(timeout=300) for job in jobs):
                assert "error" not in answer, answer
                assert answer["caption"] == answer["hypotheses"][0]["caption"]
            workers_seen |= {t for t in threading.enumerate() if t.name == "AnyIO worker thread"}
            children.append(spawned_children())
            time.sleep(1.0)  # idle: past MAX_IDLE_TIME
        assert [t for t in workers_seen if not t.is_alive()], "no worker thread retired: the conditions were not met"
        assert len(children[0]) >= 2 and children[0] == children[-1]  # the same decoder children, never replaced
    finally:
        app.close()
