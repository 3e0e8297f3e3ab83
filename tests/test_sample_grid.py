"""Sample grids: row r holds the samples of the r-th class, in file order; the figure is written."""

import numpy as np
from PIL import Image

from evaluation.report.sample_grid import grid_array, main


def test_grid_rows_are_classes(tmp_path):
    images = np.zeros((6, 2, 2, 3), np.uint8)
    images[:, :, :, 0] = np.arange(6)[:, None, None] * 10   # image i has red value 10 i
    labels = np.array([3, 1, 3, 1, 1, 7])
    grid = grid_array(images, labels, per_class=3, pad=1)
    assert grid.shape == (3 * 3 + 1, 3 * 3 + 1, 3)
    red = grid[1::3, 1::3, 0]                                # top-left pixel of every cell
    assert red.tolist() == [[10, 30, 40], [0, 20, 128], [50, 128, 128]]   # classes 1, 3, 7; grey = none
    np.savez(tmp_path / "s.npz", images, labels)
    main(["grid", str(tmp_path / "s.npz"), str(tmp_path / "s.png")])
    main(["figure", str(tmp_path / "f.png"), f"row a={tmp_path / 's.png'}", f"row b={tmp_path / 's.png'}"])
    assert Image.open(tmp_path / "s.png").size == (2 * 25, 2 * 10)  # 8 columns, 3 classes, scale 2
    assert Image.open(tmp_path / "f.png").width > 100
