"""benchmarks/phase_means.py: phase means of an rl_hyper study, checked against hand-computed values."""

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import BENCHMARKS, load_benchmark

SCRIPT = BENCHMARKS / "phase_means.py"


def write_trial(study: Path, seed: int, rows: list[dict]) -> None:
    """A trial folder whose progress.csv has rl_hyper's columns; empty cells where not evaluated."""
    columns = ["rl_hyper/frames", "rl_hyper/seed", "rl_hyper/eval_trial_return", "rl_hyper/aux_kl", "rl_hyper/entropy",
               "rl_hyper/clip_fraction"]
    trial = study / f"vi_hn_seed{seed}"
    trial.mkdir(parents=True)
    with open(trial / "progress.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({"rl_hyper/seed": seed, **row})


def test_phase_means_of_a_study_match_hand_computed_values(tmp_path):
    study = tmp_path / "study"
    # Frames 10..60; evaluations at 20 (1.0), 40 (3.0), 60 (8.0); one row's eval is "nan".
    write_trial(study, 3, [
        {"rl_hyper/frames": 10, "rl_hyper/aux_kl": 50, "rl_hyper/entropy": 1.5, "rl_hyper/clip_fraction": 0.2},
        {"rl_hyper/frames": 20, "rl_hyper/eval_trial_return": 1.0, "rl_hyper/aux_kl": 100, "rl_hyper/entropy": 1.3,
         "rl_hyper/clip_fraction": 0.4},
        {"rl_hyper/frames": 30, "rl_hyper/eval_trial_return": "nan", "rl_hyper/aux_kl": 25, "rl_hyper/entropy": 1.2,
         "rl_hyper/clip_fraction": 0.3},
        {"rl_hyper/frames": 40, "rl_hyper/eval_trial_return": 3.0, "rl_hyper/aux_kl": 75, "rl_hyper/entropy": 1.0,
         "rl_hyper/clip_fraction": 0.1},
        {"rl_hyper/frames": 60, "rl_hyper/eval_trial_return": 8.0, "rl_hyper/aux_kl": 0, "rl_hyper/entropy": 0.8,
         "rl_hyper/clip_fraction": 0.5},
    ])
    phase_means = load_benchmark("phase_means")
    [run] = phase_means.read_runs(str(study))
    assert run.seed == 3
    eval_phases, eval_windows, nats, entropy, clip = phase_means.run_cells(run, [0, 20, 60], window=15, kl_trials=25)
    assert eval_phases == pytest.approx([1.0, (3.0 + 8.0) / 2])  # (0, 20] and (20, 60]; the nan row is no evaluation
    assert eval_windows == pytest.approx([1.0, 8.0])  # (5, 20] and (45, 60]: frame 40 is outside the second
    assert nats == pytest.approx([(50 + 100) / 2 / 25, (25 + 75 + 0) / 3 / 25])
    assert entropy == pytest.approx([(1.5 + 1.3) / 2, (1.2 + 1.0 + 0.8) / 3])
    assert clip == pytest.approx([0.3])


def test_phase_means_cli_prints_each_seed_and_the_mean_over_seeds(tmp_path):
    study = tmp_path / "study"
    for seed, value in ((20, 2.0), (73, 6.0)):
        write_trial(study, seed, [{"rl_hyper/frames": 50, "rl_hyper/eval_trial_return": value, "rl_hyper/aux_kl": 25,
                                   "rl_hyper/entropy": 1.0, "rl_hyper/clip_fraction": 0.2}])
    out = subprocess.run([sys.executable, str(SCRIPT), f"ours={study}", "--phases", "0", "100", "--window", "100"],
                         capture_output=True, text=True, check=True).stdout
    rows = [line for line in out.splitlines() if line.startswith("| ours")]
    assert [row.split("|")[2].strip() for row in rows] == ["20", "73", ""]
    assert "**4.00**" in rows[-1]  # the mean over the two seeds' evaluations


def test_phase_means_cli_rejects_a_missing_folder(tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPT), f"ours={tmp_path / 'absent'}"], capture_output=True, text=True)
    assert result.returncode != 0 and "no such folder" in result.stderr


def test_permutation_p_value_by_hand_and_by_random_splits():
    phase_means = load_benchmark("phase_means")
    # pooled 1..5 split 3 / 2: of the 10 splits only {1,2,3}|{4,5} and {3,4,5}|{1,2} differ by 2.5 or more
    assert phase_means.permutation_p_value([1.0, 2.0, 3.0], [4.0, 5.0]) == pytest.approx(0.2)
    # 10 / 10 values have 184,756 splits, more than the 100,000 random ones drawn instead
    assert phase_means.permutation_p_value([0.0] * 10, [1.0] * 10) < 1e-3  # 2 splits of 184,756 separate them
    assert phase_means.permutation_p_value([1.0] * 10, [1.0] * 10) == 1.0  # every split ties


def test_phase_means_cli_prints_the_difference_from_the_first_group(tmp_path):
    for name, seeds in (("ours", ((20, 2.0), (73, 6.0))), ("theirs", ((1, 10.0), (2, 12.0)))):
        for seed, value in seeds:
            write_trial(tmp_path / name, seed, [{"rl_hyper/frames": 50, "rl_hyper/eval_trial_return": value,
                                                 "rl_hyper/aux_kl": 25, "rl_hyper/entropy": 1.0,
                                                 "rl_hyper/clip_fraction": 0.2}])
    out = subprocess.run([sys.executable, str(SCRIPT), f"ours={tmp_path / 'ours'}", f"theirs={tmp_path / 'theirs'}",
                          "--phases", "0", "100", "--window", "100"], capture_output=True, text=True, check=True).stdout
    [row] = [line for line in out.splitlines() if line.startswith("| theirs minus ours")]
    # 11 - 4 = 7; of the 6 splits of {2, 6, 10, 12} into pairs, 2 differ by 7 or more
    assert row.split("|")[4].strip() == "+7.00 (p 0.33)"
    assert row.split("|")[6].strip() == "+0.00 (p 1.00)"  # equal nats: every split ties
