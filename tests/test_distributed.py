"""Sync BN on CPU/gloo: two ranks with half batches each equal one process with the whole batch."""
import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from crisscross_core.distributed import AllReduceBatchNorm, convert_sync_batchnorm


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv3d(3, 4, 1), nn.BatchNorm3d(4), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 2 * 3 * 3, 5), nn.BatchNorm1d(5))


def _rank(rank, port, x, out_q):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    net = convert_sync_batchnorm(_net(), torch.device("cpu"))
    assert isinstance(net[1], AllReduceBatchNorm)
    half = x[rank * 4:(rank + 1) * 4]
    y = net(half)
    (y ** 2).sum().backward()
    grads = [p.grad for p in net.parameters()]
    for g in grads:
        dist.all_reduce(g)  # gradients of the global sum
    # numpy, not tensors: torch shares tensors through file descriptors that die with this process
    out_q.put((rank, y.detach().numpy(), [g.numpy() for g in grads], net[1].running_mean.numpy(),
               net[1].running_var.numpy()))
    dist.destroy_process_group()


def test_two_rank_sync_bn_equals_full_batch():
    x = torch.randn(8, 3, 2, 3, 3)
    ref = _net()
    y_ref = ref(x)
    (y_ref ** 2).sum().backward()
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    port = free_port()
    procs = [ctx.Process(target=_rank, args=(r, port, x, q)) for r in range(2)]
    for p in procs:
        p.start()
    results = sorted([q.get(timeout=120) for _ in procs], key=lambda r: r[0])
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    t = torch.from_numpy
    y = torch.cat([t(r[1]) for r in results])
    torch.testing.assert_close(y, y_ref.detach(), atol=1e-5, rtol=1e-5)
    for g, p in zip(results[0][2], ref.parameters()):
        torch.testing.assert_close(t(g), p.grad, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(t(results[0][3]), ref[1].running_mean, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(t(results[0][4]), ref[1].running_var, atol=1e-6, rtol=1e-5)


def test_single_process_falls_back_to_plain_bn():
    bn = AllReduceBatchNorm(3)
    x = torch.randn(6, 3)
    torch.testing.assert_close(bn(x), nn.BatchNorm1d(3)(x))


def test_conversion_keeps_parameter_objects_and_frozen_flags():
    net = _net()
    net[1].weight.requires_grad_(False)
    conv = convert_sync_batchnorm(net, torch.device("cpu"))
    assert conv[1].weight is net[1].weight and not conv[1].weight.requires_grad
    assert conv[1].running_mean is net[1].running_mean
