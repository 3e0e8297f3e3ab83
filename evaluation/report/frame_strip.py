"""Frame strips: video samples laid out frame by frame, so a reader sees what the numbers are about.

save_strips(path, columns, row_names, captions=None) writes one PNG: a row per class (or caption), a
column per source of clips ("real" first, then each model of the table), each cell the clip's frames side
by side at their own pixels (nearest-neighbour, no smoothing), the caption under its row when given.
Shared by the video tables (issue 17) and, one frame per cell, image samples (issue 15).
"""

import numpy as np

from ptdit.atomic import atomic_write


def strip(clip, gap=1, fill=255):
    """uint8 [F, H, W, 3] -> uint8 [H, F * W + (F - 1) * gap, 3]: the frames left to right."""
    clip = np.asarray(clip)
    if clip.dtype != np.uint8 or clip.ndim != 4 or clip.shape[-1] != 3:
        raise ValueError(f"expected a uint8 clip [F, H, W, 3], got {clip.dtype} {clip.shape}")
    f, h, w, _ = clip.shape
    out = np.full((h, f * w + (f - 1) * gap, 3), fill, dtype=np.uint8)
    for k in range(f):
        out[:, k * (w + gap): k * (w + gap) + w] = clip[k]
    return out


def save_strips(path, columns, row_names, captions=None, scale=3):
    """columns: {title: uint8 clips [R, F, H, W, 3]} (R = len(row_names), all the same shape); captions:
    None or R strings printed under the rows. Written atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    titles = list(columns)
    rows = len(row_names)
    for title in titles:
        if len(columns[title]) != rows:
            raise ValueError(f"column {title!r} has {len(columns[title])} clips for {rows} rows")
    cells = [[strip(columns[t][r]) for t in titles] for r in range(rows)]
    h, w = cells[0][0].shape[:2]
    text_h = 0.35 if captions is not None else 0.0
    inch = scale * 1.0 / 72 * 1.0  # scale pixels per clip pixel at 72 dpi
    fig, axes = plt.subplots(rows, len(titles), squeeze=False,
                             figsize=(len(titles) * (w * inch + 0.15) + 1.3, rows * (h * inch + 0.12 + text_h) + 0.4))
    for r in range(rows):
        for c, title in enumerate(titles):
            ax = axes[r][c]
            ax.imshow(cells[r][c], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(title, fontsize=9)
            if c == 0:
                ax.set_ylabel(row_names[r], fontsize=8, rotation=0, ha="right", va="center")
        if captions is not None:
            axes[r][0].text(0, -0.18, captions[r], transform=axes[r][0].transAxes, fontsize=7, va="top",
                            ha="left", style="italic")
    fig.tight_layout()

    def write(tmp):
        fig.savefig(tmp, format="png", dpi=72)
    try:
        atomic_write(path, write)
    finally:
        plt.close(fig)
    return path
