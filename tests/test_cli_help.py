"""`rl-hyper ... --help` teaches: every option has a help text, env and method options name their
choices, and `rl-hyper methods` prints the method table (subprocess, as a user runs it; no Ray)."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from rl_hyper.cli import build_parser
from rl_hyper.envs.registry import ENVS
from rl_hyper.models.methods import METHODS


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rl_hyper", *args], capture_output=True, text=True, timeout=120)


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    (subparsers,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(subparsers.choices)


def test_every_option_and_argument_of_every_command_has_a_help_text():
    commands = _subcommands()
    assert {"train", "sweep", "report", "submit", "envs", "methods"} <= set(commands)
    undocumented = [f"{name} {action.dest}" for name, parser in commands.items() for action in parser._actions
                    if not isinstance(action, argparse._HelpAction) and len(action.help or "") < 10]
    assert not undocumented, undocumented


@pytest.mark.parametrize("command", ["train", "sweep"])
def test_help_runs_and_shows_quiet_and_verbose(command):
    proc = run(command, "--help")
    assert proc.returncode == 0 and "--quiet" in proc.stdout and "--verbose" in proc.stdout


def test_train_help_lists_env_and_method_choices():
    proc = run("train", "--help")
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split("options:", 1)[1].split())  # the option list, unwrapped
    env_help = text[text.index("--env NAME"):text.index("--method ID")]
    method_help = text[text.index("--method ID"):text.index("--frames N")]
    assert all(name in env_help for name in ENVS), env_help
    assert all(method_id in method_help for method_id in METHODS), method_help
    for option in ("--lr X", "--seed S", "--frames N"):
        after = text[text.index(option) + len(option):].split()
        assert not after[0].startswith("--"), f"{option} has no help text"


def test_methods_command_prints_every_row_with_its_switches():
    proc = run("methods")
    assert proc.returncode == 0
    header, *rows = [line.split() for line in proc.stdout.splitlines()]
    assert header[:2] == ["id", "name"]
    table = {row[0]: row for row in rows}
    assert list(table) == list(METHODS)
    for method in METHODS.values():
        row = table[method.id]
        assert method.name.split()[-1] in row and method.policy_input in row and method.aux_loss in row
        assert method.core in row
        assert row[-3:] == ["yes" if method.rl_grad_to_encoder else "no", method.warm_up,
                            "yes" if method.normalize_latent else "no"]
    assert table["rnn_hn_kaiming"][4] == "kaiming" and table["rnn_s"][4] == "-"
    assert table["transformer_hn"][2:4] == ["transformer", "hyper"]
