"""Training character classifiers. No argument parsing here: the CLI calls these.

``fit(config, out_dir)`` writes the run folder of :mod:`hcr.train.run` into ``out_dir``
(``best.pt`` by validation accuracy, ready for ``hcr predict``) and calibrates the best
model's softmax temperature on the validation split.
"""

from __future__ import annotations

import functools
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..amp import Precision
from ..augment import AugmentConfig, Augmenter
from ..cache import cache_file, cached_arrays
from ..checkpoint import Checkpoint, load_checkpoint
from ..config import TrainConfig
from ..data import Samples, get_source, split_indices
from ..distributed import World, batch_stream, rank_seed, resume_point, session
from ..errors import HcrError
from ..labels import LabelMap, remap_indices
from ..metrics import best_temperature, calibration
from ..models import channels_last, count_parameters, create_model
from ..preprocess import PreprocessSpec, preprocess_many
from ..runtime.torch import batched_logits, batched_probs
from .run import Figure, RunFolder, RunResult, RunRngs, scheduler, seed_everything
from .threads import SplitStep, ThreadTuner, kept_threads

# --------------------------------------------------------------------------- data


def _cache_path(samples: Samples, spec: PreprocessSpec) -> Path | None:
    if not isinstance(samples.images, np.ndarray):
        return None  # variable-size images (folders): cheap enough to redo
    from .. import preprocess as _pp

    return cache_file(
        "preprocessed", json.dumps(spec.to_dict(), sort_keys=True), np.ascontiguousarray(samples.images).tobytes(),
        samples.targets.tobytes(), code=(_pp.__file__,),
    )


def prepare(samples: Samples, spec: PreprocessSpec, *, cache: bool = True, progress: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Model inputs for ``samples`` through the shared preprocessing.

    Returns ``(inputs (N,S,S) float32, targets, blank mask)``. Results for array data sets
    are cached (keyed by content, spec and the preprocessing code) in the user cache.
    """

    def make() -> dict[str, np.ndarray]:
        x, blank = preprocess_many(samples.images, spec, progress=progress, desc=f"preprocess {samples.source}")
        # Quantise to 8 bits like an image file: a PNG of the input round-trips exactly.
        return {"x": np.round(x * 255.0).astype(np.uint8), "blank": blank}

    z = cached_arrays(_cache_path(samples, spec) if cache else None, make)
    return z["x"].astype(np.float32) / 255.0, samples.targets, z["blank"]


@dataclass
class Split:
    x: torch.Tensor  # (N,1,S,S) float32
    y: torch.Tensor  # (N,) int64
    images: np.ndarray  # (N,S,S) float32, for galleries
    alt: torch.Tensor | None = None  # (N,1,S,S) photo-like rendered copies (training only)
    has_alt: torch.Tensor | None = None  # (N,) bool: which rows of ``alt`` hold a copy


def _add_synthetic(cfg: TrainConfig, spec: PreprocessSpec, train: Split, log: Callable[[str], None]) -> torch.Tensor | None:
    """Attach rendered copies to ``train`` and return the outlier inputs, as ``cfg`` asks."""
    from ..synthetic import outlier_inputs, rendered_copies

    if cfg.render_fraction > 0:
        n = len(train.y)
        pick = np.arange(n)
        if cfg.render_pool and cfg.render_pool < n:
            pick = np.sort(np.random.default_rng(cfg.seed).permutation(n)[: cfg.render_pool])
        t0 = time.perf_counter()
        copies, ok = rendered_copies(train.images[pick], spec, seed=cfg.seed)
        alt = np.zeros_like(train.images)
        alt[pick] = copies
        has = np.zeros(n, bool)
        has[pick] = ok
        train.alt, train.has_alt = torch.from_numpy(alt[:, None]), torch.from_numpy(has)
        log(f"rendered copies: {int(has.sum()):,} training images ({time.perf_counter() - t0:.0f} s); {cfg.render_fraction:.0%} of inputs drawn from them")
    if cfg.outliers > 0:
        t0 = time.perf_counter()
        out = outlier_inputs(cfg.outlier_pool, spec, seed=cfg.seed)
        log(f"outliers: {len(out):,} doodles ({time.perf_counter() - t0:.0f} s), {round(cfg.outliers * cfg.batch_size)} per batch")
        return torch.from_numpy(out[:, None].copy())
    return None


def _to_split(x: np.ndarray, y: np.ndarray, keep: np.ndarray) -> Split:
    x, y = x[keep], y[keep]
    return Split(torch.from_numpy(x[:, None].copy()), torch.from_numpy(y.copy()), x)


def _train_val(cfg: TrainConfig, spec: PreprocessSpec, progress: bool) -> tuple[Split, Split, LabelMap, dict[str, Any]]:
    src = get_source(cfg.data, cfg.data_dir, **cfg.data_options)
    train = src.load(cfg.train_split or src.default_train_split)
    if cfg.max_train_samples and len(train) > cfg.max_train_samples:
        idx = np.sort(np.random.default_rng(cfg.seed).permutation(len(train))[: cfg.max_train_samples])
        train = train.subset(idx)
    xt, yt, bt = prepare(train, spec, progress=progress)
    if cfg.val_split:
        val = src.load(cfg.val_split)
        tr_idx = np.arange(len(train))
        xv, yv, bv = prepare(val, spec, progress=progress)
    else:
        tr_idx, va_idx = split_indices(len(train), cfg.val_fraction, cfg.seed, train.targets)
        val = train.subset(va_idx)
        xv, yv, bv = xt[va_idx], yt[va_idx], bt[va_idx]
    keep_t = np.zeros(len(xt), bool)
    keep_t[tr_idx] = True
    keep_t &= ~bt
    info = {
        "train_source": train.source,
        "val_source": val.source if cfg.val_split else f"{train.source} (seeded {cfg.val_fraction:.0%} held out, seed {cfg.seed})",
        "train_samples": int(keep_t.sum()),
        "val_samples": int((~bv).sum()),
        "blank_dropped": int(bt[tr_idx].sum() + bv.sum()),
        "citation": getattr(src, "citation", ""),
    }
    return _to_split(xt, yt, keep_t), _to_split(xv, yv, ~bv), train.label_map, info


# --------------------------------------------------------------------------- model set-up


def _classifier_head(model: nn.Module) -> nn.Linear:
    """The last Linear layer: the per-class output."""
    last: nn.Linear | None = None
    for m in model.modules():
        if isinstance(m, nn.Linear):
            last = m
    if last is None:
        raise HcrError("model has no Linear output layer to fine-tune")
    return last


def init_from_checkpoint(model: nn.Module, ckpt: Checkpoint, labels: LabelMap) -> int:
    """Copy weights from ``ckpt`` into ``model``; output rows are matched by symbol, so the
    label set may differ (new classes start fresh). Returns how many classes were carried over."""
    head = _classifier_head(model)
    old = ckpt.build_model()
    old_head = _classifier_head(old)
    head_name = next(n for n, m in old.named_modules() if m is old_head)
    head_keys = {f"{head_name}.weight", f"{head_name}.bias"}
    body = old.state_dict()
    own = model.state_dict()
    mismatched = [k for k in body if k not in head_keys and (k not in own or own[k].shape != body[k].shape)]
    if mismatched:
        raise HcrError(f"cannot fine-tune from a {ckpt.model_name!r} checkpoint into this model: mismatched layers {mismatched[:3]}")
    model.load_state_dict({k: v for k, v in body.items() if k not in head_keys}, strict=False)
    mapping = remap_indices(labels, ckpt.label_map)
    with torch.no_grad():
        for new_i, old_i in enumerate(mapping):
            if old_i >= 0:
                head.weight[new_i] = old_head.weight[old_i]
                if head.bias is not None and old_head.bias is not None:
                    head.bias[new_i] = old_head.bias[old_i]
    return sum(i >= 0 for i in mapping)


def _augmenter(cfg: TrainConfig) -> Augmenter | None:
    """The batch augmenter of a recipe; None when it would change nothing."""
    aug = AugmentConfig.preset(cfg.augment) if isinstance(cfg.augment, str) else AugmentConfig.from_dict(cfg.augment)
    return None if aug == AugmentConfig.preset("none") else Augmenter(aug)


# --------------------------------------------------------------------------- loops


def evaluate_split(model: nn.Module, split: Split, device: torch.device, batch_size: int = 512) -> tuple[float, float, np.ndarray]:
    """(mean cross-entropy, accuracy, probabilities) of ``model`` on ``split``."""
    probs = batched_probs(model, split.x, batch_size=batch_size, device=device)
    y = split.y.numpy()
    p_true = np.clip(probs[np.arange(len(y)), y], 1e-12, 1.0)
    return float(-np.log(p_true).mean()), float((probs.argmax(1) == y).mean()), probs


def fit_temperature(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """The softmax temperature minimising the cross-entropy on held-out data
    (:func:`hcr.metrics.best_temperature`)."""
    return best_temperature(lambda t: float(F.cross_entropy(logits / t, targets)))


def calibrate(ckpt: Checkpoint, val: Split, device: torch.device) -> dict[str, float]:
    """Fit ``ckpt.temperature`` on ``val``; returns the validation ECE before and after, also
    recorded in ``ckpt.metrics``."""
    model = channels_last(ckpt.build_model().to(device))
    logits = batched_logits(model, val.x, device=device)
    y = val.y.numpy()

    def ece(t: float) -> float:
        p = torch.softmax(logits / t, 1).numpy()
        return float(calibration(p.max(1), p.argmax(1) == y)["ece"])

    before = ece(1.0)
    ckpt.temperature = fit_temperature(logits, val.y)
    result = {"temperature": ckpt.temperature, "val_ece_before": round(before, 5), "val_ece_after": round(ece(ckpt.temperature), 5)}
    ckpt.metrics.update(result)
    return result


@dataclass
class FitResult(RunResult):
    best_val_acc: float
    rank: int = 0  # under torchrun: this process's rank (0 wrote the files)


@dataclass
class _Batch:
    """One step's share of a global batch: what :func:`_assemble` needs to build it."""

    idx: torch.Tensor  # this rank's rows of the training split
    swap: torch.Tensor | None  # per row: use the rendered copy
    out_idx: torch.Tensor | None  # outlier doodles joining the batch
    n_global: int  # images in the global batch (every rank)
    out_global: int  # outliers in the global batch
    seed: int | None  # the augmentation seed of the batch in a loader worker (None: the loop's generator)


def _assemble(train: Split, outliers: torch.Tensor | None, augment: Augmenter | None, b: _Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets) of a batch; augmented here only in a loader worker (``b.seed``)."""
    xb = train.x[b.idx]
    if b.swap is not None and train.alt is not None:
        xb = torch.where(b.swap[:, None, None, None], train.alt[b.idx], xb)
    if b.out_idx is not None and outliers is not None:
        xb = torch.cat([xb, outliers[b.out_idx]])
    if augment is not None and b.seed is not None:
        xb = augment(xb, torch.Generator().manual_seed(b.seed))
    return xb, train.y[b.idx]


def _plan_epoch(train: Split, cfg: TrainConfig, gen: torch.Generator, steps: int, n_out: int, n_outliers: int, world: World, seeds: bool, epoch: int) -> list[_Batch]:
    """The epoch's batches for this rank. All shared randomness (order, rendered-copy swaps,
    outlier picks) is drawn here from ``gen`` in the order the one-process loop drew it, for
    the global batch, before this rank takes its stride (:meth:`World.shard`)."""
    order = torch.randperm(len(train.y), generator=gen)
    plan = []
    for b in range(steps):
        idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
        swap = out_idx = None
        if train.alt is not None and train.has_alt is not None and cfg.render_fraction > 0:
            swap = world.shard(train.has_alt[idx] & (torch.rand(len(idx), generator=gen) < cfg.render_fraction))
        if n_out:
            out_idx = world.shard(torch.randint(n_outliers, (n_out,), generator=gen))
        plan.append(_Batch(world.shard(idx), swap, out_idx, len(idx), n_out, rank_seed(cfg.seed, world.rank, epoch, b) if seeds else None))
    return plan


def _whole_step(model: nn.Module, opt: torch.optim.Optimizer, xb: torch.Tensor, yb: torch.Tensor, task: _Batch, cfg: TrainConfig, world: World,
                device: torch.device, precision: Precision) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward, backward and optimizer step of a batch in one pass (with its outliers; this
    rank's share of the global batch's loss); returns this rank's loss and the labelled
    inputs' logits."""
    with precision.autocast():
        logits = model(xb.contiguous(memory_format=torch.channels_last))  # (B + outliers, n)
        if task.out_idx is not None:
            logits, out_logits = logits[: len(yb)], logits[len(yb) :]
        terms = [(F.cross_entropy(logits, yb, label_smoothing=cfg.label_smoothing), task.n_global)]
        if task.out_idx is not None:  # outlier exposure: KL divergence from the uniform distribution (0 when uniform)
            kl = -F.log_softmax(out_logits, dim=1).mean(dim=1) - math.log(out_logits.shape[1])
            terms.append((cfg.outlier_weight * kl.mean(), task.out_global))
        loss = terms[0][0] if len(terms) == 1 else terms[0][0] + terms[1][0]  # this rank's loss, as reported
        # the gradient DDP averages is the global batch's: each term weighted by this rank's share of it
        step_loss = loss if not world.active else sum((t * world.loss_weight(n) for t, n in terms), torch.zeros((), device=device))
    precision.step(step_loss, opt)
    return loss, logits


def train_epoch(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler,
    train: Split,
    augment: Augmenter | None,
    cfg: TrainConfig,
    gen: torch.Generator,
    aug_gen: torch.Generator,
    device: torch.device,
    *,
    desc: str = "train",
    progress: bool = True,
    max_steps: int | None = None,
    outliers: torch.Tensor | None = None,
    world: World | None = None,
    epoch: int = 0,
    precision: Precision | None = None,
    tuner: ThreadTuner | None = None,
    split: SplitStep | None = None,
) -> tuple[float, int, int]:
    """One pass over ``train`` in a seeded order: (summed loss, correct, images seen), summed
    over all ranks of ``world``.

    With rendered copies on ``train`` (``cfg.render_fraction``), each drawn input is swapped
    for its copy with that probability; with ``outliers``, ``cfg.outliers * batch_size``
    doodles join each batch and are trained towards the uniform distribution. In a world of
    several processes each trains on its stride of every global batch (:mod:`hcr.distributed`);
    with ``cfg.loader_workers`` the batches are built and augmented in worker processes. A
    ``tuner`` (``threads: auto``) times the steps and sets the number of CPU threads; with
    ``split`` (``threads: split``: no outliers, fp32, one process) each step's batch is cut
    between threads.
    """
    model.train()
    world = world or World()
    precision = precision or Precision("fp32", device)
    steps = math.ceil(len(train.y) / cfg.batch_size)
    if max_steps is not None:
        steps = min(steps, max_steps)
    n_out = round(cfg.outliers * cfg.batch_size) if outliers is not None and len(outliers) else 0
    workers = cfg.loader_workers
    plan = _plan_epoch(train, cfg, gen, steps, n_out, len(outliers) if outliers is not None else 0, world, workers > 0, epoch)
    world.record_shard(epoch, (int(i) for b in plan for i in b.idx[: world.shard_size(b.n_global)]))
    # running sums stay on the device: reading them back each step would stall a GPU
    loss_sum = torch.zeros((), device=device)
    ok_sum = torch.zeros((), dtype=torch.int64, device=device)
    seen = 0
    stream = batch_stream(functools.partial(_assemble, train, outliers, augment if workers else None), plan, workers=workers, pin_memory=device.type == "cuda")
    bar = tqdm(stream, total=steps, desc=desc, unit="batch", disable=not progress, leave=False, mininterval=0.5)
    if tuner is not None:
        tuner.begin()
    for b, (task, (xb, yb)) in enumerate(zip(plan, bar)):
        xb = xb.to(device, non_blocking=True)
        yb = yb.to(device, non_blocking=True)
        if augment is not None and not workers:
            xb = augment(xb, aug_gen)
        if split is not None:
            opt.zero_grad(set_to_none=True)
            loss, logits = split.run(xb.contiguous(memory_format=torch.channels_last), yb, functools.partial(F.cross_entropy, label_smoothing=cfg.label_smoothing),
                                     [rank_seed(cfg.seed, k, epoch, b) for k in range(split.parts)])
            opt.step()
        else:
            loss, logits = _whole_step(model, opt, xb, yb, task, cfg, world, device, precision)
        sched.step()
        if tuner is not None:
            tuner.tick()
        n = world.shard_size(task.n_global)  # 0 for a rank left only a weightless filler row
        if n:
            loss_sum += loss.detach().float() * n
            ok_sum += (logits.detach().argmax(1) == yb).sum()
            seen += n
        if progress and (b % 20 == 0 or b == steps - 1):
            bar.set_postfix(loss=f"{float(loss_sum) / max(seen, 1):.4f}", acc=f"{int(ok_sum) / max(seen, 1):.4f}", lr=f"{sched.get_last_lr()[0]:.2e}")
    bar.close()
    if not world.active:
        return float(loss_sum), int(ok_sum), seen
    total_loss, total_ok, total_seen = world.all_sum([float(loss_sum), int(ok_sum), seen], device)
    return total_loss, int(total_ok), int(total_seen)


def build_optimizer(cfg: TrainConfig, model: nn.Module, steps_per_epoch: int) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    opt_cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    # fused kernels: one update for all parameters instead of one per tensor
    opt = opt_cls(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    return opt, scheduler(cfg, opt, cfg.epochs * steps_per_epoch)


def fit(cfg: TrainConfig, out_dir: str | Path, *, resume: bool = False, progress: bool = True, log: Callable[[str], None] = print, dist_backend: str = "auto") -> FitResult:
    """Train ``cfg.model`` on ``cfg.data``; see the module docstring for what is written.

    Under ``torchrun`` the processes train one model together (:mod:`hcr.distributed`;
    ``dist_backend``: auto, gloo or nccl): rank 0 logs and writes the run folder, and a
    job torchrun restarts after a failure resumes from ``last.pt`` by itself. On resume the
    interrupted run's recipe wins; the device and backend are this call's.
    """
    with session(cfg.device, dist_backend) as (world, device), kept_threads():  # a recipe's threads last for the run
        return _fit(cfg, Path(out_dir), world, device, resume=resume, progress=progress and world.is_main, log=world.log(log))


def _fit(cfg: TrainConfig, out: Path, world: World, device: torch.device, *, resume: bool, progress: bool, log: Callable[[str], None]) -> FitResult:
    last, job = resume_point(out, resume=resume, world=world, task="classify", log=log)
    if last is not None:
        cfg = TrainConfig.from_dict(last.config)  # the interrupted run's recipe wins
    base: Checkpoint | None = None
    if cfg.finetune and last is None:
        # the architecture and preprocessing come from the model being fine-tuned
        from ..pretrained import resolve_model

        base = load_checkpoint(resolve_model(cfg.finetune))  # a model file or a shipped name (chars, ...)
        cfg = cfg.updated(model=base.model_name, model_kwargs=base.model_kwargs, preprocess=cfg.preprocess or base.char_spec.to_dict())
    cfg.validate()
    precision = Precision(cfg.precision, device)
    if world.is_main:
        out.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg.seed)
    spec = PreprocessSpec.from_dict(cfg.preprocess)
    train, val, labels, info = world.local_main_first(lambda: _train_val(cfg, spec, progress))
    if len(train.y) == 0:
        raise HcrError(f"{cfg.data}: no training samples")
    world.check_sizes(len(train.y), cfg.batch_size)
    outliers = world.local_main_first(lambda: _add_synthetic(cfg, spec, train, log))
    model = create_model(cfg.model, len(labels), **cfg.model_kwargs)
    if base is not None:
        carried = init_from_checkpoint(model, base, labels)
        log(f"fine-tuning from {cfg.finetune}: {carried}/{len(labels)} classes carried over")
    model = channels_last(model.to(device))
    opt, sched = build_optimizer(cfg, model, math.ceil(len(train.y) / cfg.batch_size))
    augment = _augmenter(cfg)
    gen = torch.Generator().manual_seed(cfg.seed)
    aug_gen = torch.Generator(device=device).manual_seed(cfg.seed + 1)
    run = RunFolder(out, world, job, Figure("val_acc", higher_is_better=True), patience=cfg.early_stopping, epochs=cfg.epochs,
                    template=Checkpoint(cfg.model, cfg.model_kwargs, labels, spec, {}, cfg.to_dict()), log=log)
    start_epoch = run.start(last, model, opt, sched, precision, RunRngs(torch_gens={"order": gen, "augment": aug_gen}))
    net = world.wrap(model, device)  # what trains; ``model`` (the same weights) is what is saved and validated
    tuner = ThreadTuner.for_run(cfg.threads, device)
    log(f"{cfg.model} ({count_parameters(model):,} parameters) on {device}, {world.describe()}{'' if cfg.precision == 'fp32' else ', ' + cfg.precision}; "
        f"train {info['train_samples']:,} from {info['train_source']}, val {info['val_samples']:,} from {info['val_source']}")
    split = SplitStep.for_run(cfg.threads, model, device, world.active)
    try:
        for epoch in range(start_epoch, cfg.epochs + 1):
            world.test_exit(epoch)
            world.reseed(cfg.seed, epoch, aug_gen)
            t0 = time.perf_counter()
            tot_loss, tot_ok, seen = train_epoch(net, opt, sched, train, augment, cfg, gen, aug_gen, device, desc=f"epoch {epoch}/{cfg.epochs}", progress=progress,
                                                 outliers=outliers, world=world, epoch=epoch, precision=precision, tuner=tuner, split=split)
            train_time = time.perf_counter() - t0
            world.sync_buffers(model)
            val_loss, val_acc = world.from_main(lambda: evaluate_split(model, val, device)[:2])
            row = {
                "epoch": epoch,
                "train_loss": round(tot_loss / seen, 5),
                "train_acc": round(tot_ok / seen, 5),
                "val_loss": round(val_loss, 5),
                "val_acc": round(val_acc, 5),
                "lr": float(f"{sched.get_last_lr()[0]:.3e}"),
                "seconds": round(train_time, 1),
                "images_per_s": round(seen / train_time, 1),
                **({"threads": tuner.chosen} if tuner is not None else {}),
            }
            improved = run.end_epoch(epoch, row, val_acc, info)
            log(
                f"epoch {epoch}/{cfg.epochs}: train loss {row['train_loss']:.4f} acc {row['train_acc']:.4f} | "
                f"val loss {val_loss:.4f} acc {val_acc:.4f}{' *' if improved else ''} | {row['images_per_s']:.0f} img/s"
            )
            if run.should_stop():
                break
    finally:
        if split is not None:
            split.close()

    def calibrated(best: Checkpoint) -> str:
        result = calibrate(best, val, device)
        return f"calibrated on validation: temperature {result['temperature']:.3f}, ECE {result['val_ece_before']:.4f} -> {result['val_ece_after']:.4f}"

    run.finish(calibrated)
    return FitResult(run.best_path, run.last_path, run.history, run.best, world.rank)


# --------------------------------------------------------------------------- evaluation


__all__ = ["FitResult", "Split", "build_optimizer", "calibrate", "evaluate_split", "fit", "fit_temperature", "init_from_checkpoint", "prepare", "train_epoch"]
