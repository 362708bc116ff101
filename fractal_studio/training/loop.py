"""The training loop: AdamW + warmup/cosine, clipping, bf16 autocast on CUDA (where native), EMA, checkpoints,
resume, DDP.

`train(TrainOptions(...))` trains a `FractalModel` on one of the built-in sources ("photos",
"fashion-mnist") or an image folder and writes it in our safetensors format (`save_model`). The
rest of the training state (raw weights when EMA is on, optimizer, scheduler position, EMA, RNG
states, step, history) goes to a sidecar `<out without suffix>.state.pt` next to it, written at every
checkpoint (every `checkpoint_minutes`, and at the end); `resume=True` continues from it and gives
the same parameters as an uninterrupted run of the same number of steps (same seed, same device).

Under `torchrun` (WORLD_SIZE > 1) the model is wrapped in DistributedDataParallel (nccl on CUDA,
gloo elsewhere); each process sees its own shard of every epoch (DistributedSampler) and the batch
size is the global one, split evenly. Only rank 0 logs and writes files.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
import torch.distributed as dist
import torch.nn as nn

from fractal_studio.devices import autocast_for
from fractal_studio.errors import UserError
from fractal_studio.model.config import ModelConfig, preset
from fractal_studio.model.fractal import FractalModel
from fractal_studio.training.distributed import (
    Dist,
    any_rank,
    broadcast_int,
    init_distributed,
    replica_difference,
    together,
)
from fractal_studio.training.edit_masks import guided_batch, training_regions
from fractal_studio.training.interrupt import StopRequest
from fractal_studio.training.options import OVERRIDABLE, TrainOptions, check_options, state_path
from fractal_studio.training.state import (
    EMA,
    check_optimizer_state,
    check_state,
    check_state_weights,
    load_state,
    save_checkpoint,
    seed_all,
    set_rng_state,
    start_from_weights,
    weights_model,
)

PHOTO_SCALES = (1, 2, 4, 8)

Log = Callable[[str], None]

logger = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------ data
@dataclass
class TrainData:
    dataset: torch.utils.data.Dataset
    heldout_images: torch.Tensor  # uint8 [N, 3, S, S]
    heldout_labels: torch.Tensor  # int64 [N] (-1 when unconditional)
    class_names: tuple[str, ...]
    description: str


def load_data(opts: TrainOptions, size: int, log: Log | None = None) -> TrainData:
    from fractal_studio.training import data as d

    log = log or logger.info
    if opts.data == "photos":
        train_files = d.photo_files("train", cache_dir=opts.cache_dir, log=log)
        held_files = d.photo_files("heldout", cache_dir=opts.cache_dir, log=log)
        dataset = d.PhotoCrops(train_files, size=size, scales=PHOTO_SCALES, epoch_len=opts.epoch_len,
                               seed=opts.seed)
        held = d.heldout_crops(held_files, size=size, scales=PHOTO_SCALES, count=opts.eval_count)
        return TrainData(dataset, held, torch.full((len(held),), -1, dtype=torch.long), (),
                         f"photos: {len(train_files)} training photos, scales {PHOTO_SCALES}; held out: "
                         f"{len(held)} crops of {len(held_files)} held-out photos")
    if opts.data == "fashion-mnist":
        if size != 32:
            raise UserError(f"Fashion-MNIST images are 32x32 (padded) but preset {opts.preset} is "
                            f"{size}x{size}; pick a 32x32 preset (e.g. small_mar_in32)")
        dataset = d.FashionMNIST("train", cache_dir=opts.cache_dir)
        test_images, test_labels = d.fashion_mnist("test", cache_dir=opts.cache_dir)
        # A class-balanced prefix of the test split (it is shuffled), the same every time.
        count = min(opts.eval_count, len(test_labels))
        return TrainData(dataset, test_images[:count], test_labels[:count], d.FASHION_MNIST_CLASSES,
                         f"fashion-mnist: {len(dataset)} training images; held out: first {count} of the "
                         "test split")
    dataset = d.ImageFolderDataset(opts.data, size, train=True, seed=opts.seed)
    held = d.ImageFolderDataset(opts.data, size, train=False)
    count = min(opts.eval_count, len(held))
    items = [held[i] for i in range(count)]
    images = torch.stack([img for img, _ in items])
    labels = torch.tensor([label for _, label in items], dtype=torch.long)
    skipped = f"; skipped {len(dataset.unreadable)} unreadable file(s), e.g. {dataset.unreadable[0]}" \
        if dataset.unreadable else ""
    return TrainData(dataset, images, labels, dataset.class_names,
                     f"{opts.data}: {len(dataset.samples)} training images, {len(dataset.class_names)} "
                     f"classes; held out: {count} crops of {len(held.samples)} images{skipped}")


def model_config(opts: TrainOptions, class_names: tuple[str, ...]) -> ModelConfig:
    base = preset(opts.preset)
    names = () if opts.unconditional else tuple(class_names)
    if opts.class_names is not None:
        if not names:
            raise UserError("--class-names was given but the training data has no classes")
        if len(opts.class_names) != len(names):
            raise UserError(f"--class-names gives {len(opts.class_names)} names but the data has "
                            f"{len(names)} classes")
        names = tuple(opts.class_names)
    config = base.with_classes(names) if names else replace(base, class_num=1, class_names=())
    if opts.overrides:
        config = replace(config, **{k: OVERRIDABLE[k](v) for k, v in opts.overrides.items()})
    return replace(config, trained_masks=opts.masks)


# ------------------------------------------------------------------------------------ schedule
def lr_factor(step: int, total: int, warmup: int, min_ratio: float) -> float:
    """Linear warmup over `warmup` steps, then cosine from 1 down to `min_ratio` at `total`."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def warmup_steps(opts: TrainOptions, total: int) -> int:
    return int(opts.warmup) if opts.warmup >= 1 else int(round(opts.warmup * total))


class _Objective(nn.Module):
    """forward() = mean training objective, so DistributedDataParallel's hooks see the loss."""

    def __init__(self, model: FractalModel):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor, labels: torch.Tensor,
                unknown: torch.Tensor | None = None) -> torch.Tensor:
        return self.model.loss(images, labels, unknown=unknown).mean()


# ------------------------------------------------------------------------------------ evaluation
@torch.no_grad()
def heldout_bits_per_dim(model: FractalModel, images: torch.Tensor, labels: torch.Tensor, device,
                         batch: int = 64, seed: int = 1234) -> float:
    """Mean bits/dim of the held-out images (eval mode, fixed evaluation masks); leaves RNGs untouched."""
    was_training = model.training
    model.eval()
    devices = [device] if device.type == "cuda" else []
    total, count = 0.0, 0
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        for start in range(0, len(images), batch):
            x = images[start:start + batch].to(device)
            y = labels[start:start + batch].to(device) if model.config.conditional else None
            with autocast_for(device, training=True):
                bpd = model.bits_per_dim(x, y)
            total += float(bpd.float().sum())
            count += len(x)
    model.train(was_training)
    return total / max(1, count)


# ------------------------------------------------------------------------------------ the loop
def _same_model(saved_json: str, config: ModelConfig) -> bool:
    """Whether a training state's configuration trains the same model as `config`. The sampling
    defaults take no part in training (and gain fields between versions: a state written before
    a field existed would otherwise never resume); the masks may change between runs (the file
    then names the last run's)."""
    try:
        saved = ModelConfig.from_json(saved_json, class_names=config.class_names)
    except (TypeError, ValueError):
        return False
    return replace(saved, sampling=config.sampling, trained_masks=config.trained_masks) == config


def divergence(opts: TrainOptions, step: int, loss: float, norm: float | None,
               saved_step: int | None) -> UserError:
    """The error of a run whose loss or gradients stopped being finite at `step` (its update not
    taken): what is kept, and what to do."""
    if not math.isfinite(loss):
        what = f"the loss became {loss}"
    elif norm is not None and not math.isfinite(norm):
        what = f"the gradients' norm became {norm}"
    else:
        what = "another process's loss became NaN or infinite"
    out = state_path(opts.out)
    if saved_step is None:
        kept = "nothing was written"
        then = "start again"
    else:
        kept = f"{opts.out} and {out.name} are kept as the checkpoint at step {saved_step} left them"
        then = "--resume from there, or start again"
    return UserError(f"training diverged at step {step}: {what}; {kept}. Lower --lr (it was {opts.lr:g}) "
                     f"or lengthen --warmup, then {then}")


def _fmt_time(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def train(opts: TrainOptions, log: Log | None = None) -> dict:
    """Trains as `opts` says; returns a summary (steps, wall time, held-out bits/dim, ...).
    Ctrl+C or SIGTERM ends the run after the current step, with a checkpoint (StopRequest)."""
    check_options(opts)
    env, device = init_distributed(opts.device)
    stop_request = StopRequest()
    try:
        return _train(opts, log, stop_request, env, device)
    finally:
        stop_request.uninstall()
        if env.owns_group and dist.is_initialized():
            # Tearing the group down before exit avoids gloo aborting in its destructors; after a
            # failure too, which every process has learnt of (`together`): none is left waiting.
            dist.destroy_process_group()


def _train(opts: TrainOptions, log: Log | None, stop_request: StopRequest, env: Dist,
           device: torch.device) -> dict:
    if log is None:
        log = logger.info
    say = log if env.main else (lambda message: None)
    if opts.threads:
        torch.set_num_threads(opts.threads)
    if opts.batch_size % env.world:
        raise UserError(f"--batch-size {opts.batch_size} does not split evenly over {env.world} processes")
    per_rank_batch = opts.batch_size // env.world

    resume_state = load_state(state_path(opts.out)) if opts.resume else None
    if resume_state is not None:
        check_state(resume_state, state_path(opts.out))  # its structure, before the data is loaded

    size = preset(opts.preset).resolution
    # Rank 0 fetches the data first, then the others read it; a failure anywhere stops every process.
    data = together(lambda: load_data(opts, size, log=say), env, device, "loading the data", ranks="main")
    if env.enabled:
        first = data
        data = together(lambda: first if env.main else load_data(opts, size, log=say), env, device,
                        "loading the data")
    config = model_config(opts, data.class_names)
    if resume_state is not None and not _same_model(resume_state["config"], config):
        raise UserError(f"--resume: {state_path(opts.out)} was written for another configuration; "
                        "use the same --preset, --data and overrides as the interrupted run")
    say(data.description)

    seed_all(opts.seed)
    model = FractalModel(config).to(device)
    model.train()
    if resume_state is not None:
        check_state_weights(resume_state, state_path(opts.out), model)
        model.load_state_dict(resume_state["model"])
    elif opts.init_from is not None:
        start_from_weights(model, opts.init_from)
        say(f"starting from the weights of {opts.init_from}")
    params = sum(p.numel() for p in model.parameters())
    say(f"model {config.name}: {params / 1e6:.2f}M parameters, {config.resolution}x{config.resolution}, "
        f"{config.class_num} class{'es' if config.class_num > 1 else ''}; device {device}"
        + (f", {env.world} processes" if env.enabled else ""))

    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim < 2 or "pos_embed" in name or "mask_token" in name
         or name == "fake_latent" else decay).append(p)
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": opts.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}],
                                  lr=opts.lr, betas=opts.betas, fused=device.type == "cuda")
    ema = EMA(model, opts.ema) if opts.ema > 0 else None
    if resume_state is not None:
        check_optimizer_state(resume_state, state_path(opts.out), model, optimizer)
        optimizer.load_state_dict(resume_state["optimizer"])
        if ema is not None and resume_state["ema"] is not None:
            ema.shadow = {k: v.to(device) for k, v in resume_state["ema"].items()}

    objective: nn.Module = _Objective(model)
    if env.enabled:
        objective = nn.parallel.DistributedDataParallel(
            objective, device_ids=[device.index] if device.type == "cuda" else None)

    from fractal_studio.training.data import make_loader

    loader = make_loader(data.dataset, per_rank_batch, num_workers=opts.workers, seed=opts.seed,
                         distributed=env.enabled, num_replicas=env.world if env.enabled else None,
                         rank=env.rank if env.enabled else None, pin_memory=device.type == "cuda")
    batches_per_epoch = len(loader)
    if batches_per_epoch == 0:
        raise UserError(f"the training set ({len(data.dataset)} items) is smaller than one batch "
                        f"({opts.batch_size}); lower --batch-size")

    step, epoch, batch_in_epoch = 0, 0, 0
    total_steps = opts.steps
    history: list[dict] = []
    elapsed_before = 0.0
    saved_step = None  # the step of the last checkpoint of this run (or of the one it resumes)
    if resume_state is not None:
        step, epoch = resume_state["step"], resume_state["epoch"]
        saved_step = step
        batch_in_epoch = resume_state["batch_in_epoch"]
        history = resume_state["history"]
        elapsed_before = resume_state.get("elapsed", 0.0)
        if opts.steps is None:
            total_steps = resume_state["total_steps"]
        set_rng_state(resume_state["rng"], device)
        if env.rank:
            torch.manual_seed(opts.seed * 1000 + env.rank + step)
        say(f"resumed from {state_path(opts.out)} at step {step} (epoch {epoch}, batch {batch_in_epoch})")
    elif env.rank:
        torch.manual_seed(opts.seed * 1000 + env.rank)  # other masks on every rank; weights are rank 0's

    if total_steps is not None and step >= total_steps:
        say(f"already trained for {step} of {total_steps} steps; nothing to do")
    start = time.perf_counter()
    deadline = start + opts.minutes * 60 if opts.minutes is not None else None
    last_checkpoint = start
    window_start, window_images, window_loss, window_n = start, 0, 0.0, 0
    calib_start = None
    rate_start = None
    warm = warmup_steps(opts, total_steps) if total_steps else None
    stop = False
    done_reason = "steps"

    def checkpoint() -> None:
        nonlocal saved_step
        # On rank 0 alone, but a failed write (a full disk) stops every process, not only rank 0.
        together(lambda: save_checkpoint(opts, model, ema, optimizer, step, epoch, batch_in_epoch,
                                         total_steps, history, device,
                                         elapsed_before + time.perf_counter() - start),
                 env, device, f"writing the checkpoint at step {step}", ranks="main")
        saved_step = step

    def evaluate() -> float:
        eval_model = weights_model(model, ema).to(device) if ema is not None else model
        bpd = heldout_bits_per_dim(eval_model, data.heldout_images, data.heldout_labels, device,
                                   batch=opts.eval_batch)
        history.append({"step": step, "heldout_bpd": bpd,
                        "elapsed": elapsed_before + time.perf_counter() - start})
        say(f"step {step}: held-out {bpd:.4f} bits/dim ({len(data.heldout_images)} images"
            f"{', EMA weights' if ema is not None else ''})")
        return bpd

    while not stop and (total_steps is None or step < total_steps):
        loader.sampler.set_epoch(epoch)
        loader.sampler.skip = batch_in_epoch * per_rank_batch
        for images, labels in loader:
            if total_steps is None and calib_start is None:
                calib_start = (time.perf_counter(), step)
                warm = warmup_steps(opts, 2000)  # provisional until the total is known
            current_total = total_steps or 10**9
            factor = lr_factor(step, current_total, warm, opts.min_lr_ratio)
            for group in optimizer.param_groups:
                group["lr"] = opts.lr * factor
            images = images.to(device, non_blocking=True)
            labels = labels.to(device, non_blocking=True)
            if not config.conditional:
                labels = torch.full_like(labels, -1)
            unknown = training_regions(opts.masks, len(images), size, device)
            if opts.masks == "guided":
                images, unknown = guided_batch(images, unknown)
            with autocast_for(device, training=True):
                loss = objective(images, labels, unknown)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), opts.clip) if opts.clip > 0 \
                else None
            loss_value = float(loss.detach())
            norm_value = None if grad_norm is None else float(grad_norm)
            finite = math.isfinite(loss_value) and (norm_value is None or math.isfinite(norm_value))
            if any_rank(not finite, env, device):  # before the step: the weights are still the last good ones
                raise divergence(opts, step + 1, loss_value, norm_value, saved_step)
            optimizer.step()
            if ema is not None:
                ema.update(model, step)
            step += 1
            batch_in_epoch += 1
            if batch_in_epoch >= batches_per_epoch:
                epoch, batch_in_epoch = epoch + 1, 0

            window_loss += loss_value
            window_n += 1
            window_images += len(images) * env.world
            now = time.perf_counter()
            if calib_start is not None and step - calib_start[1] == opts.calibration_steps:
                # The first steps (warm caches, decoding) are slow: time from here on instead.
                rate_start = (now, step)
            if calib_start is not None and step - calib_start[1] == 2 * opts.calibration_steps or (
                    rate_start is not None and step % opts.log_every == 0 and deadline is not None
                    and total_steps is not None and step < 0.8 * total_steps):
                # With --minutes the step count (and so the cosine) follows the measured speed until
                # 80% of the way; the last 20% are fixed (it is stored in the state for --resume).
                per_step = (now - rate_start[0]) / max(1, step - rate_start[1])
                estimate = step + max(1, int(max(0.0, deadline - now) / per_step))
                first = total_steps is None
                total_steps = broadcast_int(estimate, env, device)
                if first:
                    warm = warmup_steps(opts, total_steps)
                    say(f"{per_step:.2f}s per step: about {total_steps} steps in "
                        f"{opts.minutes:g} minutes")
            if step % opts.log_every == 0 or step == total_steps:
                nats = window_loss / window_n
                say(f"step {step}/{total_steps or '?'} epoch {epoch} | loss {nats:.4f} nats/dim "
                    f"({nats / math.log(2):.3f} bits/dim, training weights) | "
                    f"{window_images / max(1e-9, now - window_start):.1f} img/s | "
                    f"lr {opts.lr * factor:.2e}"
                    + (f" | grad {norm_value:.2f}" if norm_value is not None else "")
                    + f" | {_fmt_time(elapsed_before + now - start)}")
                history.append({"step": step, "loss": nats, "elapsed": elapsed_before + now - start})
                window_start, window_images, window_loss, window_n = now, 0, 0.0, 0
            if opts.eval_every and step % opts.eval_every == 0 and step != total_steps:
                together(evaluate, env, device, f"evaluating at step {step}", ranks="main")
            timed_out = deadline is not None and time.perf_counter() >= deadline
            if opts.stop_after is not None and step >= opts.stop_after:
                timed_out, done_reason = True, "stop_after"
            if stop_request.requested:
                timed_out, done_reason = True, "interrupted"
            if any_rank(timed_out, env, device):
                stop = True
                if done_reason not in ("stop_after", "interrupted"):
                    done_reason = "time"
                break
            due = time.perf_counter() - last_checkpoint >= opts.checkpoint_minutes * 60
            if any_rank(due, env, device):
                checkpoint()
                last_checkpoint = time.perf_counter()
                say(f"checkpoint at step {step}: {opts.out} + {state_path(opts.out).name}")
            if total_steps is not None and step >= total_steps:
                break

    final_bpd = None
    if done_reason not in ("stop_after", "interrupted"):
        final_bpd = together(evaluate, env, device, f"evaluating at step {step}", ranks="main")
    checkpoint()
    if done_reason == "interrupted":
        say(f"interrupted: checkpoint at step {step} written; --resume continues from it")
    wall = elapsed_before + time.perf_counter() - start
    say(f"done: {step} steps ({done_reason}), {_fmt_time(wall)} of training"
        + (f", held-out {final_bpd:.4f} bits/dim" if final_bpd is not None else "")
        + f"; wrote {opts.out}")
    if env.enabled:
        difference = replica_difference(model)
        say(f"parameters of the {env.world} processes: max difference {difference:g}")
        if difference != 0:
            raise RuntimeError("the processes ended with different parameters")
        dist.barrier()
    return {"steps": step, "epochs": epoch + batch_in_epoch / batches_per_epoch, "wall_seconds": wall,
            "heldout_bpd": final_bpd, "parameters": params, "config": config, "reason": done_reason,
            "model": model, "history": history}
