"""Improved precision and recall (Kynkaanniemi et al. 2019) as the ADM evaluator computes them.

ADM evaluator.py (ManifoldEstimator, DistanceBlock): each set's manifold is the union of balls around
its points, radius = distance to the k-th nearest neighbour within the same set (k = 3; the point
itself, at distance 0, is the 0-th and does not count). precision = share of samples inside the
reference manifold; recall = share of reference points inside the sample manifold; "inside" is
distance <= radius. Distances are squared Euclidean via |u|^2 - 2 u.v + |v|^2 clamped at 0, as ADM's
_batch_pairwise_distances, computed in chunks so no N x N matrix is held. ADM first tries float16
distances and falls back to float32 when they overflow; we always use float32 (torch-fidelity's
metric_prc.py also uses float32), which can flip points that lie on a ball's surface to within
float16 rounding.
"""

import torch


def _as_tensor(x, device):
    return torch.as_tensor(x, dtype=torch.float32, device=device)


def squared_distances(u, v):
    norm_u = (u * u).sum(1, keepdim=True)
    norm_v = (v * v).sum(1, keepdim=True).T
    return (norm_u - 2 * u @ v.T + norm_v).clamp_min(0)


def knn_radii(features, k=3, chunk_size=4096):
    """Squared distance of every point to its k-th nearest neighbour in the same set (self excluded)."""
    n = len(features)
    if n <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} feature vectors per set, got {n}")
    radii = []
    for rows in features.split(chunk_size):
        nearest = None  # running k+1 smallest distances of these rows
        for cols in features.split(chunk_size):
            d = squared_distances(rows, cols)
            if nearest is not None:
                d = torch.cat([nearest, d], 1)
            nearest = d.topk(min(k + 1, d.shape[1]), dim=1, largest=False).values
        radii.append(nearest[:, k])  # sorted ascending; index 0 is the point itself
    return torch.cat(radii)


def inside(points, centres, radii, chunk_size=4096):
    """Per point: within radius of at least one centre (bool tensor)."""
    hits = []
    for rows in points.split(chunk_size):
        hit = torch.zeros(len(rows), dtype=torch.bool, device=rows.device)
        for start in range(0, len(centres), chunk_size):
            cols = centres[start : start + chunk_size]
            d = squared_distances(rows, cols)
            hit |= (d <= radii[start : start + chunk_size][None, :]).any(1)
        hits.append(hit)
    return torch.cat(hits)


def fraction_inside(points, centres, radii, chunk_size=4096):
    """Share of points within radius of at least one centre."""
    return inside(points, centres, radii, chunk_size).double().mean().item()


def precision_recall_indicators(reference_features, sample_features, k=3, chunk_size=4096, device="cpu"):
    """Per sample: inside the reference manifold (precision = its mean); per reference point: inside the
    sample manifold (recall = its mean). Numpy float64 arrays, for the bootstrap intervals."""
    ref, sam = _as_tensor(reference_features, device), _as_tensor(sample_features, device)
    precision = inside(sam, ref, knn_radii(ref, k, chunk_size), chunk_size)
    recall = inside(ref, sam, knn_radii(sam, k, chunk_size), chunk_size)
    return precision.double().cpu().numpy(), recall.double().cpu().numpy()


def precision_recall(reference_features, sample_features, k=3, chunk_size=4096, device="cpu"):
    """(precision, recall) of samples against a reference set, both [N, D] features."""
    ref = _as_tensor(reference_features, device)
    sam = _as_tensor(sample_features, device)
    if ref.dim() != 2 or sam.dim() != 2 or ref.shape[1] != sam.shape[1]:
        raise ValueError(
            f"precision/recall needs [N, D] features of one size, got reference {tuple(ref.shape)} and "
            f"samples {tuple(sam.shape)}; were they made by the same feature extractor?"
        )
    precision = fraction_inside(sam, ref, knn_radii(ref, k, chunk_size), chunk_size)
    recall = fraction_inside(ref, sam, knn_radii(sam, k, chunk_size), chunk_size)
    return precision, recall
