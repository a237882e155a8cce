"""Shared by the benchmark scripts: device synchronisation and the measured matmul peak (MFU)."""
from __future__ import annotations

import time

import torch


def sync(device) -> None:
    """Wait for queued GPU work (no-op on CPU) so wall-clock timings are honest."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def matmul_peak(device, n: int = 8192, reps: int = 20) -> float:
    """Measured dense matmul FLOP/s (n×n×n): bf16 on CUDA, fp32 (n=1024) on CPU. The MFU denominator."""
    dtype = torch.bfloat16
    if torch.device(device).type != "cuda":
        n, reps, dtype = 1024, 5, torch.float32
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    sync(device)
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync(device)
    return 2 * n ** 3 * reps / (time.perf_counter() - t0)
