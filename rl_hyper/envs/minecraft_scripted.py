"""Scripted policies for MC-LS (envs/minecraft.py): the maze's known returns, and frames to look at.

`scripted_returns(policy, trials, seed)` plays scripted policies through `TrialWrapper`:
"optimal" (reads the indicator view and remembers it) or "memoryless" (acts on the current view
only, so it turns at random at the end).
Optimal: 13.7 per episode, 27.4 per trial; memoryless: 10.2 per episode in expectation.
"""

from __future__ import annotations

import numpy as np

from rl_hyper.envs.minecraft import DOWN, FORWARD, LEFT, RIGHT, UP, MinecraftMaze
from rl_hyper.envs.trial import INFO_INNER_EPISODE, TrialWrapper

SCRIPTED_POLICIES = ("optimal", "memoryless")


def scripted_action(view: str, remembered_indicator: float | None, rng: np.random.Generator) -> int:
    """The scripted action for `view`; at the end view, turn by the remembered indicator, or at random if None."""
    if view.startswith("indicator_"):
        return RIGHT
    if view.startswith("choice_diamond_"):
        return LEFT if view.endswith("left") else RIGHT
    if view.startswith("lane_end_"):
        return RIGHT if view.endswith("left") else LEFT
    if view == "end":
        if remembered_indicator is None:
            return int(rng.choice((LEFT, RIGHT)))
        return RIGHT if remembered_indicator == UP else LEFT
    return FORWARD


def scripted_returns(policy: str = "optimal", trials: int = 1, seed: int = 0) -> dict[str, np.ndarray]:
    """Play `trials` MC-LS trials with a scripted policy through `TrialWrapper`.

    policy: "optimal" remembers the indicator view it saw; "memoryless" sees only the current view.
    Returns {"episode_returns": float64 (trials, 2), "trial_returns": float64 (trials,)}, summed
    in float64 from the per-step rewards.
    """
    if policy not in SCRIPTED_POLICIES:
        raise ValueError(f"unknown scripted policy {policy!r}; choose from {SCRIPTED_POLICIES}")
    env = TrialWrapper(MinecraftMaze())
    rng = np.random.default_rng(seed)
    episode_returns = np.zeros((trials, env.episodes_per_trial))
    for trial in range(trials):
        _, info = env.reset(seed=seed if trial == 0 else None)
        remembered = None
        done = False
        while not done:
            view = env.task_env.view_name()
            if policy == "optimal" and view.startswith("indicator_"):
                remembered = UP if view == "indicator_up" else DOWN
            inner_episode = info[INFO_INNER_EPISODE]  # the episode the current view belongs to
            _, reward, done, _, info = env.step(scripted_action(view, remembered, rng))
            episode_returns[trial, inner_episode] += reward
    return {"episode_returns": episode_returns, "trial_returns": episode_returns.sum(axis=1)}
