"""GridNavi family and the trial wrapper: the facts of PAPER_SPEC section 4."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from rl_hyper.envs.gridworld import GridNavi
from rl_hyper.envs.registry import ENVS, gym_id, make_trial_env

UP, RIGHT, DOWN, LEFT, NOOP = 1, 2, 3, 4, 0


def test_goal_distribution_is_21_cells_outside_start_block():
    env = GridNavi()
    rng = np.random.default_rng(0)
    goals = {env.sample_task(rng) for _ in range(3000)}
    assert len(goals) == 21
    assert all(0 <= x < 5 and 0 <= y < 5 for x, y in goals)
    assert not goals & {(0, 0), (0, 1), (1, 0), (1, 1)}


@pytest.mark.parametrize("variant, off_goal", [("sparse", -0.1), ("dense", None), ("show", -0.1)])
def test_rewards(variant, off_goal):
    env = GridNavi(variant)
    env.set_task((2, 3))
    env.reset()
    _, reward, terminated, truncated, _ = env.step(RIGHT)  # at (1, 0): L1 distance 1 + 3 = 4
    assert reward == pytest.approx(off_goal if off_goal is not None else -4 / 5)
    for action in (RIGHT, UP, UP, UP):
        _, reward, terminated, truncated, _ = env.step(action)
    assert env.position == (2, 3)
    assert reward == 1.0 and not terminated and not truncated
    _, reward, _, _, _ = env.step(NOOP)  # staying on the goal keeps paying
    assert reward == 1.0


def test_walls_keep_agent_on_grid():
    env = GridNavi()
    env.reset()
    env.step(LEFT)
    env.step(DOWN)
    assert env.position == (0, 0)


def test_show_variant_reveals_goal_only_on_start_cell_after_a_step():
    env = GridNavi("show")
    env.set_task((4, 2))
    obs, _ = env.reset()
    assert tuple(obs) == (0, 0)
    obs, *_ = env.step(UP)
    assert tuple(obs) == (0, 1)
    obs, *_ = env.step(DOWN)
    assert tuple(obs) == (4, 2)
    obs, *_ = env.step(NOOP)
    assert tuple(obs) == (4, 2)
    plain = GridNavi("sparse")
    plain.set_task((4, 2))
    plain.reset()
    plain.step(UP)
    assert tuple(plain.step(DOWN)[0]) == (0, 0)


def test_trial_has_four_inner_episodes_of_15_steps_and_one_task():
    env = make_trial_env("GridNavi")
    obs, info = env.reset(seed=3)
    task = info["task"].copy()
    rewards, flags, inner = [], [], []
    terminated = False
    steps = 0
    rng = np.random.default_rng(1)
    while not terminated:
        obs, reward, terminated, truncated, info = env.step(int(rng.integers(5)))
        steps += 1
        rewards.append(reward)
        flags.append(obs[2])
        inner.append(info["inner_episode"])
        np.testing.assert_array_equal(info["task"], task)
        assert not truncated
    assert steps == 60
    assert [i for i, f in enumerate(flags) if f == 1.0] == [14, 29, 44, 59]
    assert inner[:14] == [0] * 14 and inner[15:29] == [1] * 14
    np.testing.assert_allclose(info["inner_returns"], np.add.reduceat(rewards, [0, 15, 30, 45]), rtol=1e-5)
    # observation layout: state (x, y, flag), one-hot previous action (5), previous reward (1)
    assert obs.shape == (9,) and obs[3:8].sum() == 1.0 and obs[8] == pytest.approx(rewards[-1])


def test_inner_boundary_shows_terminal_position_then_acts_from_start():
    """As the original code: the step ending an inner episode returns its last position with the
    flag up; the agent is already back at the start, so the next move starts from (0, 0)."""
    env = make_trial_env("GridNavi")
    env.reset(seed=0)
    for _ in range(14):
        env.step(RIGHT)
    obs, *_ = env.step(RIGHT)
    assert tuple(obs[:2]) == (4, 0) and obs[2] == 1.0
    obs, *_ = env.step(UP)
    assert tuple(obs[:2]) == (0, 1) and obs[2] == 0.0


def test_inner_boundary_reset_obs_option_and_task_changes_between_trials():
    env = make_trial_env("GridNavi", {"boundary_obs": "reset"})
    env.reset(seed=0)
    for _ in range(14):
        env.step(RIGHT)
    obs, *_ = env.step(RIGHT)
    assert tuple(obs[:2]) == (0, 0) and obs[2] == 1.0
    tasks = set()
    for _ in range(40):
        _, info = env.reset()
        tasks.add(tuple(info["task"]))
    assert len(tasks) > 10


def test_same_seed_same_task_sequence():
    def tasks(seed):
        env = make_trial_env("GridNavi-Dense")
        env.reset(seed=seed)
        return [tuple(env.reset()[1]["task"]) for _ in range(10)]

    assert tasks(5) == tasks(5)
    assert tasks(5) != tasks(6)


@pytest.mark.parametrize("name", [name for name, entry in ENVS.items() if entry.family == "grid"])
def test_registered_grid_env_passes_gymnasium_checker(name, registered_envs):
    env = gym.make(gym_id(name)).unwrapped
    check_env(env, skip_render_check=True)
    env.close()
