"""The `rl-hyper` command (also `python -m rl_hyper`): parse, validate, call, print.

    rl-hyper train  [--env GridNavi] [--method rnn_hn] [--frames N] [--lr X] [--seed S] ...
    rl-hyper sweep  FILE.yaml [--dry-run [--calibrate]] [--resume] [--storage URI] [--max-concurrent N]
    rl-hyper report RESULTS_DIR [--out DIR] [--select auc|final] [--screenshot]
    rl-hyper submit FILE.yaml --address URL [--storage URI]
    rl-hyper envs   [list | solve NAME | render NAME --out FILE.png]
    rl-hyper methods

Bad input is one line on stderr naming the problem (and the valid choices) and exit code 2,
before Ray starts.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

EXIT_USAGE = 2
EXIT_SIGNAL_BASE = 128  # stopped by signal N: exit 128 + N, as a shell reports it (SIGINT 130, SIGTERM 143)
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

    from rl_hyper.training.ray_setup import init_ray, quiet_ray_logs
    from rl_hyper.training.run import train

    quiet_ray_logs(args.verbosity)
    init_ray(include_dashboard=False)
    common = {"env": args.env, "num_env_runners": args.num_env_runners, "envs_per_runner": args.envs_per_runner,
              "eval_interval": args.eval_interval,
              # a lone trial gets the machine: its process runs one torch thread per CPU left to it
              "main_process_cpus": max(1, (os.cpu_count() or 1) - args.num_env_runners)}
    name = args.name or f"train_{args.env}_{args.method}_{time.strftime('%Y%m%d-%H%M%S')}"
    print(f"training {args.method} on {args.env} for {args.frames:,} frames -> {Path(args.output) / name}", flush=True)
    from rl_hyper.training.stopping import StoppedBySignal
    from rl_hyper.training.storage import StorageError

    try:
        trial_dir = train(common, method=args.method, lr=args.lr, seed=args.seed, frames=args.frames,
                          output=args.output, name=name, verbosity=args.verbosity)
    except StoppedBySignal as stop:
        return EXIT_SIGNAL_BASE + stop.signum
    except StorageError as error:
        print(f"rl-hyper train: error: {error}", file=sys.stderr)
        return 1
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
    from rl_hyper.study.lock import StudyLock, StudyLockedError
    from rl_hyper.study.spec import load_study
    from rl_hyper.study.sweep import check_resumable, trial_table
    from rl_hyper.training.run import storage_path

    study = load_study(args.file)
    _positive("--max-concurrent", args.max_concurrent)
    if args.calibrate and not args.dry_run:
        raise UsageError("--calibrate goes with --dry-run (it measures the trials' speed instead of running them)")
    if args.dry_run:
        print(trial_table(study), flush=True)
        if args.calibrate:
            _print_cost(study, args)
        return 0
    from rl_hyper.training.loggers import check_tracking

    try:
        check_tracking(study.logging.tracking())
    except ValueError as error:
        raise UsageError(f"{args.file}: {error}") from None
    storage = args.storage or study.storage
    experiment = f"{storage_path(storage).rstrip('/')}/{study.name}"
    if args.resume:
        check_resumable(experiment)
    if "://" in storage:
        return _run_sweep(study, args)
    if not args.resume:
        _check_writable(storage)
    try:
        with StudyLock(Path(experiment), study.name):
            if not args.resume and any(Path(experiment).glob("experiment_state*.json")):
                raise UsageError(f"{experiment} already holds this study: add --resume to continue it, "
                                 "or pass --storage DIR for a fresh run")
            return _run_sweep(study, args)
    except StudyLockedError as error:
        raise UsageError(str(error)) from None


def _print_cost(study, args) -> None:
    """Measure each method's trial here (study/cost.py) and print the study's projected cost."""
    import math
    import os

    from rl_hyper.envs.registry import register_all
    from rl_hyper.study.cost import CALIBRATION_ITERATIONS, cost_table, measure_frames_per_s, project
    from rl_hyper.training.ray_setup import init_ray, quiet_ray_logs

    quiet_ray_logs(args.verbosity)
    # a local Ray declares at least one trial's CPUs, so its env runners start even on a small machine
    init_ray(address=args.address, num_cpus=None if args.address else
             max(os.cpu_count() or 1, math.ceil(study.resources.cpus_per_trial)))
    register_all()
    frames_per_s = {}
    for method in study.methods:
        print(f"calibrating {method}: {CALIBRATION_ITERATIONS + 1} training iterations ...", flush=True)
        frames_per_s[method] = measure_frames_per_s(study, method)
    print(cost_table(study, project(study, frames_per_s)))


def _run_sweep(study, args) -> int:
    """Start Ray, run the study; exit code 0 when every trial finished, 128 + the signal's number
    when SIGINT / SIGTERM stopped it (130 / 143), else 1 (a trial failed, or the storage did: one
    line naming the folder and the errno)."""
    from rl_hyper.study.sweep import check_cluster_fits, run_sweep
    from rl_hyper.training.ray_setup import init_ray, quiet_ray_logs

    quiet_ray_logs(args.verbosity)
    init_ray(address=args.address)
    check_cluster_fits(study)
    from rl_hyper.study.sweep import resume_command
    from rl_hyper.training.run import experiment_dir, storage_path
    from rl_hyper.training.stopping import StoppedBySignal
    from rl_hyper.training.storage import StorageError

    try:
        failed = run_sweep(study, storage=args.storage, resume=args.resume, max_concurrent=args.max_concurrent,
                           verbosity=args.verbosity)
    except StoppedBySignal as stop:
        return EXIT_SIGNAL_BASE + stop.signum
    except StorageError as error:
        storage = storage_path(args.storage or study.storage)
        print(f"rl-hyper sweep: error: {error}; once it is fixed, continue with: "
              f"{resume_command(experiment_dir(storage, study.name), storage)}", file=sys.stderr)
        return 1
    return 1 if failed else 0


def method_table() -> str:
    """The method table as printable rows: id, name and every switch of `Method`."""
    from rl_hyper.models.methods import METHODS

    header = ("id", "name", "core", "policy input", "hypernet init", "aux loss", "RL grad to encoder", "warm-up",
              "normalize latent")
    rows = [header]
    for method in METHODS.values():
        rows.append((method.id, method.name, method.core, method.policy_input,
                     method.hyper_init if method.uses_hypernetwork else "-", method.aux_loss,
                     "yes" if method.rl_grad_to_encoder else "no", method.warm_up,
                     "yes" if method.normalize_latent else "no"))
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)


def cmd_methods(args) -> int:
    print(method_table())
    return 0


def cmd_report(args) -> int:
    from rl_hyper.study.analysis import IncompleteRowWarning, ResultsError
    from rl_hyper.study.report import write_report
    from rl_hyper.study.spec import load_study

    results = Path(args.results_dir)
    if not results.is_dir():
        raise UsageError(f"results directory {args.results_dir!r} does not exist")
    study_file = results / "study.yaml"
    study = load_study(study_file) if study_file.exists() else None
    out = args.out or str(results / "report")
    _check_writable(out)
    if args.screenshot:
        from rl_hyper.study.browser import find_browser

        if find_browser() is None:
            raise UsageError("--screenshot needs Chromium (Debian: apt-get install chromium)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", IncompleteRowWarning)
        try:
            written = write_report(results, out, select=args.select, study=study)
        except ResultsError as error:
            raise UsageError(str(error)) from None
    for warning in caught:  # ours as one line each, any other as Python shows it
        if issubclass(warning.category, IncompleteRowWarning):
            print(f"rl-hyper report: warning: {warning.message}", file=sys.stderr)
        else:
            warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)
    for path in written:
        print(f"wrote {path}")
    if not args.screenshot:
        return 0
    from rl_hyper.study.browser import BrowserError, render_in_browser

    try:
        check = render_in_browser(Path(out) / "report.html", Path(out) / "report.png")
    except BrowserError as error:
        print(f"rl-hyper report: browser check failed: {error}", file=sys.stderr)
        return 1
    print(f"browser check: {check['images']} images ({check['decoded']} shown, {check['broken']} broken), "
          f"{check['tables']} tables with {check['rows']} rows, page {check['height']} px high")
    print(f"screenshot: {check['screenshot']}")
    return 1 if check["broken"] or not check["images"] else 0


def cmd_submit(args) -> int:
    from rl_hyper.study.submit import submit

    submit(args.file, args.address, storage=args.storage)
    return 0


def _choices(names) -> str:
    return ", ".join(names)


def build_parser() -> argparse.ArgumentParser:
    from rl_hyper.envs.registry import ENVS
    from rl_hyper.models.methods import METHODS

    parser = argparse.ArgumentParser(
        prog="rl-hyper", description="Recurrent meta-RL on Ray RLlib and Tune: train one trial, run an equal-compute "
                                     "study, report on it.", epilog="`rl-hyper COMMAND --help` explains a command.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    env_help = f"environment (default: %(default)s); one of: {_choices(ENVS)}. `rl-hyper envs` describes them"
    method_help = f"method id (default: %(default)s); one of: {_choices(METHODS)}. `rl-hyper methods` shows their switches"

    train = commands.add_parser("train", help="train one method on one env (one Tune trial)",
                                description="Train one method on one environment: a Tune experiment of one trial, "
                                            "with periodic evaluation, results and a final checkpoint.")
    train.add_argument("--env", default="GridNavi", metavar="NAME", help=env_help)
    train.add_argument("--method", default="rnn_hn", metavar="ID", help=method_help)
    train.add_argument("--frames", type=int, default=DEFAULT_TRAIN_FRAMES, metavar="N",
                       help="env-step budget of the trial, warm-up frames included (default: %(default)s)")
    train.add_argument("--lr", type=float, default=1e-3, metavar="X",
                       help="learning rate, > 0 (default: %(default)g; the env's schedule may decay it)")
    train.add_argument("--seed", type=int, default=73, metavar="S",
                       help="random seed of tasks, envs and network initialisation (default: %(default)s)")
    train.add_argument("--num-env-runners", type=int, default=0, metavar="R",
                       help="sampling processes; 0 = sample in the trial's own process (default: %(default)s)")
    train.add_argument("--envs-per-runner", type=int, default=None, metavar="E",
                       help="vectorised envs per runner (default: the paper's 16 parallel envs spread over the runners)")
    train.add_argument("--eval-interval", type=int, default=10, metavar="K",
                       help="training iterations between evaluations; 0 = none (default: %(default)s)")
    train.add_argument("--output", default="results", metavar="DIR",
                       help="results directory (Tune storage path) (default: %(default)s)")
    train.add_argument("--name", default=None,
                       help="experiment folder under --output (default: train_<env>_<method>_<time>)")
    _add_verbosity(train, quiet="print only the start, the end and errors (no line per iteration)",
                   verbose="also show Ray Tune's own log messages (default: one line per training iteration)")
    train.set_defaults(handler=cmd_train)

    sweep = commands.add_parser("sweep", help="run an equal-compute study (YAML) on Ray Tune",
                                description="Run a study: every method x learning rate x seed of the YAML as Tune "
                                            "trials, all stopped at the same frame count.")
    sweep.add_argument("file", help="study YAML, e.g. tune_configs/quickstart.yaml")
    sweep.add_argument("--dry-run", action="store_true", help="print the trial table and exit (Ray does not start)")
    sweep.add_argument("--calibrate", action="store_true",
                       help="with --dry-run: run each method's trial for a few iterations here and print the "
                            "study's projected core-hours (and GPU-hours)")
    sweep.add_argument("--resume", action="store_true",
                       help="continue an interrupted study: finished trials stay, unfinished ones continue "
                            "from their last checkpoint, failed ones are retried")
    sweep.add_argument("--storage", default=None, metavar="URI",
                       help="results directory or cloud URI, e.g. s3://bucket/path (default: the YAML's storage)")
    sweep.add_argument("--max-concurrent", type=int, default=None, metavar="N",
                       help="trials at a time (default: the YAML's resources.max_concurrent, else as many as fit)")
    sweep.add_argument("--address", default=None, metavar="ADDRESS",
                       help="Ray cluster to join, e.g. 10.0.0.5:6379 or auto (default: start a local Ray)")
    _add_verbosity(sweep, quiet="print only the trial table, the end and errors (no progress line)",
                   verbose="also print one line per training iteration of every trial and Ray Tune's own log "
                           "messages (default: the study progress line and one line per finished trial)")
    sweep.set_defaults(handler=cmd_sweep)

    report = commands.add_parser("report", help="tables, plots and report.md/html of a results directory",
                                 description="Analyse a study's results: best learning rate per method, tables "
                                             "with bootstrap CIs, learning curves, report.md and report.html.")
    report.add_argument("results_dir", help="a study's results folder, e.g. results/quickstart")
    report.add_argument("--out", default=None, metavar="DIR", help="where to write the report (default: RESULTS_DIR/report)")
    report.add_argument("--select", choices=["auc", "final"], default="auc",
                        help="best-lr rule: auc = mean over all evaluations (the paper's), final = last evaluation "
                             "(default: %(default)s)")
    report.add_argument("--screenshot", action="store_true",
                        help="also open report.html in headless Chromium: check that every plot shows (exit 1 if "
                             "one is broken) and save report.png beside it")
    report.set_defaults(handler=cmd_report)

    submit = commands.add_parser("submit", help="submit a study to a Ray cluster as a Ray job",
                                 description="Submit `rl-hyper sweep FILE` to a running Ray cluster as a Ray job "
                                             "(see cluster/README.md).")
    submit.add_argument("file", help="study YAML, e.g. tune_configs/paper_gridnavi.yaml")
    submit.add_argument("--address", required=True, metavar="URL", help="Ray dashboard address, e.g. http://HEAD:8265")
    submit.add_argument("--storage", default=None, metavar="URI",
                        help="shared storage for results, a cloud URI or a path every node sees (default: the YAML's)")
    submit.set_defaults(handler=cmd_submit)

    envs = commands.add_parser("envs", help="list, solve or render the registered environments",
                               description="List the registered environments, play MC-LS with scripted policies, "
                                           "or render a strip of an environment's frames.")
    envs.add_argument("action", nargs="?", default="list", choices=["list", "solve", "render"],
                      help="list = names, gymnasium ids and spaces; solve = scripted MC-LS policies' returns; "
                           "render = a strip of frames to --out (default: %(default)s)")
    envs.add_argument("name", nargs="?", default="MC-LS", help=f"environment for solve / render (default: %(default)s); "
                                                             f"one of: {_choices(ENVS)}")
    envs.add_argument("--out", default=None, metavar="FILE.png", help="PNG file that `render` writes")
    envs.set_defaults(handler=cmd_envs)

    methods = commands.add_parser("methods", help="list the methods and their switches",
                                  description="The method table: one row of switches per method id "
                                              "(rl_hyper/models/methods.py).")
    methods.set_defaults(handler=cmd_methods)
    return parser


def _add_verbosity(parser: argparse.ArgumentParser, quiet: str, verbose: str) -> None:
    """--quiet (verbosity 0) and --verbose (2); the default is 1."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quiet", "-q", dest="verbosity", action="store_const", const=0, default=1, help=quiet)
    group.add_argument("--verbose", "-v", dest="verbosity", action="store_const", const=2, help=verbose)


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
