"""Batch samplers for training, deterministic in (seed, epoch) and split across DDP ranks.

Each yields, per iteration, this rank's list of ``(dataset index, augmentation seed)`` pairs. The
augmentation seed is derived from (seed, epoch, iteration, slot) so an item's transform does not
depend on workers, ranks or restarts.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np


def _aug_seeds(seed: int, epoch: int, iteration: int, n: int) -> list[int]:
    rng = np.random.default_rng([seed, epoch, iteration, 7])
    return rng.integers(0, 2**31 - 1, size=n).tolist()


class IdentityBatchSampler:
    """P identities x K instances per batch (``NaiveIdentitySampler``). With ``balanced``, the K
    instances of an identity are spread over its cameras first (``BalancedIdentitySampler``).

    One epoch has ``len(pids) // batch_size`` iterations, as in fast-reid. Identities with fewer
    than K images repeat some of them.
    """

    def __init__(self, pids: list[int], camids: list[int], batch_size: int, num_instances: int, seed: int = 0,
                 balanced: bool = False, rank: int = 0, world_size: int = 1):
        if num_instances < 1 or batch_size % num_instances:
            raise ValueError(f"SOLVER.IMS_PER_BATCH ({batch_size}) must be a multiple of "
                             f"DATALOADER.NUM_INSTANCE ({num_instances})")
        if batch_size % world_size or (batch_size // world_size) % num_instances:
            raise ValueError(f"SOLVER.IMS_PER_BATCH ({batch_size}) must split into {world_size} processes of whole "
                             f"identities ({num_instances} images each)")
        self.by_pid: dict[int, list[int]] = defaultdict(list)
        for i, p in enumerate(pids):
            self.by_pid[p].append(i)
        self.pid_list = sorted(self.by_pid)
        self.camids = np.asarray(camids)
        self.ids_per_batch = batch_size // num_instances
        if len(self.pid_list) < self.ids_per_batch:
            raise ValueError(f"a batch needs {self.ids_per_batch} identities but the training set has "
                             f"{len(self.pid_list)}: lower SOLVER.IMS_PER_BATCH or raise DATALOADER.NUM_INSTANCE")
        self.k = num_instances
        self.batch_size = batch_size
        self.seed = seed
        self.balanced = balanced
        self.rank, self.world_size = rank, world_size
        self.iters_per_epoch = max(1, len(pids) // batch_size)

    def _instances(self, pid: int, rng: np.random.Generator) -> list[int]:
        idx = self.by_pid[pid]
        if self.balanced:
            by_cam: dict[int, list[int]] = defaultdict(list)
            for i in rng.permutation(idx):
                by_cam[int(self.camids[i])].append(int(i))
            order = [i for group in zip(*by_cam.values()) for i in group] if len(by_cam) > 1 else []
            taken = set(order)
            rest = [i for i in rng.permutation(idx).tolist() if i not in taken]
            chosen = (order + rest)[: self.k]
        else:
            chosen = rng.permutation(idx)[: self.k].tolist()
        if len(chosen) < self.k:
            chosen += rng.choice(idx, self.k - len(chosen), replace=True).tolist()
        return [int(i) for i in chosen]

    def epoch(self, epoch: int, start: int = 0):
        """This rank's batches of ``epoch`` from iteration ``start`` on."""
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(self.pid_list).tolist()
        per_rank = self.batch_size // self.world_size
        pos = 0
        for it in range(self.iters_per_epoch):
            if pos + self.ids_per_batch > len(order):
                order = rng.permutation(self.pid_list).tolist()
                pos = 0
            pids = order[pos:pos + self.ids_per_batch]
            pos += self.ids_per_batch
            batch = [i for p in pids for i in self._instances(p, rng)]
            if it < start:
                continue
            seeds = _aug_seeds(self.seed, epoch, it, len(batch))
            lo = self.rank * per_rank
            yield list(zip(batch[lo:lo + per_rank], seeds[lo:lo + per_rank]))


class MixedIdentityBatchSampler(IdentityBatchSampler):
    """P x K batches whose identities come from two pools in a fixed share: ``share`` x P from the
    items whose ``pools`` value is 1 (e.g. pseudo-labelled tracklets of the user's cameras), the rest
    from pool 0 (labelled data mixed in against forgetting), so a small pool is in every batch
    however many identities the other one holds. Each pool is walked in its own shuffled order.
    ``iters_per_epoch`` is given (an epoch is a budget of steps here, not a pass over pool 0)."""

    def __init__(self, pids: list[int], camids: list[int], pools: list[int], batch_size: int, num_instances: int,
                 share: float, iters_per_epoch: int, seed: int = 0):
        super().__init__(pids, camids, batch_size, num_instances, seed)
        pool_of = {p: int(g) for p, g in zip(pids, pools)}
        self.pool_pids = [[p for p in self.pid_list if pool_of[p] == g] for g in (0, 1)]
        self.per_pool = [self.ids_per_batch - round(self.ids_per_batch * share), round(self.ids_per_batch * share)]
        for g in (0, 1):
            if len(self.pool_pids[g]) < self.per_pool[g]:
                raise ValueError(f"a batch takes {self.per_pool[g]} identities from pool {g} but it has "
                                 f"{len(self.pool_pids[g])}")
        self.iters_per_epoch = iters_per_epoch

    def epoch(self, epoch: int, start: int = 0):
        rng = np.random.default_rng([self.seed, epoch])
        orders = [rng.permutation(p).tolist() for p in self.pool_pids]
        pos = [0, 0]
        for it in range(self.iters_per_epoch):
            pids = []
            for g in (0, 1):
                if pos[g] + self.per_pool[g] > len(orders[g]):
                    orders[g], pos[g] = rng.permutation(self.pool_pids[g]).tolist(), 0
                pids += orders[g][pos[g]:pos[g] + self.per_pool[g]]
                pos[g] += self.per_pool[g]
            batch = [i for p in pids for i in self._instances(p, rng)]
            if it >= start:
                yield list(zip(batch, _aug_seeds(self.seed, epoch, it, len(batch))))


class ShuffleBatchSampler:
    """Plain shuffled batches (fast-reid's ``TrainingSampler``)."""

    def __init__(self, num_items: int, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1):
        if batch_size % world_size:
            raise ValueError(f"SOLVER.IMS_PER_BATCH ({batch_size}) must divide by the {world_size} processes")
        self.n, self.batch_size, self.seed = num_items, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.iters_per_epoch = max(1, num_items // batch_size)

    def epoch(self, epoch: int, start: int = 0):
        perm = np.random.default_rng([self.seed, epoch]).permutation(self.n).tolist()
        per_rank = self.batch_size // self.world_size
        for it in range(start, self.iters_per_epoch):
            batch = perm[it * self.batch_size:(it + 1) * self.batch_size]
            seeds = _aug_seeds(self.seed, epoch, it, len(batch))
            lo = self.rank * per_rank
            yield list(zip(batch[lo:lo + per_rank], seeds[lo:lo + per_rank]))


def build_sampler(cfg, pids: list[int], camids: list[int], seed: int, rank: int = 0, world_size: int = 1):
    name = cfg.DATALOADER.SAMPLER_TRAIN
    bs = cfg.SOLVER.IMS_PER_BATCH
    if name in ("NaiveIdentitySampler", "BalancedIdentitySampler"):
        return IdentityBatchSampler(pids, camids, bs, cfg.DATALOADER.NUM_INSTANCE, seed,
                                    balanced=name == "BalancedIdentitySampler", rank=rank, world_size=world_size)
    if name == "TrainingSampler":
        return ShuffleBatchSampler(len(pids), bs, seed, rank, world_size)
    raise ValueError(f"unknown sampler {name!r} (DATALOADER.SAMPLER_TRAIN): expected NaiveIdentitySampler, "
                     "BalancedIdentitySampler or TrainingSampler")
