"""`train(cfg)`: the one CrissCross pretraining entry point for notebooks, torchrun and submitit.

Read top to bottom: set up (config, process group, run dir) → data → model → optimiser → resume
from `<run_dir>/checkpoint.pt` if it exists → the loop (batched augmentation on the training
device, four encoder passes, six loss terms, LARC-Adam step) → periodic metrics and atomic
checkpoints → export of the backbones in the released format.

The environment decides the distribution (see distributed.py); nothing here is special to a
launcher. Resume is unconditional, so a requeued or restarted job needs no flag.
"""
from __future__ import annotations

import json
import math
import os
import random
import time
import traceback
import warnings
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

from . import distributed as D
from .checkpoint import CheckpointError, atomic_save, export_backbone, export_safetensors, safe_load
from .config import Config, ConfigError, load_config, save_config, to_dict
from .data.datasets import PretrainDataset, describe_drops
from .fileio import atomic_write_text
from .resume_guard import ResumeConfigError, check_resume, record_start
from .runlock import RunLock, RunLockedError
from .runlock import describe as describe_lock
from .data.pipeline import TrainTransform
from .loader import CudaPrefetcher, GlobalBatchSampler, build_loader
from .losses import crisscross_loss
from .models.crisscross import CrissCross
from .online_eval import OnlineEvaluator, format_eval
from .recorder import RunRecorder
from .tracking import require_wandb
from .optim import LRSchedule, build_optimizer
from .runlog import read_metrics

COLLAPSE_STD = 0.1  # warn when std(normalised z)·sqrt(d) falls below this (healthy ≈ 1)
COLLAPSE_RANK = 2.0  # warn when the effective rank of z falls below this (starts near min(B, d))


# ----------------------------------------------------------------------------- set-up helpers

def _check_data(cfg: Config) -> None:
    """Fail before any work if the data config cannot work."""
    if not cfg.data.manifest:
        raise ConfigError("config key 'data.manifest' is empty; build one with "
                          "`crisscross manifest build ...` or run `crisscross demo`")
    if not Path(cfg.data.manifest).is_file():
        raise ConfigError(f"config key 'data.manifest' points to {cfg.data.manifest!r}, "
                          "which does not exist")
    if cfg.eval.manifest and not Path(cfg.eval.manifest).is_file():
        raise ConfigError(f"config key 'eval.manifest' points to {cfg.eval.manifest!r}, which does not exist")
    if cfg.wandb.enabled and cfg.wandb.mode != "disabled":
        require_wandb(cfg)


def _amp(cfg: Config, device: torch.device):
    """(autocast context factory, GradScaler or None) for train.amp."""
    mode = cfg.train.amp
    if mode == "auto":
        mode = "bf16" if device.type == "cuda" else "none"
    if mode == "none":
        return nullcontext, None
    dtype = torch.bfloat16 if mode == "bf16" else torch.float16
    scaler = torch.amp.GradScaler(device.type) if mode == "fp16" else None
    return (lambda: torch.autocast(device.type, dtype=dtype)), scaler


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or inf; no checkpoint was written after it."""


def _stop_if_not_finite(ok: bool, step: int, run_dir: Path) -> None:
    """Stop before a NaN can reach a checkpoint: the last good one stays what `train` resumes from."""
    if not ok:
        raise NonFiniteLossError(
            f"step {step}: the loss is not finite (NaN or inf). Nothing was saved after it; "
            f"{run_dir / 'checkpoint.pt'} (if any) holds the last finite state. Lower the learning "
            "rates or check the inputs, then run again to resume from there.")


def _check_amp(cfg: Config) -> None:
    """Mixed precision needs CUDA: refuse it elsewhere before any work."""
    on_cuda = cfg.train.device == "cuda" or (cfg.train.device == "auto" and torch.cuda.is_available())
    if cfg.train.amp in ("bf16", "fp16") and not on_cuda:
        raise ConfigError(
            f"config key 'train.amp' is {cfg.train.amp!r} but training runs on CPU; use none (or auto). "
            "On CPU, torch's bf16 Conv3d backward gave non-finite weight gradients for R(2+1)D's "
            "temporal convolutions (torch 2.13, inputs of 2 frames), so the run would turn to NaN.")


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """torch / CUDA / numpy / python RNG states in a form `torch.load(weights_only=True)` accepts."""
    _, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "cached": float(cached)}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    """Inverse of `rng_state`. The training stream itself is derived from (seed, step, rank); this
    restores the global generators too, so code that draws from them continues where it stopped."""
    torch.set_rng_state(state["torch"].cpu())  # the checkpoint may have been mapped to a GPU
    random.setstate(state["python"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].cpu().numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([t.cpu() for t in state["cuda"]])


def _trim_metrics(path: Path, last_step: int) -> None:
    """Drop step records logged after the checkpoint we resume from (they will be redone)."""
    if not path.exists():
        return
    keep = [r for r in read_metrics(path, kind=None) if r.get("step", -1) <= last_step]  # cut lines go too
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in keep))
    tmp.replace(path)


def load_resume_state(run_dir: Path, map_location) -> tuple[dict | None, Path | None, list]:
    """(state, path, unreadable) of the checkpoint to resume from: `checkpoint.pt`, else — when it is
    missing or unreadable (a truncated copy, a damaged disk) — `checkpoint.prev.pt`. `unreadable`
    lists (path, reason) of the files that could not be read; both unreadable raises CheckpointError."""
    unreadable = []
    for name in ("checkpoint.pt", "checkpoint.prev.pt"):
        path = run_dir / name
        if not path.is_file():
            continue
        try:
            return safe_load(path, map_location=map_location), path, unreadable
        except CheckpointError as e:
            unreadable.append((path, str(e)))
    if unreadable:
        raise CheckpointError(f"{run_dir}: no readable checkpoint to resume from: "
                              + "; ".join(reason for _, reason in unreadable))
    return None, None, unreadable


def save_checkpoint(run_dir: Path, state: dict) -> None:
    """Atomic write; the previous checkpoint is kept as checkpoint.prev.pt until the new one lands."""
    path = run_dir / "checkpoint.pt"
    if path.exists():
        os.replace(path, run_dir / "checkpoint.prev.pt")
    atomic_save(state, path)


# ----------------------------------------------------------------------------- the step

def embedding_std(z: torch.Tensor) -> torch.Tensor:
    """Collapse monitor: std over the batch of L2-normalised z, averaged over dims, × sqrt(d).

    ≈ 1 for well-spread embeddings, → 0 when they collapse to a point (SimSiam paper, section 4). `z`: [B, d].
    """
    zn = torch.nn.functional.normalize(z.detach().float(), dim=1)
    return zn.std(dim=0).mean() * math.sqrt(z.shape[1])


def embedding_rank(z: torch.Tensor) -> torch.Tensor:
    """Dimensional-collapse monitor (RankMe, Garrido et al. 2023): exp of the entropy of the
    normalised singular values of the centred batch `z` [B, d]; between 1 and min(B, d).

    `embedding_std` stays near 1 when the embeddings spread along only one or two directions;
    this falls to ~1-2 then, and such heads cannot tell instances apart.
    """
    zc = z.detach().float()
    s = torch.linalg.svdvals(zc - zc.mean(0))
    p = s / s.sum().clamp_min(1e-12)
    return torch.exp(-(p * torch.log(p.clamp_min(1e-12))).sum())


def forward_loss(model, batch: dict, transform, cfg: Config, autocast, generator, channels_last: bool):
    """Augment on the device, run v1, v2, a1, a2 through the model, return (total, terms, out)."""
    video, audio = transform(batch["video"], batch["audio"], batch.get("share"), generator=generator,
                             frame_hw=batch.get("frame_hw"))   # crop in the source frame's geometry
    v1, v2, a1, a2 = video[:, 0], video[:, 1], audio[:, 0], audio[:, 1]
    if channels_last:
        v1 = v1.contiguous(memory_format=torch.channels_last_3d)
        v2 = v2.contiguous(memory_format=torch.channels_last_3d)
    with autocast():
        out = model(v1, v2, a1, a2)
    total, terms = crisscross_loss(out, cfg.loss)
    return total, terms, out


# ----------------------------------------------------------------------------- train

def train(cfg: Config | str, overrides: list[str] | None = None) -> dict:
    """Pretrain CrissCross as `cfg` says; resume from `<run_dir>/checkpoint.pt` if present.

    Before any work: every config value is range-checked, the run directory is locked for this run
    (runlock.py; a second run there is refused naming the holder), and a resume is checked against
    the checkpoint's config (resume_guard.py). Returns a summary dict: run_dir, step, epoch, last
    logged losses, exported weight paths, rows used / dropped, skipped items.
    """
    cfg = load_config(cfg, overrides)
    _check_data(cfg)
    _check_device(cfg)
    _check_amp(cfg)
    info = D.setup(cfg.train.device)
    run_dir = Path(cfg.train.run_dir)
    lock = None
    try:
        _cpu_threads(cfg, info)
        data = _data(cfg, info)          # every row checked and counted; a batch larger than the data refused
        lock = _lock_run_dir(run_dir, info)
        summary = _train(cfg, info, run_dir, *data)
        D.finish()
        return summary
    except BaseException as exc:
        quiet = (KeyboardInterrupt, SystemExit, ResumeConfigError)  # SystemExit: requeue/preemption
        if lock is not None and not isinstance(exc, quiet):          # only a run that owns the directory
            _write_error_file(run_dir, info)
        raise
    finally:
        if lock is not None:
            lock.release()
        D.teardown()


def _check_device(cfg: Config) -> None:
    if cfg.train.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("config key 'train.device' is 'cuda' but no CUDA device is visible here; use "
                          "train.device=cpu (or auto)")


def _lock_run_dir(run_dir: Path, info: D.DistInfo):
    """Rank 0 locks the run directory; every rank learns the outcome, so all go on or all stop."""
    lock, err = None, None
    if info.is_main:
        try:
            lock = RunLock(run_dir).acquire()
        except RunLockedError as e:
            err = e
    ok = D.all_reduce_sum(torch.tensor(float(lock is not None), device=info.device), info)
    if err is not None:
        raise err
    if float(ok) < 1:
        raise RunLockedError(f"rank 0 could not lock {run_dir} (another run holds it; see rank 0's error)")
    if lock is not None and lock.took_over:
        print(f"[crisscross] took over the lock of {run_dir} left by a run that is gone "
              f"({describe_lock(lock.took_over)})", flush=True)
    return lock


def _write_error_file(run_dir: Path, info: D.DistInfo) -> None:
    """error.txt (error.rank<k>.txt) with the traceback; best effort (the disk may be full)."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / f"error{'' if info.is_main else f'.rank{info.rank}'}.txt").write_text(traceback.format_exc())
    except OSError:
        pass


def _cpu_threads(cfg: Config, info: D.DistInfo) -> None:
    """On CPU, leave a core to each data worker: oversubscribed OpenMP threads spin (~10x slower)."""
    if info.device.type != "cpu":
        return
    n = cfg.train.cpu_threads
    if n <= 0:
        if os.environ.get("OMP_NUM_THREADS"):
            return  # the user (or launcher) decided
        cores = D.usable_cores()
        local_ranks = int(os.environ.get("LOCAL_WORLD_SIZE", 1))  # ranks sharing this machine
        n = max(1, cores // max(1, local_ranks) - cfg.data.num_workers)
    torch.set_num_threads(n)


def _start_records(run_dir: Path, cfg: Config, step: int, changes: list, fingerprint: dict, dataset,
                   unreadable: list, ckpt_path) -> dict:
    """What the main rank writes when a run (re)starts, once the resume is known to be safe: the
    config and its history, the data report, a note about unreadable checkpoints, trimmed metrics."""
    for path, reason in unreadable:          # keep the damaged file for inspection, out of the way
        keep = path.with_name(f"{path.stem}.unreadable-{time.strftime('%Y%m%dT%H%M%S')}.pt")
        os.replace(path, keep)
        print(f"[crisscross] {path.name} is unreadable ({reason.split(': ', 1)[-1]}); moved to {keep.name}; "
              f"resuming from {ckpt_path.name if ckpt_path else 'scratch'}", flush=True)
    save_config(cfg, run_dir / "config.yaml")
    record_start(run_dir, cfg, step, changes, fingerprint)
    for c in changes:
        print(f"[crisscross] config change on resume ({c['kind']}{', accepted by train.accept_config_changes' if c['kind'] == 'forcible' else ''}): "
              f"{c['key']}: {c['old']!r} -> {c['new']!r}", flush=True)
    _trim_metrics(run_dir / "metrics.jsonl", step)   # records after the resumed step will be redone
    for orphan in run_dir.glob(".checkpoint.pt.*.tmp"):  # left by a kill during a write
        orphan.unlink(missing_ok=True)
    report = dataset.data_report()
    atomic_write_text(run_dir / "data_report.json", json.dumps(report, indent=1))
    print(f"[crisscross] data: {describe_drops(report)}"
          + (f"; the full list: {run_dir / 'data_report.json'}" if report["dropped_counts"] else ""), flush=True)
    return {"kind": "data", "step": step, "rows_in_manifest": report["rows_in_manifest"],
            "rows_in_split": report["rows_in_split"], "rows_used": report["rows_used"],
            "rows_dropped": report["dropped_counts"], "time": time.time()}


def _data(cfg: Config, info: D.DistInfo) -> tuple:
    """(dataset, sampler): decode-only workers; augmentation happens on the training device. Every row
    that will not train is counted and named here, before anything is written."""
    dataset = PretrainDataset(cfg.data.manifest, cfg.data, seed=cfg.train.seed)
    sampler = GlobalBatchSampler(len(dataset), cfg.optim.batch_size, info.rank, info.world_size,
                                 cfg.train.seed)
    return dataset, sampler


def _train(cfg: Config, info: D.DistInfo, run_dir: Path, dataset: PretrainDataset,
           sampler: GlobalBatchSampler) -> dict:
    _seed_everything(cfg.train.seed)
    fingerprint = dataset.fingerprint()
    steps_per_epoch = sampler.batches_per_epoch
    total_steps = cfg.optim.epochs * steps_per_epoch
    stop_step = min(total_steps, cfg.optim.max_steps) if cfg.optim.max_steps > 0 else total_steps

    # resume, unconditionally — but only into the run the checkpoint holds (resume_guard.py)
    state, ckpt_path, unreadable = load_resume_state(run_dir, info.device)
    changes = check_resume(cfg, state, run_dir, fingerprint) if state is not None else []
    D.barrier(info)          # every rank has read the checkpoint before rank 0 writes anything
    step = state["step"] if state is not None else 0
    data_record = None
    if info.is_main:         # from here on the run directory is written
        data_record = _start_records(run_dir, cfg, step, changes, fingerprint, dataset, unreadable, ckpt_path)

    transform = TrainTransform(cfg.aug, cfg.data.audio_rate).to(info.device)

    # model: same init on every rank (seeded), BN synchronised across ranks when asked
    model = CrissCross.from_config(cfg.model).to(info.device)
    channels_last = cfg.train.channels_last and info.device.type == "cuda"
    if channels_last:
        model.video_backbone.to(memory_format=torch.channels_last_3d)
    if info.enabled and cfg.train.sync_bn:
        model = D.convert_sync_batchnorm(model, info.device)
    core = model
    if info.enabled:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[info.device.index] if info.device.type == "cuda" else None)
        # (a 2-layer projector's unused layer2 is frozen by the model, so no unused-parameter search)
    step_model = torch.compile(model) if cfg.train.compile else model

    optimizer = build_optimizer(core, cfg.optim, info.device)
    schedule = LRSchedule(cfg.optim, steps_per_epoch, total_steps)
    autocast, scaler = _amp(cfg, info.device)

    n_failed_total = 0
    if state is not None:
        core.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        n_failed_total = state.get("n_failed_total", 0)
        restore_rng(state["rng"])
        if info.is_main:
            print(f"[crisscross] resumed from {ckpt_path} at step {step}", flush=True)
        del state

    def checkpoint_state() -> dict:
        return {"model": core.state_dict(), "optimizer": optimizer.state_dict(),
                "scaler": scaler.state_dict() if scaler is not None else None, "step": step,
                "epoch": step // steps_per_epoch, "n_failed_total": n_failed_total,
                "config": to_dict(cfg), "rng": rng_state(), "world_size": info.world_size,
                "data_fingerprint": fingerprint}

    def save_if_finite() -> None:  # one place where the main rank writes checkpoint.pt
        _stop_if_not_finite(bool(finite), step, run_dir)
        save_checkpoint(run_dir, checkpoint_state())
        recorder.checkpointed(step)

    evaluator = OnlineEvaluator.from_config(cfg, info.device) if info.is_main else None
    recorder = RunRecorder(run_dir, cfg, step, info.is_main)
    if data_record is not None:
        recorder.record(data_record)
    bar = _progress(cfg, info, stop_step, step)
    last: dict = {}
    completed = False
    try:
        while step < stop_step:
            epoch, start_batch = divmod(step, steps_per_epoch)
            dataset.set_epoch(epoch)
            sampler.set_epoch(epoch, start_batch)
            loader = build_loader(dataset, sampler, cfg.data.num_workers, cfg.data.prefetch_factor,
                                  pin_memory=info.device.type == "cuda")
            model.train()
            sums, n_in_window, wait, t_window = None, 0, 0.0, time.perf_counter()
            epoch_failed = torch.zeros((), dtype=torch.long, device=info.device)
            finite = torch.ones((), dtype=torch.bool, device=info.device)  # every loss of the epoch so far
            batches = iter(CudaPrefetcher(loader, info.device))
            while step < stop_step:
                t_wait = time.perf_counter()
                batch = next(batches, None)
                if batch is None:
                    break
                wait += time.perf_counter() - t_wait
                lrs = schedule.apply(optimizer, step)
                gen = torch.Generator().manual_seed(  # CPU: parameters are drawn on the host
                    (cfg.train.seed * 1_000_003 + step) * 64 + info.rank)
                total, terms, out = forward_loss(step_model, batch, transform, cfg, autocast, gen,
                                                 channels_last)
                optimizer.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.scale(total).backward()
                    scaler.unscale_(optimizer)
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    total.backward()
                    optimizer.step()
                step += 1
                epoch_failed += batch["n_failed"].sum()
                finite &= torch.isfinite(total.detach())                    # no host sync here
                # accumulate on the device; synchronise only every log_every steps
                vec = torch.stack([total.detach().float(), *[t.detach().float() for t in terms.values()],
                                   embedding_std(out["zv1"]), embedding_std(out["za1"])])
                sums = vec if sums is None else sums + vec
                n_in_window += 1
                if step % cfg.train.log_every == 0 or step == stop_step:
                    vals = (D.all_reduce_mean(sums, info) / n_in_window).tolist()
                    _stop_if_not_finite(math.isfinite(vals[0]) and bool(finite), step, run_dir)
                    ranks = D.all_reduce_mean(torch.stack([embedding_rank(out["zv1"]),
                                                           embedding_rank(out["za1"])]), info).tolist()
                    dt = time.perf_counter() - t_window
                    rec = {"kind": "step", "step": step, "epoch": step / steps_per_epoch,
                           "loss": vals[0], **dict(zip(terms.keys(), vals[1:-2])),
                           "std_v": vals[-2], "std_a": vals[-1], "rank_v": ranks[0], "rank_a": ranks[1],
                           "rank_batch": int(out["zv1"].shape[0]),   # per-rank batch the ranks come from
                           **{f"lr_{k}": v for k, v in lrs.items()},
                           "samples_per_s": n_in_window * cfg.optim.batch_size / dt,
                           "data_wait": wait / dt, "world_size": info.world_size, "time": time.time()}
                    last = rec
                    if info.is_main:
                        recorder.record(rec)
                        _show(rec, bar, n_in_window)
                    sums, n_in_window, wait, t_window = None, 0, 0.0, time.perf_counter()
                if evaluator is not None and evaluator.due(step, stop_step):
                    erec = evaluator(core, step)          # eval mode, no_grad, no RNG: the stream is unchanged
                    recorder.record(erec)
                    print(f"[crisscross] {format_eval(erec)}", flush=True)
                at_block_end = step % steps_per_epoch == 0 or step == stop_step  # saved just below
                if step % cfg.train.checkpoint_every == 0 and not at_block_end and info.is_main:
                    save_if_finite()
            if step % steps_per_epoch == 0 or step == stop_step:
                failed = int(D.all_reduce_sum(epoch_failed, info).item())
                n_failed_total += failed
                if info.is_main:
                    save_if_finite()
                    health = {"kind": "epoch", "step": step, "epoch": math.ceil(step / steps_per_epoch),
                              "skipped_items": failed, "skipped_total": n_failed_total,
                              "time": time.time()}
                    recorder.record(health)
                    if failed:
                        print(f"[crisscross] epoch {health['epoch']}: {failed} unreadable items "
                              "were skipped and replaced (see warnings above)", flush=True)
        completed = True
    finally:
        if bar is not None:
            bar.close()
        recorder.close(completed, step)

    exported = {}
    if info.is_main and cfg.train.export_at_end and step >= stop_step and step > 0:  # never untrained weights
        for modality, backbone in (("vid", core.video_backbone), ("aud", core.audio_backbone)):
            path = run_dir / f"{modality}_crisscross_{cfg.name}.pth.tar"      # the released format
            export_backbone(backbone, path)
            exported[modality] = str(path)
            exported[f"{modality}_safetensors"] = str(export_safetensors(   # no pickle, + architecture JSON
                backbone, path.with_name(f"{modality}_crisscross_{cfg.name}.safetensors"),
                "video" if modality == "vid" else "audio", {"step": step, "config_name": cfg.name}))
    report = dataset.data_report()
    return {"run_dir": str(run_dir), "step": step, "epoch": step / steps_per_epoch,
            "last": last, "exported": exported, "skipped_items": n_failed_total,
            "rows_used": report["rows_used"], "rows_dropped": report["dropped_counts"]}


# ----------------------------------------------------------------------------- observability

def _progress(cfg: Config, info: D.DistInfo, total: int, initial: int):
    if not (cfg.train.progress and info.is_main):
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, initial=initial, desc="pretrain", unit="step", dynamic_ncols=True)


def _show(rec: dict, bar, n_steps: int) -> None:
    """The progress bar and the collapse warnings for a step record."""
    if bar is not None:
        bar.update(n_steps)
        bar.set_postfix(loss=f"{rec['loss']:.4f}", sps=f"{rec['samples_per_s']:.1f}",
                        wait=f"{rec['data_wait']:.0%}")
    for k in ("std_v", "std_a"):
        if rec[k] < COLLAPSE_STD:
            warnings.warn(f"step {rec['step']}: {k}={rec[k]:.3f} — the embeddings may be collapsing "
                          "(SimSiam collapse); check the lr and predictor settings", stacklevel=2)
    for k in ("rank_v", "rank_a"):
        if rec.get("rank_batch", 0) >= 16 and rec[k] < COLLAPSE_RANK:   # tiny batches: rank is small anyway
            warnings.warn(f"step {rec['step']}: {k}={rec[k]:.2f} — the embeddings spread along fewer than "
                          "two directions (dimensional collapse); retrieval in this space will find "
                          "'hub' items. Weighing the intra-modal terms up (loss.vid_coeff, "
                          "loss.aud_coeff) kept the demo's heads at rank ~7", stacklevel=2)


# ----------------------------------------------------------------------------- CLI

def add_arguments(parser) -> None:
    parser.add_argument("--config", "-c", default="tiny_cpu",
                        help="a preset (paper_kinetics400, paper_kinetics_sound, paper_audioset, "
                             "tiny_cpu) or a YAML file")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. optim.batch_size=512")


def run(args) -> int:
    summary = train(args.config, args.overrides)
    print(json.dumps({k: v for k, v in summary.items() if k != "last"}, indent=1))
    return 0


if __name__ == "__main__":  # torchrun -m crisscross_core.train -c paper_kinetics400 ...
    import argparse
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(p)
    raise SystemExit(run(p.parse_args()))
