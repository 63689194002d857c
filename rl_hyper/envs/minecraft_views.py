"""MC-LS's frames (the maze itself is envs/minecraft.py): the views, rendered or loaded from files,
and the observation made of one.

Views (`VIEW_NAMES`, 18): indicator_up, indicator_down, door_diamond_{left,right},
choice_diamond_{left,right}, lane_{start,mid}_{left,right}_{diamond,iron}, lane_end_{left,right},
exit, end. <side> is the room's diamond side, <lane> the lane walked, <ore> the ore the lane's
column face shows (the state machine in envs/minecraft.py says which view each state shows).

Observation: the current view as an RGB frame (R, R, 3), R = `resolution` (10 as in the paper,
or 42, 64), flattened row-major to float32 (3 R^2,) and scaled as pixel / 128 - 1, in [-1, 1)
(`frame_to_observation`).
Frames come from a small deterministic ray-caster over block maps with procedurally generated
16x16 Minecraft-style textures (stone bricks, stone, diamond ore, iron ore, oak-plank floor,
spruce door, emerald and redstone indicator blocks, gold end room), drawn at 128 x 128 and
area-downsampled to R x R; each resolution is rendered once per process (`rendered_views`).
`frames_dir=PATH` instead loads real frames from PATH, in either of two layouts (detected):
  - this project's: `PATH/<view name>.png` for every view above;
  - the original MC-LS data (AMRL, ICLR 2020, reused by jacooba/hyper as
    `mine_maze_data/<size>_resolution/`): `green.png`, `red.png`, `end.png` and folders `room0/`,
    `room1/` with one PNG per position in a room, named `x,y.png`. Mapped as `AMRL_FILES` lists:
        green.png / red.png          indicator_up / indicator_down (green = UP: turn right at the end)
        end.png                      end
        room<t>/0,0.png              door_diamond_<side>        t = 0: side left (the left lane is
        room<t>/0,1.png              choice_diamond_<side>             rewarded); t = 1: side right
        room<t>/-1,1.png / 1,1.png   lane_start_left_<ore> / lane_start_right_<ore>
        room<t>/-1,2.png / 1,2.png   lane_mid_left_<ore> / lane_mid_right_<ore>
                                     (<ore> = diamond on the lane of side <side>, else iron)
        room0/-1,3.png / 1,3.png     lane_end_left / lane_end_right
        room0/0,3.png                exit
    x is the lane (-1 left, 0 centre, +1 right) and y the row: left / right from the choice
    (0,1) enter a lane at (+-1,1), forward walks it to (+-1,3), the turn towards the centre leads
    to (0,3), and forward from there enters the next room: the state machine of envs/minecraft.py,
    position by position (DOOR, CHOICE, LANE_START, LANE_MID, LANE_END, EXIT). That state machine
    shows one view at a lane's end and at the exit whatever the room type (the renderer's views
    there see no ore), so room1's -1,3 / 1,3 / 0,3 files and `end_extra.png` are not read. The
    original code reverses each image's rows when it reads it; here a file is used as stored (a
    fixed permutation of the observation vector, which a fully connected state embedding learns
    from alike).
Each file must be a readable square image (any mode Pillow converts to RGB) with side >= R; it is
area-resized to R x R. A directory in neither layout, or a missing, unreadable or wrongly sized
file, raises ValueError naming the file.
"""

from __future__ import annotations

import functools
import os

import numpy as np
from PIL import Image

SIDES = ("left", "right")  # of a room: the lanes, and where its diamond ore is
RESOLUTIONS = (10, 42, 64)
RENDER_SIZE = 128
TEXTURE_SIZE = 16


# ---------------------------------------------------------------- textures (16 x 16 x 3 uint8)

def _noise(seed: int, base: tuple[int, int, int], spread: int) -> np.ndarray:
    """A block face of colour `base` with per-pixel brightness noise of +-`spread`."""
    rng = np.random.default_rng(seed)
    shade = rng.integers(-spread, spread + 1, (TEXTURE_SIZE, TEXTURE_SIZE, 1))
    return np.clip(np.array(base)[None, None, :] + shade, 0, 255)


def _ore(seed: int, colour: tuple[int, int, int]) -> np.ndarray:
    """Stone with five 3x3 clusters of `colour` (a dark rim on their lower-right edge)."""
    texture = _noise(seed, (125, 125, 125), 14)
    rng = np.random.default_rng(seed + 100)
    for _ in range(5):
        y, x = rng.integers(0, TEXTURE_SIZE - 3, 2)
        texture[y:y + 3, x:x + 3] = colour
        texture[y + 2, x:x + 3] = np.array(colour) * 0.6
        texture[y:y + 3, x + 2] = np.array(colour) * 0.6
        texture[y + 1, x + 1] = np.minimum(np.array(colour) + 40, 255)
    return texture


def _planks(seed: int, base: tuple[int, int, int], vertical: bool) -> np.ndarray:
    """Wooden planks 4 pixels wide with dark seams and staggered butt joints."""
    texture = _noise(seed, base, 10)
    seam = (np.array(base) * 0.55).astype(int)
    for k in range(0, TEXTURE_SIZE, 4):
        texture[k + 3, :] = seam
        texture[k:k + 3, (5 * k + 3) % TEXTURE_SIZE] = seam
    return texture.transpose(1, 0, 2) if vertical else texture


def _stone_bricks(seed: int) -> np.ndarray:
    """Stone bricks: 8x4 bricks, grey mortar, alternate courses offset by half a brick."""
    texture = _noise(seed, (122, 122, 122), 10)
    for row in range(0, TEXTURE_SIZE, 4):
        texture[row + 3, :] = (78, 78, 78)
        offset = 0 if row % 8 == 0 else 4
        texture[row:row + 3, offset] = (78, 78, 78)
        texture[row:row + 3, offset + 8] = (78, 78, 78)
    return texture


def _block(seed: int, base: tuple[int, int, int], spread: int) -> np.ndarray:
    """A storage-block face (emerald, redstone, gold): a bright inner square and a dark frame."""
    texture = _noise(seed, base, spread)
    texture[[0, -1], :] = np.array(base) * 0.6
    texture[:, [0, -1]] = np.array(base) * 0.6
    texture[4:12, 4:12] = np.minimum(texture[4:12, 4:12] * 1.2, 255)
    return texture


def _door(seed: int) -> np.ndarray:
    """A spruce door: vertical planks, a frame and an iron handle."""
    texture = _planks(seed, (112, 80, 48), vertical=True)
    texture[[0, -1], :] = (70, 48, 28)
    texture[:, [0, -1]] = (70, 48, 28)
    texture[8:10, 11:13] = (200, 200, 200)
    return texture


@functools.lru_cache(maxsize=None)
def _textures() -> dict[str, np.ndarray]:
    """Map character -> texture (16, 16, 3) float32 in [0, 255]; '_' floor, '^' ceiling."""
    textures = {
        "#": _stone_bricks(1),
        "d": _ore(2, (92, 228, 222)),    # diamond ore
        "i": _ore(3, (222, 170, 132)),   # iron ore
        "D": _door(4),
        "g": _block(5, (48, 205, 92), 18),   # emerald block: indicator UP
        "r": _block(6, (190, 28, 20), 18),   # redstone block: indicator DOWN
        "G": _block(7, (246, 208, 61), 14),  # gold block: end room
        "_": _planks(8, (162, 130, 78), vertical=False),  # oak floor
        "^": _noise(9, (95, 95, 95), 12),    # stone ceiling
    }
    return {key: value.astype(np.float32) for key, value in textures.items()}


# ---------------------------------------------------------------- block maps and camera poses

# Top-down maps, row 0 north; '.' is air, every other character a block (see `_textures`); the
# placeholders L / R (column faces) and X (indicator) are replaced per view. The camera always
# looks north (-row); its position is (x, y) in cells from the map's top-left corner.
ROOM_MAP = (
    "##DD##",
    "#....#",
    "#....#",
    "#.LR.#",
    "#.LR.#",
    "#....#",
    "##..##",
    "##..##",
    "##..##",
    "######",
)
INDICATOR_MAP = (
    "#######",
    "###X###",
    "#.....#",
    "#.....#",
    "#.....#",
    "#######",
)
END_MAP = (
    "#######",
    "GGGGGGG",
    "G.....G",
    "###.###",
    "###.###",
    "###.###",
    "#######",
)
LANE_X = {"left": 1.5, "right": 4.5}  # camera x in each lane
LANE_Y = {"start": 5.5, "mid": 4.5, "end": 2.5}  # camera y at each position in a lane


def _other_side(side: str) -> str:
    return "right" if side == "left" else "left"


def _room_map(diamond_side: str) -> tuple[str, ...]:
    left, right = ("d", "i") if diamond_side == "left" else ("i", "d")
    return tuple(row.replace("L", left).replace("R", right) for row in ROOM_MAP)


def _view_table() -> dict[str, tuple[tuple[str, ...], float, float]]:
    """Every named view -> (block map, camera x, camera y)."""
    views = {
        "indicator_up": (tuple(row.replace("X", "g") for row in INDICATOR_MAP), 3.5, 3.5),
        "indicator_down": (tuple(row.replace("X", "r") for row in INDICATOR_MAP), 3.5, 3.5),
    }
    for side in SIDES:
        views[f"door_diamond_{side}"] = (_room_map(side), 3.0, 8.5)
        views[f"choice_diamond_{side}"] = (_room_map(side), 3.0, 5.7)
    for lane in SIDES:
        for ore, diamond_side in (("diamond", lane), ("iron", _other_side(lane))):
            for position in ("start", "mid"):
                views[f"lane_{position}_{lane}_{ore}"] = (_room_map(diamond_side), LANE_X[lane], LANE_Y[position])
        views[f"lane_end_{lane}"] = (_room_map("left"), LANE_X[lane], LANE_Y["end"])
    views["exit"] = (_room_map("left"), 3.0, 2.6)
    views["end"] = (END_MAP, 3.5, 4.2)
    return views


VIEWS = _view_table()
VIEW_NAMES = tuple(VIEWS)


# ---------------------------------------------------------------- ray-caster

def _raycast(block_map: tuple[str, ...], x: float, y: float, size: int = RENDER_SIZE) -> np.ndarray:
    """First-person view looking north from (x, y): uint8 (size, size, 3), 90 degree field of view.

    Walls are one cell high with the eye at half height; the floor and ceiling are texture-mapped;
    east/west faces are darkened (as Minecraft shades block sides) and light falls off with distance.
    """
    textures = _textures()
    camera = (np.arange(size) + 0.5) * 2.0 / size - 1.0  # (size,) screen x in [-1, 1]
    ray_x, ray_y = camera, -np.ones(size)                  # ray direction per column (unnormalised)
    rows = np.arange(size) + 0.5

    # Floor (lower half) and ceiling (upper half): distance of each row, world point per pixel.
    half = size / 2.0
    row_distance = half / np.abs(rows - half)                     # (size,)
    world_x = x + row_distance[:, None] * ray_x[None, :]          # (size, size)
    world_y = y + row_distance[:, None] * ray_y[None, :]
    u = ((world_x % 1.0) * TEXTURE_SIZE).astype(int)
    v = ((world_y % 1.0) * TEXTURE_SIZE).astype(int)
    floor = rows[:, None] > half
    image = np.where(floor[..., None], textures["_"][v, u], textures["^"][v, u])
    image *= np.exp(-0.12 * row_distance)[:, None, None]

    for column in range(size):
        distance, side, cell, wall_u = _cast_ray(block_map, x, y, ray_x[column], ray_y[column])
        height = size / distance
        top = half - height / 2.0
        visible = (rows >= top) & (rows < top + height)
        tex_v = ((rows[visible] - top) / height * TEXTURE_SIZE).astype(int).clip(0, TEXTURE_SIZE - 1)
        tex_u = min(int(wall_u * TEXTURE_SIZE), TEXTURE_SIZE - 1)
        light = (0.75 if side == "x" else 1.0) * np.exp(-0.12 * distance)
        image[visible, column] = textures[cell][tex_v, tex_u] * light
    return np.clip(image, 0, 255).astype(np.uint8)


def _cast_ray(block_map, x: float, y: float, ray_x: float, ray_y: float) -> tuple[float, str, str, float]:
    """Grid traversal to the first block: (perpendicular distance, 'x' or 'y' face, block, u in [0, 1))."""
    cell_x, cell_y = int(x), int(y)
    step_x, step_y = (1 if ray_x > 0 else -1), (1 if ray_y > 0 else -1)
    delta_x = abs(1.0 / ray_x) if ray_x != 0 else np.inf
    delta_y = abs(1.0 / ray_y) if ray_y != 0 else np.inf
    next_x = ((cell_x + 1 - x) if ray_x > 0 else (x - cell_x)) * delta_x
    next_y = ((cell_y + 1 - y) if ray_y > 0 else (y - cell_y)) * delta_y
    while True:
        if next_x < next_y:
            cell_x, distance, side = cell_x + step_x, next_x, "x"
            next_x += delta_x
        else:
            cell_y, distance, side = cell_y + step_y, next_y, "y"
            next_y += delta_y
        block = block_map[cell_y][cell_x]
        if block != ".":
            hit = y + distance * ray_y if side == "x" else x + distance * ray_x
            return distance, side, block, hit % 1.0


def _downsample(image: np.ndarray, resolution: int) -> np.ndarray:
    """Area-resize an RGB uint8 image to (resolution, resolution, 3)."""
    return np.asarray(Image.fromarray(image).resize((resolution, resolution), Image.BOX), np.uint8)


@functools.lru_cache(maxsize=None)
def rendered_views(resolution: int = 10) -> dict[str, np.ndarray]:
    """Every view rendered by the built-in ray-caster: name -> read-only uint8 (R, R, 3)."""
    if resolution not in RESOLUTIONS:
        raise ValueError(f"MC-LS resolution must be one of {RESOLUTIONS}, got {resolution}")
    views = {}
    for name, (block_map, x, y) in VIEWS.items():
        frame = _downsample(_raycast(block_map, x, y), resolution)
        frame.flags.writeable = False
        views[name] = frame
    return views


def _amrl_files() -> dict[str, str]:
    """View name -> the file of the original MC-LS data holding it (path relative to its folder)."""
    files = {"indicator_up": "green.png", "indicator_down": "red.png", "end": "end.png"}
    room_types = {0: "left", 1: "right"}  # room type -> diamond side (the rewarded lane)
    for room_type, diamond_side in room_types.items():
        files[f"door_diamond_{diamond_side}"] = f"room{room_type}/0,0.png"
        files[f"choice_diamond_{diamond_side}"] = f"room{room_type}/0,1.png"
    for lane, x in (("left", -1), ("right", 1)):
        for room_type, diamond_side in room_types.items():
            ore = "diamond" if lane == diamond_side else "iron"
            files[f"lane_start_{lane}_{ore}"] = f"room{room_type}/{x},1.png"
            files[f"lane_mid_{lane}_{ore}"] = f"room{room_type}/{x},2.png"
        files[f"lane_end_{lane}"] = f"room0/{x},3.png"
    files["exit"] = "room0/0,3.png"
    return {name: files[name] for name in VIEW_NAMES}


AMRL_FILES = _amrl_files()
_AMRL_MARKERS = ("green.png", "red.png", "room0", "room1")  # names the other layout does not use


def frames_layout(frames_dir: str) -> str:
    """Which layout `frames_dir` holds: "views" (<view name>.png) or "amrl" (green.png, room0/, ...)."""
    if not os.path.isdir(frames_dir):
        raise ValueError(f"MC-LS frames_dir: {frames_dir} is not a directory")
    entries = set(os.listdir(frames_dir))
    if any(f"{name}.png" in entries for name in VIEW_NAMES if name != "end"):
        return "views"
    if any(marker in entries for marker in _AMRL_MARKERS):
        return "amrl"
    nested = sorted(entry for entry in entries if entry.endswith("_resolution"))
    hint = f"; it has {', '.join(nested)}: pass one of those folders" if nested else ""
    raise ValueError(f"MC-LS frames_dir: {frames_dir} holds neither frame layout: expected one PNG per view "
                     f"({', '.join(f'{name}.png' for name in VIEW_NAMES)}) or the original MC-LS data "
                     f"(green.png, red.png, end.png, room0/, room1/ with x,y.png per position){hint}")


def load_views(frames_dir: str, resolution: int = 10) -> dict[str, np.ndarray]:
    """Load every view from `frames_dir` in either layout (`frames_layout`): name -> uint8 (R, R, 3).

    ValueError naming the file when one is missing, unreadable or not a square of side >= R.
    """
    if resolution not in RESOLUTIONS:
        raise ValueError(f"MC-LS resolution must be one of {RESOLUTIONS}, got {resolution}")
    if frames_layout(frames_dir) == "amrl":
        files, layout = AMRL_FILES, "original MC-LS layout: green.png, red.png, end.png, room0/ and room1/ with x,y.png"
    else:
        files, layout = {name: f"{name}.png" for name in VIEW_NAMES}, f"one PNG per view: {', '.join(VIEW_NAMES)}"
    views = {}
    for name, relative in files.items():
        path = os.path.join(frames_dir, relative)
        if not os.path.isfile(path):
            raise ValueError(f"MC-LS frames_dir: missing {relative} for view {name} ({path}; {layout})")
        try:
            with Image.open(path) as image:
                rgb = np.asarray(image.convert("RGB"), np.uint8)
        except OSError as error:
            raise ValueError(f"MC-LS frames_dir: cannot read view image {path}: {error}") from error
        height, width = rgb.shape[:2]
        if height != width or height < resolution:
            raise ValueError(f"MC-LS frames_dir: view image {path} is {width}x{height}; "
                             f"it must be square with side >= {resolution}")
        views[name] = _downsample(rgb, resolution)
    return views


def view_images(resolution: int = 10, frames_dir: str | None = None) -> dict[str, np.ndarray]:
    """The frames the agent sees, per view name: uint8 (R, R, 3) (rendered, or loaded from frames_dir)."""
    return load_views(frames_dir, resolution) if frames_dir else rendered_views(resolution)


def frame_to_observation(frame: np.ndarray) -> np.ndarray:
    """uint8 (R, R, 3) -> read-only float32 (3 R^2,) in [-1, 1): pixel / 128 - 1."""
    observation = frame.reshape(-1).astype(np.float32) / 128.0 - 1.0
    observation.flags.writeable = False
    return observation
