"""Optional MLflow and Weights & Biases logging switched on in a study YAML (`logging:`).

Neither package is a dependency of rl_hyper (the `tracking` extra installs them), so the tests that
need one skip, saying so, where it is not installed. W&B runs in offline mode (no account, no
network); MLflow writes a local file store, which MLflow 3 allows only with MLFLOW_ALLOW_FILE_STORE.
"""

from __future__ import annotations

import importlib.util
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

HAS = {name: importlib.util.find_spec(name) is not None for name in ("mlflow", "wandb")}
NEEDS = {name: pytest.mark.skipif(not HAS[name], reason=f"{name} is not installed (optional: pip install "
                                  "'rl_hyper[tracking]')") for name in HAS}


def write_study(directory: Path, logging: dict) -> Path:
    study = {"name": "tracked", "env": "GridNavi", "methods": ["rnn"], "lr_grid": [1e-3], "seeds": [1],
             "frames": 960, "evaluation": {"interval": 1, "num_tasks": 4}, "storage": str(directory / "results"),
             "max_failures": 0, "logging": logging}
    path = directory / "tracked.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


@pytest.fixture(scope="module")
def tracked(ray_session, tmp_path_factory) -> Path:
    """One tiny sweep logging to every installed tracker; returns its directory."""
    if not any(HAS.values()):
        pytest.skip("neither mlflow nor wandb is installed (optional: pip install 'rl_hyper[tracking]')")
    directory = tmp_path_factory.mktemp("tracking")
    logging = {}
    if HAS["mlflow"]:
        logging["mlflow"] = {"tracking_uri": f"file:{directory / 'mlruns'}", "tags": {"purpose": "test"}}
    if HAS["wandb"]:
        logging["wandb"] = {"mode": "offline", "dir": str(directory), "group": "tests"}
    env = {**os.environ, "MLFLOW_ALLOW_FILE_STORE": "true"}
    proc = subprocess.run([sys.executable, "-m", "rl_hyper", "sweep", str(write_study(directory, logging)),
                           "--address", ray_session.get_runtime_context().gcs_address],
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return directory


@NEEDS["mlflow"]
def test_mlflow_run_per_trial_with_the_metrics(tracked):
    from mlflow.tracking import MlflowClient

    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    client = MlflowClient(tracking_uri=f"file:{tracked / 'mlruns'}")
    experiment = client.get_experiment_by_name("tracked")  # the study name by default
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.params["method"] == "rnn" and run.data.params["seed"] == "1"
    assert run.data.tags["purpose"] == "test"
    assert [m.value for m in client.get_metric_history(run.info.run_id, "rl_hyper/frames")] == [960.0]
    (evaluation,) = client.get_metric_history(run.info.run_id, "rl_hyper/eval_trial_return")
    assert -6.0 - 1e-4 <= evaluation.value <= 44.3


def wandb_records(path: Path) -> list[bytes]:
    """The records of a W&B run file: a 7-byte header, then LevelDB-log blocks of 32 KiB whose
    chunks (crc u32, length u16, type u8: 1 full, 2 first, 3 middle, 4 last) join into records."""
    data, position, records, pending = path.read_bytes(), 7, [], b""
    while position + 7 <= len(data):
        room = 32768 - position % 32768
        if room < 7:
            position += room
            continue
        _, length, kind = struct.unpack_from("<IHB", data, position)
        if kind == 0:  # zero padding up to the block's end
            position += room
            continue
        pending += data[position + 7:position + 7 + length]
        position += 7 + length
        if kind in (1, 4):
            records.append(pending)
            pending = b""
    return records


@NEEDS["wandb"]
def test_wandb_offline_run_per_trial_with_the_metrics(tracked):
    from wandb.proto import wandb_internal_pb2

    (run_file,) = tracked.glob("wandb/offline-run-*/run-*.wandb")
    history = []
    for data in wandb_records(run_file):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(data)
        if record.WhichOneof("record_type") == "history":
            history.append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                            for item in record.history.item})
    (step,) = history  # one training iteration
    assert step["rl_hyper/frames"] == 960 and -6.0 - 1e-4 <= step["rl_hyper/eval_trial_return"] <= 44.3


def test_missing_tracking_package_is_a_usage_error(tmp_path):
    missing = [name for name, present in HAS.items() if not present]
    if not missing:
        pytest.skip("mlflow and wandb are both installed: no missing package to report")
    study = write_study(tmp_path, {missing[0]: True})
    proc = subprocess.run([sys.executable, "-m", "rl_hyper", "sweep", str(study)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    assert f"logging.{missing[0]} needs the {missing[0]} package" in proc.stderr
    assert not (tmp_path / "results").exists()  # stopped before Ray and before writing anything


def test_logging_section_of_the_study_yaml(tmp_path):
    from rl_hyper.study.spec import StudyError, load_study

    def tracking(logging):
        return load_study(write_study(tmp_path, logging)).logging.tracking()

    assert tracking({}) == {}
    assert tracking({"mlflow": True, "wandb": False}) == {"mlflow": {"tags": {}}}
    assert tracking({"wandb": {"mode": "offline", "project": "p"}}) == {"wandb": {"project": "p", "mode": "offline"}}
    with pytest.raises(StudyError, match="logging.wandb.mode"):
        tracking({"wandb": {"mode": "later"}})
    with pytest.raises(StudyError, match="logging.tensorboard"):
        tracking({"tensorboard": True})  # always on: not a switch
