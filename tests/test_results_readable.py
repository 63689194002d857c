"""A tiny `rl-hyper train` result read back with Ray Tune's own readers (ExperimentAnalysis, ResultGrid)
and with TensorBoard's event-file format: what a Ray user expects to work on a results folder."""

from __future__ import annotations

import struct
from collections import defaultdict
from pathlib import Path

import pytest
from ray import tune
from tensorboardX.proto import event_pb2

from rl_hyper.cli import main
from rl_hyper.training.checkpoints import FRAMES_FILE
from rl_hyper.training.run import trial_trainable


@pytest.fixture(scope="module")
def experiment(ray_session, tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("results")
    code = main(["train", "--method", "rnn", "--frames", "960", "--eval-interval", "1", "--output", str(output),
                 "--name", "tiny", "--quiet"])
    assert code == 0
    return output / "tiny"


def read_scalars(event_file: Path) -> dict[str, list[tuple[int, float]]]:
    """tag -> [(step, value)] from a TensorBoard event file (TFRecord framing: length, crc, data, crc)."""
    scalars = defaultdict(list)
    data = event_file.read_bytes()
    offset = 0
    while offset < len(data):
        (length,) = struct.unpack_from("<Q", data, offset)
        event = event_pb2.Event.FromString(data[offset + 12:offset + 12 + length])
        offset += 12 + length + 4
        for value in event.summary.value:
            scalars[value.tag].append((event.step, value.simple_value))
    return dict(scalars)


def test_experiment_analysis_reads_the_results(experiment):
    analysis = tune.ExperimentAnalysis(str(experiment))
    (trial,) = analysis.trials
    assert trial.config["method"] == "rnn" and trial.config["seed"] == 73 and trial.config["frames"] == 960
    last = analysis.dataframe()
    assert last["rl_hyper/frames"].iloc[0] == 960 and last["rl_hyper/method"].iloc[0] == "rnn"
    (history,) = analysis.trial_dataframes.values()
    assert list(history["rl_hyper/frames"]) == [960]
    assert analysis.get_best_config(metric="rl_hyper/eval_trial_return", mode="max")["lr"] == 1e-3


def test_result_grid_restores_metrics_and_checkpoint(experiment):
    grid = tune.Tuner.restore(str(experiment), trainable=trial_trainable).get_results()
    assert len(grid) == 1 and not grid.errors
    result = grid.get_best_result(metric="rl_hyper/eval_trial_return", mode="max")
    assert result.config["method"] == "rnn" and result.metrics["rl_hyper"]["frames"] == 960
    assert Path(result.path).parent == experiment
    assert Path(result.checkpoint.path, FRAMES_FILE).read_text() == "960"
    assert result.metrics_dataframe["rl_hyper/eval_trials"].iloc[-1] == 21


def test_tensorboard_event_file_has_rl_hyper_tags_stepped_by_frames(experiment):
    (event_file,) = experiment.glob("*/events.out.tfevents.*")
    scalars = read_scalars(event_file)
    for name in ("frames", "train_trial_return", "eval_trial_return", "eval_inner_return_1", "policy_loss",
                 "vf_loss", "entropy", "env_steps_per_s", "num_params"):
        assert [step for step, _ in scalars[f"rl_hyper/{name}"]] == [960], name
    assert scalars["rl_hyper/frames"] == [(960, 960.0)]
    assert -6.0 - 1e-4 <= scalars["rl_hyper/eval_trial_return"][0][1] <= 44.3
    assert not [tag for tag in scalars if tag.startswith("ray/tune/rl_hyper/")]  # once, under the readable tag
    assert "rl_hyper/seed" not in scalars and "rl_hyper/lr" not in scalars  # the run's identity, not a curve
    assert any(tag.startswith("ray/tune/env_runners/") for tag in scalars)  # RLlib's own numbers stay
