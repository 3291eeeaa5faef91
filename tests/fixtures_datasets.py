"""Tiny copies of each dataset's on-disk format, quirks included, for the loader tests; and the toy
captioning dataset (csv + cached features) with its training config, for the training, pipeline,
DDP and end-to-end tests.

Video files are empty placeholders where only their existence matters (MSR-VTT, MSVD, CSV
layouts); the SynthClips-style fixture writes tiny real MPEG-4 clips with PyAV. Test files import
their shared helpers from here, never from another test file.
"""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import av
import numpy as np

if TYPE_CHECKING:  # torch and the training package load only for the tests that train
    import torch

    from vidcap_core.training import TrainConfig

MSRVTT_INFO = {
    "contributor": "Microsoft MSM group",
    "data_created": "2016-04-14 14:30:20",
    "version": "1.0",
    "description": "This is 1.0 version of the 2016 MSR-VTT dataset.",
    "year": "2016",
}


def msrvtt_video(index: int, split: str) -> dict:
    return {
        "category": index % 20,
        "url": f"https://www.youtube.com/watch?v=clip{index:04d}",
        "video_id": f"video{index}",
        "start time": 10.0 + index,
        "end time": 20.5 + index,
        "split": split,
        "id": index,
    }


# video0-4 train, video5-6 validate, video7 train without any sentence; video8-9 test.
TRAIN_VAL_SENTENCES = [
    ("video0", "a man is singing on stage"),
    ("video0", "a man is singing on stage"),  # duplicated caption, different sen_id: kept
    ("video0", "  a man sings into a microphone  "),  # whitespace stripped
    ("video1", "a woman plays the café piano"),  # unicode
    ("video1", ""),  # empty: dropped
    ("video2", "a cartoon cat chases a mouse"),
    ("video3", "someone is cooking pasta"),
    ("video4", "two dogs run, jump and play"),
    ("video5", "a news anchor talks about the weather"),
    ("video6", "people are dancing at a party"),
    ("video6", "   "),  # whitespace only: dropped
    ("video999", "a clip listed in no videos entry"),  # orphan: dropped and noted
]
TEST_SENTENCES = [("video8", "a car drives down a road"), ("video9", "a girl is riding a horse")]


def write_msrvtt_release(root: Path, with_2017: bool = False) -> Path:
    """The 2016 release layout: train_val + test JSON (the test file has no sentences),
    videos in TrainValVideo/ and TestVideo/; video3 and video9 have no file."""
    root.mkdir(parents=True, exist_ok=True)
    videos = [msrvtt_video(i, "train") for i in range(5)] + [msrvtt_video(5, "validate"), msrvtt_video(6, "validate")]
    videos.append(msrvtt_video(7, "train"))
    sentences = [{"caption": c, "video_id": v, "sen_id": i} for i, (v, c) in enumerate(TRAIN_VAL_SENTENCES)]
    write_json(root / "train_val_videodatainfo.json", {"info": MSRVTT_INFO, "videos": videos, "sentences": sentences})
    test_videos = [msrvtt_video(8, "test"), msrvtt_video(9, "test")]
    write_json(root / "test_videodatainfo.json", {"info": MSRVTT_INFO, "videos": test_videos})  # no "sentences"
    for i in (0, 1, 2, 4, 5, 6, 7):
        touch(root / "TrainValVideo" / f"video{i}.mp4")
    touch(root / "TestVideo" / "video8.mp4")
    if with_2017:
        # The 2017 file repeats the 2016 clips and sentences (same sen_id) and adds the test captions.
        offset = len(sentences)
        test_sentences = [{"caption": c, "video_id": v, "sen_id": offset + i} for i, (v, c) in enumerate(TEST_SENTENCES)]
        write_json(root / "videodatainfo_2017.json",
                   {"info": MSRVTT_INFO, "videos": videos + test_videos, "sentences": sentences + test_sentences})
    return root


def write_synth_like(root: Path, num_clips: int = 6) -> Path:
    """SynthClips' layout (videodatainfo.json + videos/video<i>.mp4) with real 4-frame clips."""
    root.mkdir(parents=True, exist_ok=True)
    splits = ["train", "train", "train", "validate", "test", "test"]
    videos = [msrvtt_video(i, splits[i % len(splits)]) for i in range(num_clips)]
    sentences = [{"caption": f"a red square moves {d} number {i}", "video_id": f"video{i}", "sen_id": 2 * i + k}
                 for i in range(num_clips) for k, d in enumerate(("left", "right"))]
    write_json(root / "videodatainfo.json", {"info": {"description": "SynthClips"}, "videos": videos, "sentences": sentences})
    for i in range(num_clips):
        write_tiny_video(root / "videos" / f"video{i}.mp4", shade=40 * i)
    return root


MSVD_HEADER = ["VideoID", "Start", "End", "WorkerID", "Source", "AnnotationTime", "Language", "Description"]
# Keys in youtube_mapping.txt order. The sorted order differs, so the split tells which was used.
MSVD_MAPPING_ORDER = [
    "zzLastAlpha_1_9", "-4wsuPCjDBc_5_15", "mv89psg6zh4_33_46", "bQJQGoJF7_k_162_169", "noEnglish_0_4",
    "Ffv7hEWL4ck_0_10", "abcDEF12345_12_20", "emptyOnly_3_8", "qvg9eM4Hmzk_4_10", "UgUFP5baQ9Y_0_7",
    "WTf5EgVY5uU_124_128", "nestedClip_7_11", "missingFile_2_6", "J---aiyznGQ_0_6",
]


def msvd_rows() -> list[list[str]]:
    """Corpus rows: quoted commas and quotes, other languages, unicode, duplicates, empty and nan."""
    rows = [
        ["-4wsuPCjDBc", "5", "15", "1", "clean", "19", "English", "A squirrel is eating a peanut in it's shell."],
        ["-4wsuPCjDBc", "5", "15", "2", "clean", "11", "English", "A squirrel, sitting on a rock, eats."],
        ["-4wsuPCjDBc", "5", "15", "3", "clean", "9", "French", "Un écureuil mange une cacahuète."],
        ["mv89psg6zh4", "33", "46", "4", "clean", "21", "English", 'A bird says "tweet, tweet" in a sink.'],
        ["mv89psg6zh4", "33", "46", "5", "unverified", "15", "English", "A bird is bathing."],
        ["mv89psg6zh4", "33", "46", "6", "unverified", "15", "English", "A bird is bathing."],  # duplicate: kept
        ["mv89psg6zh4", "33", "46", "7", "clean", "14", "Hindi", "एक चिड़िया नहा रही है"],
        ["bQJQGoJF7_k", "162", "169", "8", "clean", "30", "English", "A man eats crème brûlée."],
        ["bQJQGoJF7_k", "162", "169", "9", "clean", "30", "English", ""],  # empty: dropped
        ["noEnglish", "0", "4", "10", "clean", "12", "Chinese", "一个男人在弹吉他"],  # no English: no record
        ["noEnglish", "0", "4", "11", "clean", "12", "German", "Ein Mann spielt Gitarre, laut."],
        ["Ffv7hEWL4ck", "0", "10", "12", "clean", "10", "English", "A woman slices an onion."],
        ["abcDEF12345", "12", "20", "13", "clean", "10", "English", "Two kids play soccer."],
        ["emptyOnly", "3", "8", "14", "clean", "10", "English", ""],  # only empty/nan: no record
        ["emptyOnly", "3", "8", "15", "clean", "10", "English", "nan"],
        ["qvg9eM4Hmzk", "4", "10", "16", "clean", "10", "English", "A cat plays with a ball of yarn."],
        ["UgUFP5baQ9Y", "0", "7", "17", "clean", "10", "English", "A man rides a bike."],
        ["WTf5EgVY5uU", "124", "128", "18", "clean", "10", "English", "A dog swims in a pool."],
        ["nestedClip", "7", "11", "19", "clean", "10", "English", "A baby laughs."],
        ["missingFile", "2", "6", "20", "clean", "10", "English", "A plane takes off."],
        ["J---aiyznGQ", "0", "6", "21", "clean", "10", "English", "A panda eats bamboo."],
        ["zzLastAlpha", "1", "9", "22", "clean", "10", "English", "A train passes by."],
    ]
    return rows


MSVD_CAPTIONED = sorted({f"{r[0]}_{r[1]}_{r[2]}" for r in msvd_rows()} - {"noEnglish_0_4", "emptyOnly_3_8"})


def write_msvd(root: Path, csv_name: str = "MSR Video Description Corpus.csv", with_mapping: bool = True) -> Path:
    """The corpus CSV, YouTubeClips/<key>.avi (nestedClip under other/clips/, missingFile absent),
    and youtube_mapping.txt listing the clips in MSVD_MAPPING_ORDER (written shuffled)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / csv_name, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)  # QUOTE_MINIMAL: descriptions with commas or quotes are quoted
        writer.writerow(MSVD_HEADER)
        writer.writerows(msvd_rows())
    for key in MSVD_CAPTIONED:
        if key == "missingFile_2_6":
            continue
        folder = root / "other" / "clips" if key == "nestedClip_7_11" else root / "YouTubeClips"
        touch(folder / f"{key}.avi")
    if with_mapping:
        lines = [f"{key} vid{i}" for i, key in enumerate(MSVD_MAPPING_ORDER, start=1)]
        lines = lines[1::2] + lines[0::2]  # file order is not vid order
        (root / "youtube_mapping.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def write_msvd_txt(path: Path) -> Path:
    """UT Austin's AllVideoDescriptions.txt: comment header, `<clip> <description>` lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        "# The Microsoft Research Video Description Corpus",
        "# English descriptions only; one per line: <clip_id> <description>",
        "",
        "-4wsuPCjDBc_5_15 a squirrel is eating a peanut in it's shell",
        "-4wsuPCjDBc_5_15 a squirrel, sitting on a rock, eats",
        "mv89psg6zh4_33_46\ta bird is bathing in a sink",
        "mv89psg6zh4_33_46 a bird is bathing in a sink",
        "bQJQGoJF7_k_162_169 a man eats crème brûlée",
        "Ffv7hEWL4ck_0_10",  # no description: dropped
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")


def touch(path: Path) -> Path:
    """An empty placeholder video: the loaders only check that the file exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    return path


def write_tiny_video(path: Path, shade: int = 0, frames: int = 4, size: int = 32) -> Path:
    """A real MPEG-4 clip of `frames` flat grey frames."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=8)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((size, size, 3), (shade + 10 * i) % 256, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


# ----------------------------------------------------------------------------- toy captioning dataset

SHAPES = ("circle", "square", "triangle")
COLOURS = ("red", "green", "blue")
MOTIONS = ("left", "right")
TOY_FRAMES = 6
TOY_DIM = 16


def write_toy_dataset(folder: Path, n_train: int = 24, n_val: int = 6, n_test: int = 6, seed: int = 0) -> tuple[Path, Path]:
    """A csv dataset (no video files needed) and a matching feature cache of learnable features.

    Clip i shows a coloured shape moving left or right; its features put the shape and colour in
    one-hot slots and the motion in a ramp over time, so frame order matters. Returns
    (annotations csv, features folder).
    """
    rng = np.random.default_rng(seed)
    features = folder / "features"
    features.mkdir(parents=True, exist_ok=True)
    rows = []
    splits = ["train"] * n_train + ["val"] * n_val + ["test"] * n_test
    for i, split in enumerate(splits):
        shape, colour, motion = SHAPES[i % 3], COLOURS[(i // 3) % 3], MOTIONS[(i // 9) % 2]
        video_id = f"clip{i}"
        rows += [
            {"video": f"{video_id}.mp4", "caption": f"a {colour} {shape} moves {motion}", "split": split},
            {"video": f"{video_id}.mp4", "caption": f"the {shape} is {colour} and goes {motion}", "split": split},
        ]
        feats = 0.1 * rng.standard_normal((TOY_FRAMES, TOY_DIM))  # (T, F)
        feats[:, SHAPES.index(shape)] += 1.0
        feats[:, 3 + COLOURS.index(colour)] += 1.0
        ramp = np.linspace(-1.0, 1.0, TOY_FRAMES) * (1 if motion == "right" else -1)
        feats[:, 6] += ramp
        np.save(features / f"{video_id}.npy", feats.astype(np.float16))
    meta = {"backbone": "random", "weights": "random-init seed 0", "feature_dim": TOY_DIM, "grid_dim": TOY_DIM,
            "num_frames": TOY_FRAMES, "frame_size": [32, 32], "grid": False, "grid_size": [2, 2],
            "dtype": "float16", "version": 1}
    (features / "features.json").write_text(json.dumps(meta))
    annotations = folder / "captions.csv"
    with open(annotations, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["video", "caption", "split"])
        writer.writeheader()
        writer.writerows(rows)
    return annotations, features


def toy_config(folder: Path, **changes) -> TrainConfig:
    """A small, fast TrainConfig over `write_toy_dataset(folder)`; `changes` override its fields."""
    from vidcap_core.training import TrainConfig

    annotations, features = write_toy_dataset(folder)
    base = TrainConfig(dataset="csv", root=str(folder), annotations=str(annotations), features=str(features),
                       arch="s2vt", cell="gru", embed_size=16, hidden_size=24, attention_size=8, dropout=0.2,
                       max_steps=6, val_every_steps=3, warmup_steps=2, batch_size=8, lr=5e-3, grad_clip=1.0,
                       min_count=1, max_caption_words=8, plateau_patience=None, seed=3, probe_every=1, probe_batch=4,
                       torch_threads=1)
    return replace(base, **changes)


def weights(path: Path) -> dict[str, torch.Tensor]:
    """The model state_dict of a checkpoint file."""
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def log_rows(run: Path, drop_time: bool = True) -> list[dict]:
    """The rows of a run's log.jsonl, without their wall-clock timings (`seconds`, `train_seconds`,
    `val_seconds`) unless drop_time=False."""
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if not (drop_time and k.endswith("seconds"))} for r in rows]


# ----------------------------------------------------------------------------- a calibrated captioner


def build_calibrated_checkpoint(base: Path, num_frames: int = 8, num_clips: int = 12) -> tuple[Path, Path]:
    """SynthClips tiny (`num_clips` clips) in `base/synth` and `base/model.pt`: an untrained attention-LSTM
    over `random`-backbone features (the OOD flag does not depend on caption quality), with the OOD
    calibration `vidcap train` would write, fitted on the train and val clips' features as the
    Captioner itself reads and encodes them, and on their decoded frames' statistics. Returns
    (SynthClips folder, checkpoint)."""
    import torch

    from vidcap_core.checkpoint import load_checkpoint, save_checkpoint
    from vidcap_core.data import load_dataset
    from vidcap_core.features.backbones import build_backbone
    from vidcap_core.ood import SplitVideos, decode_calibration_videos, fit_ood, save_ood
    from vidcap_core.models import ModelConfig, build_model
    from vidcap_core.pipeline import Captioner
    from vidcap_core.synth import generate_synthclips
    from vidcap_core.text import Vocabulary

    synth, checkpoint = base / "synth", base / "model.pt"
    generate_synthclips("tiny", synth, seed=0, num_clips=num_clips, workers=1)
    records = load_dataset("synth", synth).records
    vocab = Vocabulary.build([c for r in records if r.split == "train" for c in r.captions], min_count=1)
    backbone = build_backbone("random")
    preprocessing = {"backbone": "random", "weights": backbone.weights_id, "feature_dim": backbone.feature_dim,
                     "num_frames": num_frames, "frame_size": list(backbone.input_size), "grid": False}
    config = ModelConfig(arch="attention", cell="lstm", feature_dim=backbone.feature_dim, vocab_size=len(vocab),
                         embed_size=16, hidden_size=32, attention_size=16, max_tokens=8)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_model(config)
    save_checkpoint(checkpoint, model, vocab.to_dict(), preprocessing)
    captioner = Captioner.from_checkpoint(checkpoint, device="cpu")

    def clip_features(split: str) -> list[np.ndarray]:
        return [captioner.features(captioner.read(r.path))[0].cpu().numpy() for r in records if r.split == split]  # (T, F) each

    videos = SplitVideos(*[[r.path for r in records if r.split == split] for split in ("train", "val")])
    train, val = decode_calibration_videos(videos, preprocessing)
    save_ood(fit_ood(clip_features("train"), clip_features("val"), train.summaries, val.summaries,
                     load_checkpoint(checkpoint).preprocessing), checkpoint)
    return synth, checkpoint
