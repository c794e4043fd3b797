"""Resumable runs: a training killed with SIGKILL mid-epoch goes on from OUTPUT/checkpoint/ with
``graphie train ... --resume`` and ends exactly where an uninterrupted run ends."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from graphie.cli import main
from graphie.training.trainer import CHECKPOINT_DIR, find_checkpoint
from test_training import write_fixture_files

ROOT = Path(__file__).resolve().parent.parent

# Killed at the 10th optimiser step: a real SIGKILL from inside, so the moment is the same on any machine.
KILLED_RUN = """
import os, signal, sys
from torch.optim.optimizer import register_optimizer_step_post_hook
from graphie.cli import main

steps = 0


def kill_at_step(optimizer, args, kwargs):
    global steps
    steps += 1
    if steps == {kill_at}:
        os.kill(os.getpid(), signal.SIGKILL)


register_optimizer_step_post_hook(kill_at_step)
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    """21 posts in batches of 4: 6 steps an epoch, 2 epochs; a checkpoint every 4 steps and at the epoch's end."""
    root = tmp_path_factory.mktemp("resume")
    data, captions = write_fixture_files(root)  # captions as context (image_context): context dropout draws numbers
    config = {
        "data": {"format": "jmere_from_mnre", "train": str(data), "dev": str(data), "captions": str(captions),
                 "image_context": True},
        "model": {"task": "jmere", "max_length": 24, "gnn_layers": 1, "grid_dim": 32, "pair_dim": 8,
                  "entity_pos_weight": 3.0, "none_weight": 0.3},
        "training": {"epochs": 2, "batch_size": 4, "head_lr": 3e-3, "lr": 1e-4, "warmup": 0.2, "patience": 5,
                     "freeze_encoder_layers": 4, "num_threads": 1, "max_dev": 8, "context_dropout": 0.3,
                     "checkpoint_every_steps": 4},
    }
    path = root / "tiny.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return root, path


def test_a_killed_run_resumes_to_the_same_weights_and_metrics(tiny_config, capsys):
    root, config = tiny_config
    reference, resumed = root / "reference", root / "resumed"
    assert main(["train", str(config), "--output", str(reference), "--no-progress"]) == 0
    assert not (reference / CHECKPOINT_DIR).exists()  # a finished run leaves its model, not its checkpoint

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", KILLED_RUN.format(kill_at=10), "train", str(config),
                           "--output", str(resumed), "--no-progress"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    assert not (resumed / "metrics.json").exists()
    state = json.loads((resumed / CHECKPOINT_DIR / "state.json").read_text())
    assert (state["epoch"], state["position"], state["step"]) == (1, 2, 8)  # epoch 2, after its 2nd batch

    # The same command with another config is refused, in one line, before any work.
    capsys.readouterr()
    assert main(["train", str(config), "--output", str(resumed), "--resume", "--seed", "7"]) == 2
    err = capsys.readouterr().err.strip()
    assert "another config" in err and "training.seed" in err and len(err.splitlines()) == 1

    # A checkpoint written before graphie had an option (here the fusion's) resumes after the
    # upgrade: the option takes its default, which is what the run computed with.
    state_file = resumed / CHECKPOINT_DIR / "state.json"
    state = json.loads(state_file.read_text())
    for name in ("fusion", "fusion_options", "fusion_sources"):
        del state["config"]["model"][name]
    state_file.write_text(json.dumps(state))

    assert main(["train", str(config), "--output", str(resumed), "--resume", "--no-progress"]) == 0
    assert "resumed from" in (resumed / "train.log").read_text()
    assert not (resumed / CHECKPOINT_DIR).exists()

    a = json.loads((reference / "metrics.json").read_text())
    b = json.loads((resumed / "metrics.json").read_text())
    assert (b["steps"], b["best_epoch"], len(b["history"])) == (a["steps"], a["best_epoch"], 2)
    assert a["steps"] == 12
    for ea, eb in zip(a["history"], b["history"]):
        assert eb["loss"] == pytest.approx(ea["loss"], rel=1e-5, abs=1e-7)
        assert eb["lr_end"] == pytest.approx(ea["lr_end"])
        for k in ("steps", "f1", "precision", "recall", "entity_f1", "n_pred", "tp"):
            assert eb[k] == ea[k], k
    assert b["dev"] == a["dev"]
    wa, wb = load_file(str(reference / "model.safetensors")), load_file(str(resumed / "model.safetensors"))
    assert wa.keys() == wb.keys()
    for k in wa:
        assert (wa[k] - wb[k]).abs().max().item() <= 1e-5, k


def test_resume_without_a_checkpoint_is_a_one_line_error(tiny_config, tmp_path, capsys):
    _, config = tiny_config
    capsys.readouterr()
    assert main(["train", str(config), "--output", str(tmp_path / "fresh"), "--resume"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("graphie train: error:") and "no checkpoint to resume from" in err
    assert len(err.splitlines()) == 1
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / "metrics.json").write_text("{}")
    assert main(["train", str(config), "--output", str(tmp_path / "done"), "--resume"]) == 2
    assert "has finished" in capsys.readouterr().err


def test_find_checkpoint_takes_only_a_complete_folder(tmp_path):
    assert find_checkpoint(tmp_path) is None
    (tmp_path / ".checkpoint.tmp").mkdir()  # killed while writing: never used
    (tmp_path / ".checkpoint.tmp" / "model.safetensors").write_bytes(b"")
    assert find_checkpoint(tmp_path) is None
    old = tmp_path / ".checkpoint.old"  # killed between the two renames: the previous one is whole
    old.mkdir()
    (old / "state.json").write_text("{}")
    assert find_checkpoint(tmp_path) == old
    new = tmp_path / CHECKPOINT_DIR
    new.mkdir()
    assert find_checkpoint(tmp_path) == old  # no state.json yet
    (new / "state.json").write_text("{}")
    assert find_checkpoint(tmp_path) == new
