"""Figures are written as PNG and PDF, each atomically (a reader never sees half a file)."""

import os

from ptdit.atomic import atomic_write


def save_figure(fig, out_dir, name, dpi=150):
    """<out_dir>/<name>.png and .pdf; closes the figure; returns the paths."""
    import matplotlib.pyplot as plt

    paths = []
    for ext in ("png", "pdf"):
        path = os.path.join(out_dir, f"{name}.{ext}")
        atomic_write(path, lambda tmp, ext=ext: fig.savefig(tmp, format=ext, dpi=dpi, bbox_inches="tight"))
        paths.append(path)
    plt.close(fig)
    return paths
