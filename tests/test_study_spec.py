"""Study YAML schema: bad files fail with one line naming the field; the shipped configs load."""

from __future__ import annotations

from pathlib import Path

import pytest

from rl_hyper.study.spec import StudyError, Trial, load_study

CONFIG_DIR = Path(__file__).resolve().parents[1] / "tune_configs"

VALID = """\
name: demo
env: GridNavi
methods: [rnn, rnn_hn]
lr_grid: [1.0e-3, 3.0e-4]
seeds: [73, 20]
frames: 60_000
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(text)
    return path


def replace_line(text: str, key: str, new_line: str | None) -> str:
    """VALID with the line starting with `key:` replaced (None = removed)."""
    lines = [new_line if line.startswith(f"{key}:") else line for line in text.splitlines()]
    return "\n".join(line for line in lines if line is not None) + "\n"


def error_of(path: Path) -> str:
    with pytest.raises(StudyError) as caught:
        load_study(path)
    message = str(caught.value)
    assert "\n" not in message, message
    assert message.startswith(f"{path}: "), message
    return message


def test_valid_study_loads_with_defaults(tmp_path):
    study = load_study(write(tmp_path, VALID))
    assert study.env == "GridNavi"
    assert study.methods == ["rnn", "rnn_hn"]
    assert study.lr_grid == [1e-3, 3e-4]
    assert study.frames == 60_000
    assert study.evaluation.num_tasks == 16 and study.evaluation.deterministic is True
    assert study.resources.num_gpus_per_learner == 0
    assert study.resources.cpus_per_trial == 1.0  # learner only: no env runners
    assert study.storage == "results"
    assert study.max_failures == 1
    assert study.ppo.overrides() == {}


def test_scientific_notation_is_accepted(tmp_path):
    # PyYAML reads 4e6 and 1e-3 (no dot) as strings.
    study = load_study(write(tmp_path, replace_line(replace_line(VALID, "frames", "frames: 4e6"), "lr_grid", "lr_grid: [1e-3]")))
    assert study.frames == 4_000_000
    assert study.lr_grid == [0.001]


def test_trials_expand_method_lr_seed_in_file_order(tmp_path):
    text = replace_line(replace_line(VALID, "methods", "methods: [rnn_hn, rnn, ti]"), "seeds", "seeds: [3, 1]")
    trials = load_study(write(tmp_path, text)).trials()
    assert len(trials) == 3 * 2 * 2
    assert trials[:5] == [
        Trial("rnn_hn", 1e-3, 3),
        Trial("rnn_hn", 1e-3, 1),
        Trial("rnn_hn", 3e-4, 3),
        Trial("rnn_hn", 3e-4, 1),
        Trial("rnn", 1e-3, 3),
    ]
    assert trials[-1] == Trial("ti", 3e-4, 1)
    assert len(set(trials)) == len(trials)


def test_cpus_default_counts_env_runners_and_parallel_envs(tmp_path):
    study = load_study(write(tmp_path, VALID + "resources: {num_env_runners: 3, envs_per_runner: 4}\n"))
    assert study.resources.cpus_per_trial == 4.0
    assert study.resources.parallel_envs == 12


BAD_CASES = {
    "unknown method": (replace_line(VALID, "methods", "methods: [rnn, foo]"), ["methods.1", "unknown method 'foo'", "rnn_hn"]),
    "unknown env": (replace_line(VALID, "env", "env: Pong"), ["env:", "unknown env 'Pong'", "GridNavi"]),
    "missing budget": (replace_line(VALID, "frames", None), ["frames:", "required"]),
    "missing env": (replace_line(VALID, "env", None), ["env:", "required"]),
    "empty lr grid": (replace_line(VALID, "lr_grid", "lr_grid: []"), ["lr_grid:"]),
    "negative lr": (replace_line(VALID, "lr_grid", "lr_grid: [1.0e-3, -0.1]"), ["lr_grid.1:"]),
    "empty methods": (replace_line(VALID, "methods", "methods: []"), ["methods:"]),
    "duplicate method": (replace_line(VALID, "methods", "methods: [rnn, rnn]"), ["methods:", "duplicate", "'rnn'"]),
    "duplicate seed": (replace_line(VALID, "seeds", "seeds: [3, 3]"), ["seeds:", "duplicate"]),
    "per-method budget": (
        replace_line(VALID, "methods", "methods: [rnn, {id: rnn_hn, budget: 100}]"),
        ["methods.1", "'budget'"],
    ),
    "frames per method key": (VALID + "frames_per_method: {rnn: 10}\n", ["frames_per_method:", "unknown key"]),
    "budget key": (VALID + "budget: 10\n", ["budget:", "unknown key"]),
    "unknown ppo key": (VALID + "ppo: {clip_param: 0.1, lr: 0.1}\n", ["ppo.lr:", "unknown key", "clip_param"]),
    "bad ppo value": (VALID + "ppo: {gamma: 1.5}\n", ["ppo.gamma:"]),
    "unknown resources key": (VALID + "resources: {gpus: 1}\n", ["resources.gpus:", "unknown key"]),
    "unknown evaluation key": (VALID + "evaluation: {every: 3}\n", ["evaluation.every:", "unknown key"]),
    "frames not a number": (replace_line(VALID, "frames", "frames: lots"), ["frames:", "integer", "'lots'"]),
    "fractional frames": (replace_line(VALID, "frames", "frames: 1.5"), ["frames:", "integer"]),
    "zero frames": (replace_line(VALID, "frames", "frames: 0"), ["frames:", "greater than 0"]),
    "float seed": (replace_line(VALID, "seeds", "seeds: [73, 1.5]"), ["seeds.1:", "integer"]),
    "string seed": (replace_line(VALID, "seeds", "seeds: ['73']"), ["seeds.0:", "integer"]),
    "methods not a list": (replace_line(VALID, "methods", "methods: rnn"), ["methods:", "list"]),
    "section not a mapping": (VALID + "ppo: 5\n", ["ppo:"]),
    "deterministic not a bool": (VALID + "evaluation: {deterministic: 'yes'}\n", ["evaluation.deterministic:"]),
    "bad storage scheme": (VALID + "storage: ftp://host/dir\n", ["storage:", "'ftp'"]),
    "bad name": (replace_line(VALID, "name", "name: my study"), ["name:"]),
    "negative max_failures": (VALID + "max_failures: -1\n", ["max_failures:"]),
    "invalid YAML": (VALID + "methods: [rnn\n", ["invalid YAML", "line"]),
    "duplicate key": (VALID + "frames: 10\n", ["invalid YAML", "duplicate key 'frames'", "line 7"]),
    "not a mapping": ("- rnn\n- rnn_hn\n", ["expected a mapping"]),
    "empty file": ("", ["empty"]),
}


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_study_names_the_field(tmp_path, case):
    text, expected = BAD_CASES[case]
    message = error_of(write(tmp_path, text))
    for fragment in expected:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def test_several_errors_stay_on_one_line(tmp_path):
    text = replace_line(replace_line(VALID, "methods", "methods: [nope]"), "frames", None)
    message = error_of(write(tmp_path, text))
    assert "methods.0" in message and "frames" in message


def test_unreadable_file(tmp_path):
    message = error_of(tmp_path / "absent.yaml")
    assert "cannot read" in message


def test_every_paper_env_is_accepted(tmp_path):
    for env in ("GridNavi-Dense", "GridNavi-Show", "MC-LS", "CheetahDir", "CheetahVel", "AntDir", "WalkerRandParams"):
        assert load_study(write(tmp_path, replace_line(VALID, "env", f"env: {env}"))).env == env


def test_every_shipped_config_loads_and_says_how_to_run_it():
    paths = sorted(CONFIG_DIR.glob("*.yaml"))
    assert len(paths) >= 9
    for path in paths:
        study = load_study(path)
        assert study.name == path.stem
        header = path.read_text().split("\nname:")[0]
        assert header.startswith("#")
        assert f"rl-hyper sweep tune_configs/{path.name}" in header


MAIN = {"rnn", "rnn_s", "rnn_hn", "ti_naive", "ti", "ti_pp_hn", "vi_hn"}
GRID_PPO = dict(rollout_steps_per_env=60, minibatches=4, clip_param=0.05, entropy_coeff=0.1, gamma=0.95, lambda_=0.95, adam_eps=1e-5)
CHEETAH_PPO = dict(rollout_steps_per_env=400, minibatches=4, clip_param=0.1, entropy_coeff=0.01, gamma=0.97, lambda_=0.9, adam_eps=1e-8)
# PAPER_SPEC sections 5 and 6: env, frames, methods, seeds, PPO row.
PAPER = {
    "paper_gridnavi.yaml": ("GridNavi", 4_000_000, MAIN | {"rnn_hn_kaiming"}, [73, 20, 3], GRID_PPO),
    "paper_gridnavi_dense.yaml": ("GridNavi-Dense", 4_000_000, MAIN | {"rnn_hn_kaiming"}, [73, 20, 3], GRID_PPO),
    "paper_gridnavi_show.yaml": ("GridNavi-Show", 4_000_000, MAIN | {"rnn_hn_kaiming"}, [73, 20, 3], GRID_PPO),
    "paper_mc_ls.yaml": (
        "MC-LS", 60_000_000, MAIN, [73, 20, 3, 99],
        dict(GRID_PPO, rollout_steps_per_env=800, lr_schedule="linear_to_zero"),
    ),
    "paper_cheetah_dir.yaml": ("CheetahDir", 75_000_000, MAIN, [73, 20, 3], CHEETAH_PPO),
    "paper_cheetah_vel.yaml": ("CheetahVel", 75_000_000, MAIN, [73, 20, 3], CHEETAH_PPO),
    "paper_ant_dir.yaml": ("AntDir", 75_000_000, MAIN, [73, 20, 3], dict(CHEETAH_PPO, rollout_steps_per_env=200, minibatches=1)),
    "paper_walker.yaml": (
        "WalkerRandParams", 75_000_000, MAIN, [73, 20, 3],
        dict(CHEETAH_PPO, rollout_steps_per_env=200, minibatches=2, clip_param=0.05),
    ),
}


@pytest.mark.parametrize("filename", list(PAPER))
def test_paper_configs_match_the_paper(filename):
    env, frames, methods, seeds, ppo = PAPER[filename]
    study = load_study(CONFIG_DIR / filename)
    assert study.env == env
    assert study.frames == frames
    assert set(study.methods) == methods
    assert study.seeds == seeds
    assert study.lr_grid == [3e-3, 1e-3, 3e-4, 1e-4, 3e-5]
    assert study.resources.parallel_envs == 16
    overrides = study.ppo.overrides()
    assert overrides["num_epochs"] == 2 and overrides["vf_loss_coeff"] == 0.5 and overrides["grad_clip"] == 0.5
    for key, value in ppo.items():
        assert overrides[key] == pytest.approx(value) if isinstance(value, float) else overrides[key] == value, key
    assert ("lr_schedule" in overrides) == ("lr_schedule" in ppo)


def test_aux_section_reaches_the_trials_and_rejects_unknown_keys(tmp_path):
    from rl_hyper.study.sweep import build_arguments
    from rl_hyper.training.config import build_config

    text = VALID.replace("methods: [rnn, rnn_hn]", "methods: [vi_hn]")
    study = load_study(write(tmp_path, text + "aux: {vae_updates: 1, latent_norm_window: .inf}\n"))
    arguments = build_arguments(study)
    assert arguments["aux"] == {"vae_updates": 1, "latent_norm_window": float("inf")}
    config = build_config(method="vi_hn", lr=1e-3, seed=0, frames=study.frames, **arguments)
    assert config.learner_config_dict["vae_updates"] == 1
    assert config.model_config["latent_norm_max_count"] == float("inf")
    assert "aux" in error_of(write(tmp_path, text + "aux: {vae_steps: 1}\n"))
