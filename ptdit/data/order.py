"""The order of training samples and every per-sample random draw, as pure functions of the step.

Global sample k = step * global_batch + j (j = position in the global batch) is dataset item
perm_e[k mod N] with e = k // N and perm_e a seeded permutation of epoch e, so the order is the same
for any number of processes and a resumed run needs nothing but the step. Rank r takes positions
[r * B / W, (r + 1) * B / W) of each global batch. DiT's train.py uses DistributedSampler instead,
whose order depends on the world size and whose position inside an epoch is lost on a restart.

Every random draw of a sample (flip, posterior noise, label drop, timestep, diffusion noise) comes
from a generator seeded by (run seed, purpose, step, j): identical for 1 or N processes and after a
resume, which is what makes DDP equal to one process and resume bit-exact.
"""

import numpy as np
import torch

# Purposes: independent streams for independent decisions. SAMPLE_SHARD (a shard's global RNG) is no
# longer drawn from, since every per-step noise is per sample; it stays so that EPOCH keeps its value.
DATA, TRAIN, SAMPLE_NOISE, SAMPLE_LABEL, SAMPLE_SDE, SAMPLE_SHARD, EPOCH = range(7)


def seed_of(*keys):
    """A 63-bit seed mixed from integers by numpy's SeedSequence (no collisions between nearby keys)."""
    return int(np.random.SeedSequence([int(k) for k in keys]).generate_state(1, np.uint64)[0] >> 1)


def generator(*keys):
    return torch.Generator().manual_seed(seed_of(*keys))


class StepBatches(torch.utils.data.Sampler):
    """Batch sampler: for each step in [start_step, end_step) the list of (item index, data seed) of
    this rank's share of the global batch."""

    def __init__(self, num_items, global_batch, seed, rank=0, world_size=1, start_step=0, end_step=0):
        if global_batch % world_size:
            raise ValueError(f"global batch {global_batch} is not divisible by {world_size} processes")
        self.num_items, self.global_batch, self.seed = num_items, global_batch, seed
        self.local = global_batch // world_size
        self.first = rank * self.local
        self.start_step, self.end_step = start_step, end_step
        self._epoch, self._perm = None, None

    def __len__(self):
        return max(0, self.end_step - self.start_step)

    def item(self, k):
        epoch, pos = divmod(k, self.num_items)
        if epoch != self._epoch:
            self._epoch = epoch
            self._perm = torch.randperm(self.num_items, generator=generator(self.seed, EPOCH, epoch)).tolist()
        return self._perm[pos]

    def batch(self, step):
        js = range(self.first, self.first + self.local)
        return [(self.item(step * self.global_batch + j), seed_of(self.seed, DATA, step, j)) for j in js]

    def __iter__(self):
        for step in range(self.start_step, self.end_step):
            yield self.batch(step)

    def position(self, step):
        """Where the data stands after `step` steps: for the checkpoint and the log."""
        epoch, index = divmod(step * self.global_batch, self.num_items)
        return {"step": step, "epoch": epoch, "index_in_epoch": index, "seed": self.seed}
