"""Run a feature extractor over batches of uint8 NHWC images, keeping only what the metrics need.

FID/sFID need only running mean/covariance (evaluation/metrics/frechet.py RunningStats); precision/recall
keep the pool features and IS keeps the logits, as ADM's evaluator does.
"""

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from evaluation.metrics.frechet import RunningStats


@dataclass
class Extracted:
    count: int
    pool_stats: RunningStats
    spatial_stats: RunningStats
    pool_features: np.ndarray | None  # [N, pool_dim] float32, when kept
    logits: np.ndarray | None  # [N, num_classes] float32, when kept
    spatial_features: np.ndarray | None = None  # [N, spatial_dim] float32, when kept (sFID's intervals)


@contextmanager
def exact_fp32():
    """TF32 matmuls/convolutions would cut the mantissa of the extractor: switch them off meanwhile."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@torch.no_grad()
def extract(extractor, batches, total=None, device="cpu", keep_pool=False, keep_logits=False, desc="features",
            keep_spatial=False):
    extractor = extractor.to(device).float().eval()
    pool_stats, spatial_stats = RunningStats(extractor.pool_dim), RunningStats(extractor.spatial_dim)
    pools, logits, spatials, count = [], [], [], 0
    with exact_fp32(), tqdm(total=total, desc=desc, unit="img") as bar:
        for batch in batches:
            images = torch.from_numpy(np.require(batch, requirements=['C', 'W'])).to(device).permute(0, 3, 1, 2)
            feats = extractor(images)
            pool = feats.pool.float().cpu().numpy()
            pool_stats.update(pool)
            spatial = feats.spatial.float().cpu().numpy()
            spatial_stats.update(spatial)
            if keep_spatial:
                spatials.append(spatial)
            if keep_pool:
                pools.append(pool)
            if keep_logits:
                logits.append(feats.logits.float().cpu().numpy())
            count += len(batch)
            bar.update(len(batch))
    return Extracted(
        count=count,
        pool_stats=pool_stats,
        spatial_stats=spatial_stats,
        pool_features=np.concatenate(pools) if keep_pool else None,
        logits=np.concatenate(logits) if keep_logits else None,
        spatial_features=np.concatenate(spatials) if keep_spatial else None,
    )
