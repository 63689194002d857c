"""MC-LS: the state machine's rewards and lengths (PAPER_SPEC section 4), the renderer, frames_dir."""

import os

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from PIL import Image

from rl_hyper.envs import minecraft_views
from rl_hyper.envs.minecraft import MinecraftMaze
from rl_hyper.envs.minecraft_scripted import scripted_returns
from rl_hyper.envs.registry import get_entry, make_trial_env

LEFT, FORWARD, RIGHT = 0, 1, 2


def walk_to_end(maze: MinecraftMaze) -> tuple[int, float]:
    """Walk the spec's route from the indicator to the end frame; returns (steps, summed reward).

    Room types are read from the env state, so this does not rely on the env's views.
    """
    steps, total = 0, 0.0
    route = [RIGHT]  # leave the indicator
    for room in range(16):
        side = int(maze.diamond_sides[room])
        # enter, pick the diamond side, walk forward twice, step back to the centre, into the next room
        route += [FORWARD, side, FORWARD, FORWARD, RIGHT if side == LEFT else LEFT, FORWARD]
    for action in route:
        _, reward, terminated, _, _ = maze.step(action)
        assert not terminated
        steps += 1
        total += reward
    assert maze.view_name() == "end"
    return steps, total


def test_registry_entry_and_sizes():
    assert get_entry("MC-LS").family == "minecraft"
    env = make_trial_env("MC-LS")
    assert env.task_env.observation_space.shape == (300,)  # 10 x 10 RGB
    assert env.action_space.n == 3
    assert env.episodes_per_trial == 2 and env.max_episode_steps == 200
    assert env.trial_length == 400
    assert env.observation_space.shape == (300 + 1 + 3 + 1,)


@pytest.mark.parametrize("indicator", [1.0, -1.0])
def test_optimal_route_is_98_steps_and_13_7(indicator):
    maze = MinecraftMaze()
    maze.set_task(indicator)
    maze.reset(seed=3)
    steps, total = walk_to_end(maze)
    _, reward, terminated, _, _ = maze.step(RIGHT if indicator > 0 else LEFT)
    assert steps + 1 == 98
    assert total + reward == pytest.approx(13.7, abs=1e-9)
    assert terminated


def test_scripted_optimal_scores_27_4_per_trial():
    returns = scripted_returns("optimal", trials=6, seed=0)
    assert returns["episode_returns"].shape == (6, 2)
    np.testing.assert_allclose(returns["episode_returns"], 13.7, atol=1e-9)
    np.testing.assert_allclose(returns["trial_returns"], 27.4, atol=1e-9)


def test_scripted_memoryless_averages_10_2():
    returns = scripted_returns("memoryless", trials=300, seed=1)["episode_returns"]
    outcomes = set(np.round(returns.ravel(), 6))
    assert outcomes == {13.7, 6.7}  # 9.7 from the rooms, then +4 or -3
    assert returns.mean() == pytest.approx(10.2, abs=0.35)  # 600 episodes, std 3.5: 3 standard errors


def test_wrong_actions():
    maze = MinecraftMaze()
    maze.set_task(1.0)
    first, _ = maze.reset(seed=0)
    for action in (LEFT, FORWARD):  # only right leaves the indicator
        obs, reward, terminated, _, _ = maze.step(action)
        assert reward == 0.0 and not terminated and np.array_equal(obs, first)
    door, _, _, _, _ = maze.step(RIGHT)
    obs, reward, _, _, _ = maze.step(LEFT)  # turning at the door does nothing
    assert reward == 0.0 and np.array_equal(obs, door)
    maze.step(FORWARD)
    _, reward, _, _, _ = maze.step(FORWARD)  # walking into the column does nothing
    assert reward == 0.0
    wrong = RIGHT if maze.diamond_sides[0] == LEFT else LEFT
    _, reward, _, _, _ = maze.step(wrong)  # the iron side: no reward, but the walk goes on
    assert reward == 0.0
    _, reward, _, _, _ = maze.step(FORWARD)
    assert reward == pytest.approx(0.1)


@pytest.mark.parametrize("indicator, correct, wrong", [(1.0, RIGHT, LEFT), (-1.0, LEFT, RIGHT)])
def test_end_turn(indicator, correct, wrong):
    for turn, expected in ((correct, 4.0), (wrong, -3.0)):
        maze = MinecraftMaze()
        maze.set_task(indicator)
        maze.reset(seed=0)
        walk_to_end(maze)
        _, reward, terminated, _, _ = maze.step(FORWARD)
        assert reward == 0.0 and not terminated
        _, reward, terminated, _, _ = maze.step(turn)
        assert reward == expected and terminated


def test_timeout_gives_zero_and_ends_the_trial_after_400_steps():
    env = make_trial_env("MC-LS")
    env.reset(seed=0)
    total, steps, done, info = 0.0, 0, False, {}
    while not done:
        _, reward, done, truncated, info = env.step(LEFT)
        total += reward
        steps += 1
        assert not truncated
    assert steps == 400 and total == 0.0
    np.testing.assert_array_equal(info["inner_returns"], [0.0, 0.0])


def test_task_is_the_indicator_and_rooms_are_resampled_each_episode():
    env = make_trial_env("MC-LS")
    seen = set()
    rooms_changed = False
    for seed in range(12):
        _, info = env.reset(seed=seed)
        task = float(info["task"][0])
        seen.add(task)
        assert env.task_env.view_name() == ("indicator_up" if task == 1.0 else "indicator_down")
        first_rooms = env.task_env.diamond_sides.copy()
        done = False
        while not done and info["inner_episode"] == 0:
            _, _, done, _, info = env.step(LEFT)
        rooms_changed |= not np.array_equal(first_rooms, env.task_env.diamond_sides)
    assert seen == {1.0, -1.0}
    assert rooms_changed


def test_check_env_on_trial_env():
    check_env(make_trial_env("MC-LS"), skip_render_check=True)


@pytest.mark.parametrize("resolution", [10, 42, 64])
def test_renderer_shape_range_and_distinct_views(resolution):
    views = minecraft_views.rendered_views(resolution)
    assert len(views) == 18
    for frame in views.values():
        assert frame.shape == (resolution, resolution, 3) and frame.dtype == np.uint8
    maze = MinecraftMaze(resolution=resolution)
    for obs in maze.observations.values():
        assert obs.shape == (3 * resolution**2,) and obs.dtype == np.float32
        assert obs.min() >= -1.0 and obs.max() < 1.0
    flat = np.stack([frame.reshape(-1).astype(int) for frame in views.values()])
    differences = np.abs(flat[:, None] - flat[None]).sum(-1)
    assert np.count_nonzero(differences == 0) == len(flat)  # only each view with itself


def test_renderer_is_deterministic_and_indicators_differ():
    block_map, x, y = minecraft_views.VIEWS["choice_diamond_left"]
    np.testing.assert_array_equal(minecraft_views._raycast(block_map, x, y), minecraft_views._raycast(block_map, x, y))
    views = minecraft_views.rendered_views(10)
    up, down = views["indicator_up"].astype(float), views["indicator_down"].astype(float)
    assert np.abs(up - down).mean() > 10
    # the green block is greener than the red one, the red one redder
    assert up[..., 1].mean() > down[..., 1].mean() and down[..., 0].mean() > up[..., 0].mean()
    left, right = views["choice_diamond_left"].astype(float), views["choice_diamond_right"].astype(float)
    assert np.abs(left - right).mean() > 5


def write_solid_views(directory, size=20):
    """One solid-colour PNG per view; returns name -> colour."""
    colours = {}
    for index, name in enumerate(minecraft_views.VIEW_NAMES):
        colour = (10 * index, 255 - 10 * index, 7 * index)
        Image.fromarray(np.full((size, size, 3), colour, np.uint8)).save(os.path.join(directory, f"{name}.png"))
        colours[name] = colour
    return colours


def test_frames_dir_loads_one_png_per_view(tmp_path):
    colours = write_solid_views(tmp_path)
    maze = MinecraftMaze(resolution=10, frames_dir=str(tmp_path))
    maze.set_task(-1.0)
    obs, _ = maze.reset(seed=0)
    expected = np.tile(np.array(colours["indicator_down"], np.float32) / 128.0 - 1.0, 100)
    np.testing.assert_allclose(obs, expected, atol=1e-6)
    obs, _, _, _, _ = maze.step(RIGHT)
    side = "left" if maze.diamond_sides[0] == LEFT else "right"
    expected = np.tile(np.array(colours[f"door_diamond_{side}"], np.float32) / 128.0 - 1.0, 100)
    np.testing.assert_allclose(obs, expected, atol=1e-6)


def test_frames_dir_missing_file_is_named(tmp_path):
    write_solid_views(tmp_path)
    os.remove(tmp_path / "lane_end_right.png")
    with pytest.raises(ValueError, match="lane_end_right.png"):
        MinecraftMaze(frames_dir=str(tmp_path))


def test_frames_dir_bad_files_are_named(tmp_path):
    write_solid_views(tmp_path)
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "exit.png")
    with pytest.raises(ValueError, match="exit.png"):
        MinecraftMaze(frames_dir=str(tmp_path))
    write_solid_views(tmp_path)
    (tmp_path / "end.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="end.png"):
        MinecraftMaze(frames_dir=str(tmp_path))


# ---------------------------------------------------------------- the original MC-LS data layout

MOVES = {LEFT: (-1, 0), FORWARD: (0, 1), RIGHT: (1, 0)}  # the original's moves: (dx, dy) in a room


def original_layout_files() -> dict[str, str]:
    """File of the original MC-LS data (AMRL / jacooba/hyper) -> the view our state machine shows there.

    Found by walking our state machine with the original's coordinates: a room's door is (0, 0),
    left / right move x by -1 / +1 and forward moves y by +1; room type 0 rewards the left lane,
    type 1 the right one; green is the UP indicator (turn right at the end), red DOWN.
    """
    maze = MinecraftMaze()
    files = {}
    for task, name in ((1.0, "green.png"), (-1.0, "red.png")):
        maze.set_task(task)
        maze.reset(seed=0)
        files[name] = maze.view_name()
    for room_type in (0, 1):
        for lane in (LEFT, RIGHT):
            maze.reset(seed=0)
            maze.diamond_sides[:] = LEFT if room_type == 0 else RIGHT
            maze.step(RIGHT)  # leave the indicator: the door of the first room
            x, y = 0, 0
            files[f"room{room_type}/{x},{y}.png"] = maze.view_name()
            towards_centre = RIGHT if lane == LEFT else LEFT
            for action in (FORWARD, lane, FORWARD, FORWARD, towards_centre):
                _, reward, _, _, _ = maze.step(action)
                if action == lane:  # the choice: rewarded on the room type's lane only
                    assert (reward > 0) == ((room_type, lane) in ((0, LEFT), (1, RIGHT)))
                x, y = x + MOVES[action][0], y + MOVES[action][1]
                files[f"room{room_type}/{x},{y}.png"] = maze.view_name()
            _, reward, _, _, _ = maze.step(FORWARD)  # (0, 3) -> y = 4: the next room's door
            assert reward > 0 and maze.room == 1 and maze.view_name().startswith("door_")
    maze.reset(seed=0)
    walk_to_end(maze)
    files["end.png"] = maze.view_name()
    return files


def write_original_layout(directory, frames: dict[str, np.ndarray]) -> dict[str, str]:
    files = original_layout_files()
    for relative, view in files.items():
        path = directory / relative
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(frames[view]).save(path)
    return files


def test_original_layout_positions_cover_every_view():
    files = original_layout_files()
    rooms = {f"room{t}/{x},{y}.png" for t in (0, 1) for x, y in
             ((0, 0), (0, 1), (-1, 1), (1, 1), (-1, 2), (1, 2), (-1, 3), (1, 3), (0, 3))}
    assert set(files) == {"green.png", "red.png", "end.png"} | rooms
    assert set(files.values()) == set(minecraft_views.VIEW_NAMES)
    for relative, view in minecraft_views.AMRL_FILES.items():  # every file the loader reads shows that view
        assert files[view] == relative


def test_frames_dir_reads_the_original_layout(tmp_path):
    rendered = minecraft_views.rendered_views(10)
    write_original_layout(tmp_path, rendered)
    assert minecraft_views.frames_layout(str(tmp_path)) == "amrl"
    loaded = minecraft_views.load_views(str(tmp_path), 10)
    for name in minecraft_views.VIEW_NAMES:
        np.testing.assert_array_equal(loaded[name], rendered[name], err_msg=name)
    # the same trial seen through the original files and through the renderer
    from_files, drawn = MinecraftMaze(frames_dir=str(tmp_path)), MinecraftMaze()
    rng = np.random.default_rng(0)
    for maze in (from_files, drawn):
        maze.set_task(-1.0)
    np.testing.assert_array_equal(from_files.reset(seed=3)[0], drawn.reset(seed=3)[0])
    for action in rng.integers(0, 3, 300):
        np.testing.assert_array_equal(from_files.step(action)[0], drawn.step(action)[0])


def test_original_layout_missing_file_is_named(tmp_path):
    write_original_layout(tmp_path, minecraft_views.rendered_views(10))
    os.remove(tmp_path / "room1" / "1,2.png")
    with pytest.raises(ValueError, match=r"missing room1/1,2\.png for view lane_mid_right_diamond"):
        MinecraftMaze(frames_dir=str(tmp_path))


def test_frames_dir_in_neither_layout_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="neither frame layout.*indicator_up.png.*green.png"):
        MinecraftMaze(frames_dir=str(tmp_path))
    (tmp_path / "10_resolution").mkdir()
    with pytest.raises(ValueError, match="it has 10_resolution: pass one of those folders"):
        MinecraftMaze(frames_dir=str(tmp_path))
    with pytest.raises(ValueError, match="is not a directory"):
        MinecraftMaze(frames_dir=str(tmp_path / "nope"))
