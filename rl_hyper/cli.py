"""The `rl-hyper` command (also `python -m rl_hyper`): parse, validate, call, print.

    rl-hyper train  [--env GridNavi] [--method rnn_hn] [--frames N] [--lr X] [--seed S] ...
    rl-hyper sweep  FILE.yaml [--dry-run] [--resume] [--storage URI] [--max-concurrent N]
    rl-hyper report RESULTS_DIR [--out DIR] [--select auc|final]
    rl-hyper submit FILE.yaml --address URL [--storage URI]
    rl-hyper envs   [list | solve NAME | render NAME --out FILE.png]

Bad input is one line on stderr naming the problem (and the valid choices) and exit code 2,
before Ray starts.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

EXIT_USAGE = 2
DEFAULT_TRAIN_FRAMES = 150_000


class UsageError(ValueError):
    """Bad command-line input: reported as one line, exit code 2."""


def _check_writable(directory: str) -> None:
    path = Path(directory)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path):
            pass
    except OSError as error:
        raise UsageError(f"output directory {directory!r} is not writable ({error.strerror or error})") from None


def _positive(name: str, value) -> None:
    if value is not None and not value > 0:
        raise UsageError(f"{name} must be > 0, got {value}")


def cmd_train(args) -> int:
    from rl_hyper.envs.registry import get_entry
    from rl_hyper.models.methods import get_method

    get_entry(args.env)
    get_method(args.method)
    _positive("--frames", args.frames)
    _positive("--lr", args.lr)
    _positive("--envs-per-runner", args.envs_per_runner)
    if args.num_env_runners < 0:
        raise UsageError(f"--num-env-runners must be >= 0, got {args.num_env_runners}")
    _check_writable(args.output)

    from rl_hyper.training.run import init_ray, train

    init_ray(include_dashboard=False)
    common = {"env": args.env, "num_env_runners": args.num_env_runners, "envs_per_runner": args.envs_per_runner,
              "eval_interval": args.eval_interval,
              # a lone trial gets the machine: its process runs one torch thread per CPU left to it
              "main_process_cpus": max(1, (os.cpu_count() or 1) - args.num_env_runners)}
    name = args.name or f"train_{args.env}_{args.method}_{time.strftime('%Y%m%d-%H%M%S')}"
    print(f"training {args.method} on {args.env} for {args.frames:,} frames -> {Path(args.output) / name}", flush=True)
    trial_dir = train(common, method=args.method, lr=args.lr, seed=args.seed, frames=args.frames,
                      output=args.output, name=name)
    print(f"done: results and checkpoint in {trial_dir}")
    return 0


def cmd_envs(args) -> int:
    from rl_hyper.envs.registry import ENVS, gym_id, make_trial_env

    if args.action == "list":
        print(f"{'name':<18} {'gymnasium id':<30} {'obs':>5} {'actions':<14} {'K':>2} {'steps':>5}  description")
        for name, entry in ENVS.items():
            env = make_trial_env(name)
            space = env.action_space
            actions = f"Discrete({space.n})" if hasattr(space, "n") else f"Box({space.shape[0]})"
            print(f"{name:<18} {gym_id(name):<30} {env.observation_space.shape[0]:>5} {actions:<14} "
                  f"{env.episodes_per_trial:>2} {env.max_episode_steps:>5}  {entry.description}")
            env.close()
        return 0
    from rl_hyper.envs import showcase

    if args.action == "render" and not args.out:
        raise UsageError("envs render needs --out FILE.png")
    try:  # showcase raises ValueError for envs it cannot solve or render (unknown ones included)
        if args.action == "render":
            print(f"wrote {showcase.render_strip(args.name, args.out)}")
            return 0
        returns = showcase.solve(args.name)  # policy -> {"episode_1": .., ..., "trial": ..}
    except ValueError as error:
        raise UsageError(str(error)) from None
    columns = list(next(iter(returns.values())))
    print(f"{'scripted policy':<16}" + "".join(f"{c:>11}" for c in columns))
    for policy, row in returns.items():
        print(f"{policy:<16}" + "".join(f"{row[c]:>11.2f}" for c in columns))
    return 0


def cmd_sweep(args) -> int:
    from rl_hyper.study.spec import load_study
    from rl_hyper.study.sweep import run_sweep, trial_table

    study = load_study(args.file)
    _positive("--max-concurrent", args.max_concurrent)
    if args.dry_run:
        print(trial_table(study))
        return 0
    storage = args.storage or study.storage
    if "://" not in storage:
        _check_writable(storage)
        experiment = Path(storage) / study.name
        if not args.resume and any(experiment.glob("experiment_state*.json")):
            raise UsageError(f"{experiment} already holds this study: add --resume to continue it, "
                             "or pass --storage DIR for a fresh run")
    from rl_hyper.study.sweep import check_cluster_fits
    from rl_hyper.training.run import init_ray

    init_ray(address=args.address)
    check_cluster_fits(study)
    failed = run_sweep(study, storage=args.storage, resume=args.resume, max_concurrent=args.max_concurrent)
    return 1 if failed else 0


def cmd_report(args) -> int:
    from rl_hyper.study.report import write_report
    from rl_hyper.study.spec import load_study

    results = Path(args.results_dir)
    if not results.is_dir():
        raise UsageError(f"results directory {args.results_dir!r} does not exist")
    study_file = results / "study.yaml"
    study = load_study(study_file) if study_file.exists() else None
    out = args.out or str(results / "report")
    _check_writable(out)
    for path in write_report(results, out, select=args.select, study=study):
        print(f"wrote {path}")
    return 0


def cmd_submit(args) -> int:
    from rl_hyper.study.submit import submit

    submit(args.file, args.address, storage=args.storage)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rl-hyper", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train one method on one env (one Tune trial)")
    train.add_argument("--env", default="GridNavi")
    train.add_argument("--method", default="rnn_hn")
    train.add_argument("--frames", type=int, default=DEFAULT_TRAIN_FRAMES, help="env-step budget")
    train.add_argument("--lr", type=float, default=1e-3)
    train.add_argument("--seed", type=int, default=73)
    train.add_argument("--num-env-runners", type=int, default=0, help="0 = sample in the trial's own process")
    train.add_argument("--envs-per-runner", type=int, default=None, help="default: the paper's 16 parallel envs")
    train.add_argument("--eval-interval", type=int, default=10, help="iterations between evaluations (0 = none)")
    train.add_argument("--output", default="results", help="results directory (Tune storage path)")
    train.add_argument("--name", default=None, help="experiment name (default: train_<env>_<method>_<time>)")
    train.set_defaults(handler=cmd_train)

    sweep = commands.add_parser("sweep", help="run an equal-compute study (YAML) on Ray Tune")
    sweep.add_argument("file", help="study YAML, e.g. tune_configs/quickstart.yaml")
    sweep.add_argument("--dry-run", action="store_true", help="print the trial table and exit")
    sweep.add_argument("--resume", action="store_true", help="continue an interrupted study")
    sweep.add_argument("--storage", default=None, help="results directory or cloud URI (overrides the YAML)")
    sweep.add_argument("--max-concurrent", type=int, default=None, help="trials at a time")
    sweep.add_argument("--address", default=None, help="Ray cluster to join (default: start a local Ray)")
    sweep.set_defaults(handler=cmd_sweep)

    report = commands.add_parser("report", help="tables, plots and report.md/html of a results directory")
    report.add_argument("results_dir")
    report.add_argument("--out", default=None, help="default: RESULTS_DIR/report")
    report.add_argument("--select", choices=["auc", "final"], default="auc", help="best-lr rule (paper: auc)")
    report.set_defaults(handler=cmd_report)

    submit = commands.add_parser("submit", help="submit a study to a Ray cluster as a Ray job")
    submit.add_argument("file")
    submit.add_argument("--address", required=True, help="Ray dashboard address, e.g. http://HEAD:8265")
    submit.add_argument("--storage", default=None, help="shared storage for results (cloud URI or shared path)")
    submit.set_defaults(handler=cmd_submit)

    envs = commands.add_parser("envs", help="list, solve or render the registered environments")
    envs.add_argument("action", nargs="?", default="list", choices=["list", "solve", "render"])
    envs.add_argument("name", nargs="?", default="MC-LS")
    envs.add_argument("--out", default=None, help="PNG file for `render`")
    envs.set_defaults(handler=cmd_envs)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    args = build_parser().parse_args(argv)
    from rl_hyper.envs.registry import UnknownEnvError
    from rl_hyper.models.methods import UnknownMethodError
    from rl_hyper.study.spec import StudyError

    try:
        return args.handler(args)
    except (UsageError, UnknownEnvError, UnknownMethodError, StudyError) as error:
        print(f"rl-hyper {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
