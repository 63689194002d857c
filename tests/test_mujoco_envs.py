"""MuJoCo task envs against PAPER_SPEC section 4: sizes, trial lengths, rewards, termination, physics."""

import math

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from rl_hyper.envs.mujoco import AntDir, CheetahDir, CheetahVel, WalkerRandParams
from rl_hyper.envs.registry import get_entry, make_trial_env

# name: (task obs dim, action dim, episodes per trial, task descriptor dim)
SPEC = {
    "CheetahDir": (20, 6, 1, 1),
    "CheetahVel": (20, 6, 1, 1),
    "AntDir": (27, 8, 1, 2),
    "WalkerRandParams": (17, 6, 2, 65),
}


def rollout(env, actions, seed):
    """Reset with `seed`, apply `actions`; returns (observations (T+1, S), list of (reward, info))."""
    obs, _ = env.reset(seed=seed)
    observations, steps = [obs], []
    for action in actions:
        obs, reward, terminated, _, info = env.step(action)
        observations.append(obs)
        steps.append((reward, info))
        if terminated:
            break
    return np.array(observations), steps


def random_actions(size, count, seed=0):
    return np.random.default_rng(seed).uniform(-1.0, 1.0, (count, size))


@pytest.mark.parametrize("name", list(SPEC))
def test_sizes_and_trial_length(name):
    obs_dim, act_dim, episodes, task_dim = SPEC[name]
    assert get_entry(name).family == "mujoco"
    env = make_trial_env(name)
    assert env.task_env.observation_space.shape == (obs_dim,)
    assert env.action_space.shape == (act_dim,)
    assert env.episodes_per_trial == episodes and env.max_episode_steps == 200
    assert env.trial_length == 200 * episodes
    assert env.observation_space.shape == (obs_dim + (1 if episodes > 1 else 0) + act_dim + 1,)
    obs, info = env.reset(seed=0)
    assert obs.shape == env.observation_space.shape and info["task"].shape == (task_dim,)
    obs, *_ = env.step(env.action_space.sample())
    assert obs.dtype == np.float32


@pytest.mark.parametrize("name", list(SPEC))
def test_check_env_on_trial_env(name):
    check_env(make_trial_env(name), skip_render_check=True)


@pytest.mark.parametrize("direction", [1.0, -1.0])
def test_cheetah_dir_reward(direction):
    env = CheetahDir()
    env.set_task(direction)
    env.reset(seed=1)
    for action in random_actions(6, 15):
        x_before = env.sim.data.qpos[0]
        obs, reward, terminated, _, info = env.step(action)
        v_x = (env.sim.data.qpos[0] - x_before) / 0.05
        assert info["x_velocity"] == pytest.approx(v_x, abs=1e-9)
        assert reward == pytest.approx(direction * v_x - 0.05 * np.sum(action**2), abs=1e-9)
        np.testing.assert_allclose(obs[17:], env.sim.data.body("torso").xpos, atol=1e-6)  # torso xyz
        assert not terminated


def test_cheetah_vel_reward_and_tasks():
    env = CheetahVel()
    targets = [env.sample_task(np.random.default_rng(seed)) for seed in range(50)]
    assert min(targets) >= 0.0 and max(targets) <= 3.0 and max(targets) - min(targets) > 1.5
    env.set_task(1.7)
    np.testing.assert_array_equal(env.task_descriptor(), np.array([1.7], np.float32))
    actions = random_actions(6, 15)
    _, steps = rollout(env, actions, seed=2)
    for t, (reward, info) in enumerate(steps):
        expected = -abs(info["x_velocity"] - 1.7) - 0.05 * np.sum(actions[t] ** 2)
        assert reward == pytest.approx(expected, abs=1e-9)


def test_ant_dir_reward():
    env = AntDir()
    env.set_task(1.0)
    np.testing.assert_allclose(env.task_descriptor(), [math.cos(1.0), math.sin(1.0)], atol=1e-6)
    actions = random_actions(8, 15)
    env.reset(seed=3)
    for action in actions:
        before = env.sim.data.body("torso").xpos[:2].copy()
        _, reward, terminated, _, info = env.step(action)
        velocity = (env.sim.data.body("torso").xpos[:2] - before) / 0.05
        np.testing.assert_allclose([info["x_velocity"], info["y_velocity"]], velocity, atol=1e-9)
        contact = 5e-4 * np.sum(np.clip(env.sim.data.cfrc_ext, -1.0, 1.0) ** 2)
        expected = velocity @ [math.cos(1.0), math.sin(1.0)] - 0.5 * np.sum(action**2) - contact + 1.0
        assert reward == pytest.approx(expected, abs=1e-9)
        if terminated:
            break


def terminates_from_pose(env, qpos_index: int, value: float) -> bool:
    """Reset, set qpos[qpos_index] = value at rest, take one zero action: did the env terminate?"""
    env.reset(seed=0)
    qpos = env.sim.init_qpos.copy()
    qpos[qpos_index] = value
    env.sim.set_state(qpos, np.zeros_like(env.sim.init_qvel))
    _, _, terminated, _, _ = env.step(np.zeros(env.action_space.shape))
    return terminated


def test_ant_dir_angle_sets_and_termination():
    rng = np.random.default_rng(0)
    assert {AntDir().sample_task(rng) for _ in range(40)} == {-1.0, 1.0}
    paper = AntDir(angles=(0.0, math.pi))
    assert {paper.sample_task(rng) for _ in range(40)} == {0.0, math.pi}
    paper.set_task(math.pi)
    np.testing.assert_allclose(paper.task_descriptor(), [-1.0, 0.0], atol=1e-6)
    assert terminates_from_pose(paper, qpos_index=2, value=1.3)  # torso lifted above 1.0


def test_walker_model_timestep_friction_and_coefficients():
    env = WalkerRandParams()
    model = env.sim.model
    assert env.sim.dt == pytest.approx(0.016)
    assert model.opt.timestep == pytest.approx(0.004) and env.sim.frame_skip == 4
    assert model.geom_friction[model.geom("foot_geom").id, 0] == pytest.approx(0.9)
    assert model.geom_friction[model.geom("foot_left_geom").id, 0] == pytest.approx(1.9)
    assert (model.body_mass.size, model.body_inertia.size, model.dof_damping.size, model.geom_friction.size) == (8, 24, 9, 24)
    assert env.task_dim == 65
    task = env.sample_task(np.random.default_rng(0))
    env.set_task(task)
    descriptor = env.task_descriptor()
    assert descriptor.shape == (65,) and descriptor.min() >= -3.0 and descriptor.max() <= 3.0


def test_walker_reward_and_termination():
    env = WalkerRandParams()
    actions = random_actions(6, 15)
    obs, steps = rollout(env, actions, seed=4)
    for t, (reward, info) in enumerate(steps):
        assert reward == pytest.approx(info["x_velocity"] + 1.0 - 1e-3 * np.sum(actions[t] ** 2), abs=1e-9)
    assert np.all(np.abs(obs[:, 8:]) <= 10.0)  # clipped qvel
    assert terminates_from_pose(env, qpos_index=2, value=1.05)  # |torso angle| >= 1


def test_walker_physics_follow_the_task_and_do_not_leak():
    env = WalkerRandParams()
    model = env.sim.model
    defaults = {"body_mass": model.body_mass.copy(), "dof_damping": model.dof_damping.copy(),
                "geom_friction": model.geom_friction.copy()}
    task_a = env.sample_task(np.random.default_rng(1))
    task_b = env.sample_task(np.random.default_rng(2))
    assert env.sample_task(np.random.default_rng(1))["body_mass"].tolist() == task_a["body_mass"].tolist()

    env.set_task(task_b)
    env.set_task(task_a)  # multipliers apply to the defaults, not to task b's values
    np.testing.assert_allclose(model.body_mass, defaults["body_mass"] * 1.5 ** task_a["body_mass"])
    np.testing.assert_allclose(model.dof_damping, defaults["dof_damping"] * 1.3 ** task_a["dof_damping"])
    np.testing.assert_allclose(model.geom_friction, defaults["geom_friction"] * 1.5 ** task_a["geom_friction"])

    actions = random_actions(6, 25)
    fresh = WalkerRandParams()
    fresh.set_task(task_a)
    obs_a, _ = rollout(fresh, actions, seed=5)
    fresh.set_task(task_b)
    obs_b, _ = rollout(fresh, actions, seed=5)
    fresh.set_task(task_a)
    obs_a_again, _ = rollout(fresh, actions, seed=5)
    assert not np.allclose(obs_a[-1], obs_b[-1])  # the physics took effect
    np.testing.assert_array_equal(obs_a, obs_a_again)  # task b left nothing behind


def test_trial_wrapper_walker_plays_two_inner_episodes():
    env = make_trial_env("WalkerRandParams")
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    done, steps, info = False, 0, {}
    while not done:
        _, _, done, _, info = env.step(rng.uniform(-1, 1, 6))
        steps += 1
    assert info["inner_episode"] == 1 and info["inner_returns"].shape == (2,)
    assert steps <= 400
