"""Submit a study to a running Ray cluster as a Ray job (`rl-hyper submit FILE --address URL`).

The job's entrypoint is `rl-hyper sweep FILE [--storage URI]`, run on the head node. The current
directory (the project root) is uploaded as the job's working directory, so the study file and
any local code changes travel with the job; the cluster image already holds the pinned
dependencies, so nothing is pip-installed per job. Bulky or private directories are excluded.

    job_id = submit("tune_configs/quickstart.yaml", "http://HEAD:8265", storage="s3://bucket/rl")

The same submission by hand (what `build_submit_command` returns):

    ray job submit --address http://HEAD:8265 --working-dir . \
        --runtime-env-json '{"excludes": [...], "env_vars": {"OMP_NUM_THREADS": "1"}}' \
        -- rl-hyper sweep tune_configs/quickstart.yaml --storage s3://bucket/rl

Authentication: Ray 2.60 clusters run with token authentication. The client reads the token
from RAY_AUTH_TOKEN, the file named by RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token, with
RAY_AUTH_MODE=token set; the token itself is never put into the job's runtime env.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Any, Sequence

from rl_hyper.training.ray_setup import THREAD_ENV

# Never uploaded with the job: environments, outputs, VCS data, caches.
WORKING_DIR_EXCLUDES = (
    ".venv",
    "results",
    ".git",
    "__pycache__",
    "*.egg-info",
    "build",
    "dist",
    ".pytest_cache",
    "benchmarks/output",
    "MUJOCO_LOG.TXT",
)
AUTH_MODE_ENV_VAR = "RAY_AUTH_MODE"


def job_runtime_env(working_dir: str | None = None) -> dict[str, Any]:
    """The job's runtime env: one torch/OpenMP thread per process, uploads kept small.

    RAY_AUTH_MODE is passed through when the submitting shell sets it (the job driver then
    talks to the cluster in the same mode); the token is not.
    """
    env_vars = dict(THREAD_ENV)
    if os.environ.get(AUTH_MODE_ENV_VAR):
        env_vars[AUTH_MODE_ENV_VAR] = os.environ[AUTH_MODE_ENV_VAR]
    runtime_env: dict[str, Any] = {"excludes": list(WORKING_DIR_EXCLUDES), "env_vars": env_vars}
    if working_dir is not None:
        runtime_env["working_dir"] = working_dir
    return runtime_env


def _relative_study_path(study_file: str | os.PathLike, working_dir: Path) -> str:
    """The study file's path inside the uploaded working directory (posix, relative)."""
    path = Path(study_file)
    absolute = path if path.is_absolute() else working_dir / path
    try:
        return absolute.resolve().relative_to(working_dir.resolve()).as_posix()
    except ValueError:
        raise ValueError(
            f"{study_file} is outside the working directory {working_dir}, which is all that is "
            "uploaded with the job; run from the project root or copy the study file into it"
        ) from None


def build_entrypoint(
    study_file: str | os.PathLike, storage: str | None = None, extra_args: Sequence[str] = ()
) -> list[str]:
    """`rl-hyper sweep FILE [--storage URI] [extra args...]`, FILE relative to the current dir."""
    command = ["rl-hyper", "sweep", _relative_study_path(study_file, Path.cwd())]
    if storage:
        command += ["--storage", storage]
    return command + list(extra_args)


def build_submit_command(
    study_file: str | os.PathLike,
    address: str,
    storage: str | None = None,
    extra_args: Sequence[str] = (),
) -> list[str]:
    """The `ray job submit ...` command line (argv list) that submits the study from the cwd."""
    runtime_env = json.dumps(job_runtime_env(), sort_keys=True)
    return [
        "ray", "job", "submit",
        "--address", address,
        "--working-dir", ".",
        "--runtime-env-json", runtime_env,
        "--",
        *build_entrypoint(study_file, storage, extra_args),
    ]  # fmt: skip


def follow_commands(job_id: str, address: str) -> dict[str, str]:
    """Shell commands to follow the job's logs and to stop it."""
    return {
        "logs": shlex.join(["ray", "job", "logs", "--follow", job_id, "--address", address]),
        "stop": shlex.join(["ray", "job", "stop", job_id, "--address", address]),
    }


def submit(
    study_file: str | os.PathLike,
    address: str,
    storage: str | None = None,
    extra_args: Sequence[str] = (),
) -> str:
    """Validate the study, submit it as a Ray job, print how to follow it; returns the job id.

    Raises StudyError (from rl_hyper.study.spec) before contacting the cluster if the file is
    invalid, and ValueError if it lies outside the current directory.
    """
    from ray.job_submission import JobSubmissionClient

    from rl_hyper.study.spec import load_study

    study = load_study(study_file)
    entrypoint = shlex.join(build_entrypoint(study_file, storage, extra_args))
    if storage is None and "://" not in study.storage:
        print(
            f"note: results go to {study.storage!r} on the head node; on a multi-node cluster "
            "pass --storage with a shared location (s3://..., gs://..., or an NFS path)"
        )
    client = JobSubmissionClient(address)
    job_id = client.submit_job(
        entrypoint=entrypoint,
        runtime_env=job_runtime_env(working_dir=str(Path.cwd())),
        metadata={"rl_hyper_study": study.name},
    )
    commands = follow_commands(job_id, address)
    print(f"submitted study {study.name!r} as job {job_id}")
    print(f"  follow logs: {commands['logs']}")
    print(f"  stop it:     {commands['stop']}")
    return job_id
