"""Training runs keyed by their full configuration: skip what is finished, resume what was cut short.

Modules by job: spec.py (RunSpec, FinetuneStage, EvalRequest: what a run is and its key), records.py
(RunRecord, EvalRecord), store.py (RunStore: the cache folder of runs, training one, cached evaluations),
progress.py (ProgressDisplay), executor.py (Executor: trains what a suite needs, --jobs at a time),
ray_executor.py (RayExecutor: the same runs as Ray tasks, `--executor ray`; imported only then: Ray is optional).

Layout of `<cache>/runs/<key>/`:
  spec.json        what the key hashes (train config without paths, data + feature identity, the numerics
                   versions of the stages a run uses, torch minor version, device kind, thread count) and,
                   for information only, the commit that trained it
  train/           the RUN_DIR given to `vidcap_core.training.train` (resumes from its last.pt), with its
                   TensorBoard event files (`tensorboard --logdir <cache>/runs` shows every run)
  result.json      written last, atomically: the run is finished once it exists; "result" is the run's
                   RUN_DIR/summary.json (steps, stop reason, best validation, convergence verdict)
  evals/<name>.json  one `evaluate_run` report (with per-video scores) per split / beam / frame order,
                   recomputed when the numerics versions of decoding or evaluation it records are not current

A fine-tune stage (SCST, LSTM-GAN: `FinetuneStage`) is a run like any other whose spec names its
parent run: the parent's key is part of the child's key, the parent is trained first (or taken from
the cache), and the child runs `training.finetune.finetune` from the parent's best.pt into its
own `train/` (resumed from its last.pt). A parent that did not converge is still fine-tuned; the
child's result.json records the parent's key, label and convergence ("parent"), and its suite rows
show it (`parent_converged`).
"""

from benchmark.runner.executor import Executor, train_in_worker, training_waves
from benchmark.runner.progress import ProgressDisplay, format_duration
from benchmark.runner.records import EvalRecord, RunRecord
from benchmark.runner.spec import NOT_IN_KEY, EvalRequest, FinetuneStage, RunSpec
from benchmark.runner.store import RunStore, count_pending, per_video_semantic, run_summary, unstarted_summary

__all__ = [
    "NOT_IN_KEY", "EvalRecord", "EvalRequest", "Executor", "FinetuneStage", "ProgressDisplay", "RunRecord", "RunSpec",
    "RunStore", "count_pending", "format_duration", "per_video_semantic", "run_summary", "train_in_worker",
    "training_waves", "unstarted_summary",
]
