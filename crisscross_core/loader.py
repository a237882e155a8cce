"""Feeding the trainer: a resumable global-batch sampler, the DataLoader, and a CUDA prefetcher.

The sampler shuffles the whole dataset once per epoch with a seed, cuts it into *global* batches and
gives each rank its slice. So a 2-rank run sees exactly the samples of a 1-process run with the
same global batch, and a resumed run restarts mid-epoch at the very batch it stopped at.
"""
from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Sampler

from .config import ConfigError


class GlobalBatchSampler(Sampler[list[int]]):
    """Yields this rank's index list for each global batch of the epoch, from `start_batch` on."""

    def __init__(self, n_items: int, global_batch: int, rank: int, world_size: int, seed: int):
        if global_batch % world_size:
            raise ConfigError(f"config key 'optim.batch_size' = {global_batch} is not divisible by the "
                              f"{world_size} ranks; choose a multiple of {world_size}")
        if n_items < global_batch:
            raise ConfigError(f"config key 'optim.batch_size' = {global_batch} is larger than the dataset: "
                              f"{n_items} items (usable videos x data.clips_per_video); lower it")
        self.n, self.global_batch, self.rank, self.world, self.seed = (
            n_items, global_batch, rank, world_size, seed)
        self.per_rank = global_batch // world_size
        self.epoch, self.start_batch = 0, 0

    @property
    def batches_per_epoch(self) -> int:
        return self.n // self.global_batch  # drop_last, as the release

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def __len__(self) -> int:
        return self.batches_per_epoch - self.start_batch

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        perm = torch.randperm(self.n, generator=g).tolist()
        lo = self.rank * self.per_rank
        for b in range(self.start_batch, self.batches_per_epoch):
            batch = perm[b * self.global_batch:(b + 1) * self.global_batch]
            yield batch[lo:lo + self.per_rank]


def _worker_init(_):
    torch.set_num_threads(1)  # workers decode; one thread each keeps cores for the step


def build_loader(dataset, sampler: GlobalBatchSampler, num_workers: int, prefetch_factor: int,
                 pin_memory: bool) -> DataLoader:
    """DataLoader over `sampler`'s batches. Workers are re-forked each epoch so they see set_epoch."""
    kwargs = dict(num_workers=num_workers, pin_memory=pin_memory, worker_init_fn=_worker_init)
    if num_workers > 0:
        kwargs.update(prefetch_factor=prefetch_factor, persistent_workers=False)
    return DataLoader(dataset, batch_sampler=sampler, **kwargs)


class CudaPrefetcher:
    """Copies the next batch to the GPU on a side stream while the current step computes.

    On CPU it passes batches through unchanged. Yields dicts of tensors on `device`.
    """

    def __init__(self, loader, device: torch.device):
        self.loader, self.device = loader, device

    def __iter__(self):
        if self.device.type != "cuda":
            for batch in self.loader:
                yield {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in batch.items()}
            return
        stream = torch.cuda.Stream()
        it = iter(self.loader)

        def load():
            batch = next(it, None)
            if batch is None:
                return None
            with torch.cuda.stream(stream):
                return {k: v.to(self.device, non_blocking=True) if torch.is_tensor(v) else v
                        for k, v in batch.items()}

        nxt = load()
        while nxt is not None:
            torch.cuda.current_stream().wait_stream(stream)
            cur = nxt
            for v in cur.values():
                if torch.is_tensor(v):
                    v.record_stream(torch.cuda.current_stream())
            nxt = load()
            yield cur
