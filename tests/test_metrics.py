"""Caption metrics: our numbers against pycocoevalcap called directly, sanitising, errors, Java, METEOR guards;
caption diversity on hand-made captions.

The METEOR jar loads a 60 MB paraphrase table when it starts (about a minute of CPU), so the module
shares one Scorer (one METEOR JVM) between its tests; everything else is cheap.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from vidcap_core.errors import ConfigError, EvaluationError, JavaExitedError
from vidcap_core.evaluation import (
    METRICS,
    Scorer,
    check_java,
    corpus_bootstrap,
    sanitize_caption,
    score_captions,
)
from vidcap_core.evaluation.diversity import caption_diversity, distinct_ratio, ngrams
from vidcap_core.evaluation.meteor import STALL_CPU_SHARE, MeteorProcess, _cpu_seconds, _Silence, score_line

REFERENCES = {
    "video0": ["A man is playing a guitar.", "A man plays the guitar on stage.", "Someone is strumming a guitar."],
    "video1": ["A woman is slicing tomatoes in a kitchen.", "A cook cuts vegetables.", "A lady chops a tomato.",
               "Someone is cutting tomatoes with a knife."],
    "video2": ["A dog is running in a park.", "A brown dog runs on the grass.", "A puppy plays outside.",
               "The dog is running around.", "A dog chases a ball in the park."],
    "video3": ["Two men are talking about the news.", "News anchors discuss a story.", "Men talk on a TV show."],
    "video4": ["A car is driving down a road.", "A red car drives on the highway.", "A vehicle moves along a street.",
               "Someone drives a car."],
    "video5": ["A girl is singing a song.", "A young girl sings on stage.", "A child sings into a microphone."],
    "video6": ["People are dancing at a party.", "A group of people dance.", "Friends dance together in a room.",
               "Several people are dancing.", "Dancers move to the music."],
    "video7": ["A cat is playing with a toy.", "A kitten plays with a ball of yarn.", "The cat bats at a toy."],
}
PREDICTIONS = {
    "video0": "a man is playing a guitar",  # near-copy of a reference
    "video1": "A woman is cutting tomatoes in the kitchen.",  # good, different casing and punctuation
    "video2": "a dog runs",  # short
    "video3": "a man is talking",  # partly right
    "video4": "a cat is playing with a toy",  # wrong video's caption
    "video5": "a girl is singing a song on stage into a microphone",  # long
    "video6": "people dancing",
    "video7": "the the the the",  # degenerate repetition
}


@pytest.fixture(scope="module")
def scorer():
    with Scorer() as shared:
        yield shared


def direct_pycocoevalcap(predictions, references, meteor):
    """The coco-caption protocol straight from pycocoevalcap (as its eval.py runs it)."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    tokenizer = PTBTokenizer()
    gts = tokenizer.tokenize({v: [{"caption": c} for c in refs] for v, refs in references.items()})
    res = tokenizer.tokenize({v: [{"caption": predictions[v]}] for v in references})
    corpus, per_video = {}, {}
    bleu, bleu_videos = Bleu(4).compute_score(gts, res, verbose=0)
    for k in range(4):
        corpus[f"Bleu_{k + 1}"], per_video[f"Bleu_{k + 1}"] = bleu[k], bleu_videos[k]
    corpus["METEOR"], per_video["METEOR"] = meteor.compute_score(gts, res)
    corpus["ROUGE_L"], per_video["ROUGE_L"] = Rouge().compute_score(gts, res)
    corpus["CIDEr"], per_video["CIDEr"] = Cider().compute_score(gts, res)
    return corpus, {m: dict(zip(gts, values)) for m, values in per_video.items()}


def test_scores_equal_pycocoevalcap_called_directly(scorer):
    from pycocoevalcap.meteor.meteor import Meteor

    ours = scorer.score(PREDICTIONS, REFERENCES)
    meteor = scorer.meteor().meteor
    assert type(meteor) is Meteor  # the JVM was started by pycocoevalcap's own constructor (jar, flags)
    corpus, per_video = direct_pycocoevalcap(PREDICTIONS, REFERENCES, meteor)

    assert tuple(ours.corpus) == METRICS
    for metric in METRICS:
        assert abs(ours.corpus[metric] - corpus[metric]) < 1e-9, metric
        for video in REFERENCES:
            assert abs(ours.per_video[video][metric] - per_video[metric][video]) < 1e-9, (metric, video)
    assert 0.0 < ours.corpus["CIDEr"] < 10.0 and 0.0 < ours.corpus["METEOR"] < 1.0
    assert ours.spice.startswith("unavailable (jars missing)") or ours.spice.startswith("not computed")


def test_which_corpus_scores_are_means_of_per_video_scores(scorer):
    scores = scorer.score(PREDICTIONS, REFERENCES)

    def mean(metric):
        return float(np.mean([s[metric] for s in scores.per_video.values()]))

    # ROUGE_L and CIDEr: pycocoevalcap averages the per-video scores.
    assert abs(scores.corpus["ROUGE_L"] - mean("ROUGE_L")) < 1e-12
    assert abs(scores.corpus["CIDEr"] - mean("CIDEr")) < 1e-12
    # BLEU pools n-gram counts and lengths; METEOR's jar pools matches/chunks/lengths: not means.
    assert abs(scores.corpus["Bleu_4"] - mean("Bleu_4")) > 1e-3
    assert abs(scores.corpus["METEOR"] - mean("METEOR")) > 1e-4
    # METEOR's corpus score is the jar's aggregate over the per-video statistics.
    process = scorer.meteor()
    tokens = scorer.tokenize({**{("r", v): [sanitize_caption(c) for c in refs] for v, refs in REFERENCES.items()},
                              **{("p", v): [sanitize_caption(PREDICTIONS[v])] for v in REFERENCES}})
    stats = process.stats([tokens[("p", v)][0] for v in REFERENCES], [tokens[("r", v)] for v in REFERENCES])
    corpus, items = process.evaluate(stats)
    assert corpus == scores.corpus["METEOR"]
    assert items == [scores.per_video[v]["METEOR"] for v in REFERENCES]


def test_copied_reference_scores_high_and_unrelated_caption_scores_low(scorer):
    metrics = ("Bleu_4", "CIDEr", "ROUGE_L")
    copied = scorer.score({v: refs[0] for v, refs in REFERENCES.items()}, REFERENCES, metrics=metrics)
    unrelated = scorer.score({v: "zebras juggle quantum xylophones" for v in REFERENCES}, REFERENCES, metrics=metrics)
    assert copied.corpus["Bleu_4"] > 0.99 and copied.corpus["ROUGE_L"] > 0.99 and copied.corpus["CIDEr"] > 2.0
    assert unrelated.corpus["Bleu_4"] < 1e-6 and unrelated.corpus["CIDEr"] == 0.0 and unrelated.corpus["ROUGE_L"] == 0.0
    assert set(copied.corpus) == set(metrics)


def test_empty_and_multiline_predictions_score_without_crashing(scorer):
    references = {f"video{i}": REFERENCES[f"video{i}"] for i in range(6)}
    predictions = {
        "video0": "",
        "video1": "a woman is cutting\ntomatoes\r\nin the kitchen",
        "video2": "   \n\t ",
        "video3": "men ||| talking",
        "video4": "...",
        "video5": "a girl\u2028is singing",
    }
    clean = {**predictions, "video1": "a woman is cutting tomatoes in the kitchen", "video3": "men talking",
             "video5": "a girl is singing"}
    messy, tidy = scorer.score(predictions, references), scorer.score(clean, references)
    for video in ("video0", "video2", "video4"):  # nothing (left) to score: every metric is 0
        assert all(value == 0.0 for value in messy.per_video[video].values()), video
    assert messy.per_video == tidy.per_video
    assert all(math.isfinite(v) for v in messy.corpus.values())
    assert messy.per_video["video1"]["METEOR"] > 0.3


def test_short_lived_score_captions_matches_the_long_lived_scorer(scorer):
    metrics = ("Bleu_1", "Bleu_4", "ROUGE_L", "CIDEr")  # no METEOR: no second JVM start
    short = score_captions(PREDICTIONS, REFERENCES, metrics=metrics, per_video=False)
    long = scorer.score(PREDICTIONS, REFERENCES, metrics=metrics)
    assert short.corpus == long.corpus and short.per_video == {}


def test_corpus_bootstrap_meteor_recomputes_the_jar_aggregate(scorer):
    other = {v: "a person is doing something" for v in REFERENCES}
    result = corpus_bootstrap(other, PREDICTIONS, REFERENCES, "METEOR", n_resamples=30, seed=0, scorer=scorer)
    full = scorer.score(PREDICTIONS, REFERENCES, metrics=("METEOR",)).corpus["METEOR"]
    assert abs(result.mean_b - full) < 1e-12
    assert result.diff > 0 and result.ci_low <= result.diff <= result.ci_high


def test_meteor_timeout_kills_the_process_instead_of_hanging():
    process = MeteorProcess(max_wait_s=0.5)  # the jar needs far longer to load its paraphrase table
    with pytest.raises(EvaluationError, match="gave no answer"):
        process.stats(["a man"], [["a man is playing"]])
    assert not process.alive
    process.close()  # idempotent


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="needs /proc for CPU accounting")
def test_hang_detector_tells_a_stuck_process_from_a_busy_one():
    """The detector's verdicts are checked once what they judge has happened: the idle process is called stuck
    only after `stall_s` of silence, and the busy one is judged when it has visibly used CPU in the window,
    however slowly a crowded machine lets it run."""
    stall_s = 2.0
    idle = subprocess.Popen(["sleep", "600"])  # like a JVM waiting for a line that never comes
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])  # like a JVM loading its tables
    try:
        watches = {p: _Silence(p.pid, stall_s=stall_s, max_wait_s=600.0, answered_before=False) for p in (idle, busy)}
        verdict = poll_until(lambda: watches[idle].hung(), deadline_s=120, what="the idle process to be called stuck")
        assert "stuck" in verdict and time.monotonic() - watches[idle].start >= stall_s

        busy_watch = watches[busy]

        def computed_in_window() -> bool:  # a window the detector will judge, with CPU well above its share
            elapsed = time.monotonic() - busy_watch.window_start
            used = _cpu_seconds(busy.pid) - busy_watch.window_cpu
            return elapsed >= stall_s and used >= 2 * STALL_CPU_SHARE * elapsed + 0.01

        poll_until(computed_in_window, deadline_s=300,
                   what=f"the busy process to use more than {STALL_CPU_SHARE:.0%} of a core for {stall_s:g} s")
        judged_from = busy_watch.window_start
        assert busy_watch.hung() is None
        assert busy_watch.window_start > judged_from  # judged as computing: a new window starts
    finally:
        for process in (idle, busy):
            process.kill()
            process.wait()


def poll_until(condition, deadline_s: float, what: str):
    """condition()'s first truthy value, polled every 20 ms; fails naming `what` after `deadline_s`."""
    deadline = time.monotonic() + deadline_s
    while not (value := condition()):
        assert time.monotonic() < deadline, f"waited {deadline_s:g} s for {what}"
        time.sleep(0.02)
    return value


def test_meteor_jvm_that_cannot_start_raises_with_its_stderr(monkeypatch):
    """The JVM dies on its own, before, during or after the request is written: always the same error."""
    check_java()  # cached: the broken option below only affects the METEOR JVM
    monkeypatch.setenv("JAVA_TOOL_OPTIONS", "-XX:+NoSuchVidcapOption")
    with MeteorProcess() as process:
        with pytest.raises(JavaExitedError) as failure:
            process.stats(["a man"], [["a man is playing"]])
    assert failure.value.exit_code == 1
    assert "Unrecognized VM option 'NoSuchVidcapOption'" in failure.value.stderr
    message = str(failure.value)
    assert message.startswith("METEOR's Java process exited with exit status 1 (stderr: ")
    assert "Could not create the Java Virtual Machine" in message
    assert not process.alive


def kill_jvm(process: MeteorProcess) -> None:
    """SIGKILL the METEOR JVM and wait until it is dead, without reaping it: MeteorProcess must find out itself."""
    os.kill(process._proc.pid, signal.SIGKILL)
    os.waitid(os.P_PID, process._proc.pid, os.WEXITED | os.WNOWAIT)


def kill_jvm_once_written(process: MeteorProcess, monkeypatch, sent_bytes: int) -> None:
    """Make `process` kill its JVM as soon as `sent_bytes` bytes of the request went into its stdin (0: before any)."""
    write, state = process._write, {"sent": 0, "killed": False}

    def kill_once_due() -> None:
        if not state["killed"] and state["sent"] >= sent_bytes:
            state["killed"] = True
            kill_jvm(process)

    def write_then_kill(fd: int, data: bytes) -> int:
        kill_once_due()
        n = write(fd, data)
        state["sent"] += n
        kill_once_due()
        return n

    monkeypatch.setattr(process, "_write", write_then_kill)


def many_score_lines() -> tuple[list[str], list[list[str]]]:
    """A request far larger than a pipe buffer (64 KiB): its write cannot finish before the JVM reads."""
    return ["a man is playing a guitar on a stage"] * 4000, [["a man plays the guitar on a stage"]] * 4000


@pytest.mark.parametrize("moment", ["before the request", "before the first byte", "during the write",
                                    "after the write, before the read"])
def test_meteor_jvm_killed_at_any_moment_raises_one_error_with_its_exit_status(moment, monkeypatch):
    """Each moment is reached deterministically (the JVM is dead before the next step); the error is the same."""
    hypotheses, references = ["a man"], [["a man is playing"]]
    with MeteorProcess() as process:  # the jar takes far longer to load than any of this
        if moment == "before the request":
            kill_jvm(process)
        elif moment == "before the first byte":  # the JVM looked alive to the request, then broke its stdin
            kill_jvm_once_written(process, monkeypatch, sent_bytes=0)
        elif moment == "during the write":
            hypotheses, references = many_score_lines()
            kill_jvm_once_written(process, monkeypatch, sent_bytes=1)  # after the first 64 KiB of > 300 kB
        else:
            request_bytes = len(score_line(hypotheses[0], references[0])) + 1
            kill_jvm_once_written(process, monkeypatch, sent_bytes=request_bytes)
        with pytest.raises(JavaExitedError) as failure:
            process.stats(hypotheses, references)
    assert failure.value.exit_code == -signal.SIGKILL
    assert str(failure.value).startswith("METEOR's Java process exited with exit status -9 (killed by SIGKILL) "
                                         "(stderr: ")
    assert not process.alive


@pytest.mark.parametrize(
    ("predictions", "references", "message"),
    [
        ({}, REFERENCES, "no predictions"),
        (PREDICTIONS, {}, "no references"),
        ({**PREDICTIONS, "video99": "a man"}, REFERENCES, "video99"),
        ({"video0": "a man"}, {"video0": []}, "video0"),
        ({"video0": "a man"}, {"video0": ["", "  \n"]}, "no non-empty reference"),
        ({"video0": "a man"}, {"video0": "a man is playing"}, "one string"),
        ({"video0": None}, REFERENCES, "not strings"),
    ],
)
def test_bad_inputs_raise_evaluation_error_naming_the_problem(predictions, references, message):
    with pytest.raises(EvaluationError, match=message):
        score_captions(predictions, references)


def test_unknown_metric_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="CIDEr"):
        Scorer(metrics=("CIDEr", "SPICE"))


def test_closed_scorer_refuses_work():
    with Scorer(metrics=("CIDEr",)) as closed:
        pass
    with pytest.raises(EvaluationError, match="closed"):
        closed.meteor()


def test_missing_java_raises_with_install_hint(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no `java` anywhere
    with pytest.raises(EvaluationError, match="apt-get install default-jre-headless"):
        check_java()
    with pytest.raises(EvaluationError, match="Java was not found"):
        score_captions(PREDICTIONS, REFERENCES)


def test_check_java_reports_the_version():
    assert "version" in check_java()


def test_sanitize_caption_collapses_line_breaks_and_meteor_separators():
    assert sanitize_caption(" a\nman\r\n||| is\u2028 here\t") == "a man is here"
    assert sanitize_caption("\n\n") == ""


def test_diversity_of_hand_made_captions():
    found = caption_diversity(["A red circle moves left.", "a red circle moves left", "a blue square", "square"])
    # tokens: [a red circle moves left] x2, [a blue square], [square]: 14 words, 7 distinct; 10 bigrams, 6 distinct
    assert (found.captions, found.distinct_captions, found.vocabulary) == (4, 3, 7)
    assert found.distinct_1 == pytest.approx(7 / 14) and found.distinct_2 == pytest.approx(6 / 10)
    assert ngrams(["a", "b", "c"], 2) == [("a", "b"), ("b", "c")] and ngrams(["a"], 2) == []
    assert distinct_ratio([["a", "b"], ["b", "a"]], 2) == 1.0  # n-grams never cross captions
    same = caption_diversity(["a dog runs"] * 5)
    assert (same.distinct_captions, same.vocabulary) == (1, 3) and same.distinct_2 == pytest.approx(2 / 10)
    empty = caption_diversity(["", "one"])
    assert empty.vocabulary == 1 and empty.distinct_1 == 1.0 and math.isnan(empty.distinct_2)
