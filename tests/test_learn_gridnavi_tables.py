"""benchmarks/learn_gridnavi.py: the frame-count table reads each seed at the frame count, and a
seed that has not trained that far yet gives no value there (hand-made progress rows)."""

import math

import pandas as pd

from conftest import load_benchmark


def progress(rows: list[tuple[int, int, float]]) -> pd.DataFrame:
    """(seed, frames, eval return) rows of one method; every row evaluated."""
    return pd.DataFrame([{"method": "vi", "seed": seed, "frames": frames, "eval_trial_return": value,
                          "train_trial_return": value - 1} for seed, frames, value in rows])


# seed 1 trained to 3,000 frames; seed 2 is still at 1,500
ROWS = progress([(1, 1000, 2.0), (1, 2000, 4.0), (1, 3000, 10.0), (2, 1000, 6.0), (2, 1500, 8.0)])


def test_each_seed_gives_its_last_evaluation_at_or_before_the_frame_count():
    script = load_benchmark("learn_gridnavi")
    point = script.at_frames(ROWS, 1500)
    assert point["seed"].tolist() == [1, 2]
    assert point["eval_trial_return"].tolist() == [2.0, 8.0]


def test_a_seed_that_has_not_reached_the_frame_count_gives_no_value_there():
    script = load_benchmark("learn_gridnavi")
    point = script.at_frames(ROWS, 3000)
    assert point["seed"].tolist() == [1]  # seed 2's 8.0 at 1,500 frames is not its value at 3,000
    assert point["eval_trial_return"].tolist() == [10.0]
    # window (1,001, 3,000]: seed 1's 4.0 and 10.0; seed 2 is left out
    assert script.window_mean(ROWS, 3000, 2000) == 7.0
    assert math.isnan(script.window_mean(ROWS, 4000, 2000))


def test_the_table_leaves_out_frame_counts_no_seed_reached():
    table = load_benchmark("learn_gridnavi").results_table(ROWS, ["vi"], [1500, 3000, 4000])
    rows = [line for line in table.splitlines() if line.startswith("| vi |")]
    assert [row.split(" | ")[1] for row in rows] == ["1,500", "3,000"]
    assert "| 1,500 | 5.00 | 1: 2.00 / 2: 8.00 |" in rows[0]
