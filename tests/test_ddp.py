"""torchrun: two CPU ranks (gloo) train to the same weights as one process on the same global batch.

Each rank gets a contiguous half of every global batch and divides its summed NLL by the global
token count, so the all-reduced gradient is the single-process one; dropout is 0 so no RNG stream
differs between ranks. Agreement is to float32 rounding, as amplified by Adam: a parameter whose
gradient is almost zero (the attention biases) moves by about lr * g / sqrt(v), so a 1e-9 difference
in the summation order of g shows up as ~5e-6 after a few steps. Tolerance: absolute 2e-5 (2% of
one Adam step at lr 1e-3) and relative 1e-5 on every weight; the training loss agrees to 1e-5.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from fixtures_datasets import log_rows, toy_config, weights

from vidcap_core.training import train

REPO = Path(__file__).resolve().parents[1]
RTOL, ATOL = 1e-5, 2e-5

RANK_SCRIPT = """
import json, sys
from pathlib import Path
from vidcap_core.training import TrainConfig, train
cfg = TrainConfig.from_dict(json.loads(Path(sys.argv[1]).read_text()))
train(cfg, Path(sys.argv[2]), progress=False)
"""


@pytest.mark.slow
@pytest.mark.timeout(1200)  # ~40 s on an idle 2-core machine; three processes each import torch
@pytest.mark.parametrize("arch", ["attention", "concepts"])  # concepts: + the concept loss, a per-clip batch mean
def test_two_ranks_match_one_process(tmp_path, arch):
    cfg = replace(toy_config(tmp_path / "data"), dropout=0.0, max_steps=6, batch_size=7, probe_every=0,
                  arch=arch, cell="lstm")
    torch.set_num_threads(1)
    train(cfg, tmp_path / "single", progress=False)

    (tmp_path / "cfg.json").write_text(json.dumps(cfg.to_dict()))
    (tmp_path / "rank.py").write_text(RANK_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(tmp_path / "rank.py"), str(tmp_path / "cfg.json"), str(tmp_path / "ddp")]
    done = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=1100)
    assert done.returncode == 0, done.stderr[-3000:]

    one, two = weights(tmp_path / "single" / "last.pt"), weights(tmp_path / "ddp" / "last.pt")
    for name in one:
        torch.testing.assert_close(two[name], one[name], rtol=RTOL, atol=ATOL, msg=name)
    single_log, ddp_log = log_rows(tmp_path / "single"), log_rows(tmp_path / "ddp")
    assert [r["step"] for r in ddp_log] == [3, 6]
    for a, b in zip(single_log, ddp_log):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=RTOL)
        assert b["steps"] == a["steps"]  # the same global batches, not twice as many
    assert (tmp_path / "ddp" / "best.pt").is_file()
