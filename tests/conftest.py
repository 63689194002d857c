"""Shared fixtures: one loopback Ray instance per test session, started and stopped here."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def ray_session():
    """A local Ray on loopback for the whole session; shut down only if this fixture started it."""
    import ray

    from rl_hyper.envs.registry import register_all
    from rl_hyper.training.run import init_ray

    started = not ray.is_initialized()
    init_ray(num_cpus=2, include_dashboard=False)
    register_all()
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture(scope="session")
def registered_envs():
    """Every env registered with gymnasium and Ray's registry (no Ray start needed)."""
    from rl_hyper.envs.registry import register_all

    register_all()
