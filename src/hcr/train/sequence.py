"""Words and lines with a CRNN and CTC: data preparation, training, evaluation, recognition.

``fit_sequence(config, out_dir)`` trains a :class:`hcr.models.crnn.CRNN` on line data sets
(:mod:`hcr.data.lines`) and writes the same files as :func:`hcr.train.classify.fit` (``best.pt``,
``last.pt`` with the state to resume, ``history.csv``/``.json``, ``learning_curve.png``,
``config.yaml``, kept by :class:`hcr.train.run.RunFolder`); the best epoch is the one with the
lowest character error rate on the first data set's validation split, and its softmax
temperature is fitted on those lines at the end (:func:`calibrate_lines`).

Every image reaches the network through :func:`hcr.preprocess.preprocess_line` with the
model file's :class:`~hcr.preprocess.LineSpec`. Batches hold lines of similar width, padded
on the right with background; each line's CTC input length is its own width's column count,
so padding is never read as text. Decoding is :mod:`hcr.ctc` (numpy).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..amp import Precision
from ..cache import cache_file, cached_arrays
from ..checkpoint import Checkpoint, load_checkpoint
from ..config import SequenceConfig
from ..ctc import Decoded, decode
from ..data import get_line_source
from ..data.lines import FontLines, LineSamples, SyntheticLines
from ..distributed import World, batch_stream, rank_seed, resume_point, session
from ..errors import HcrError
from ..labels import CTCCodec
from ..lexicon import Lexicon
from ..metrics import best_temperature, error_rates
from ..models import count_parameters, create_model, model_task
from ..models.crnn import COLUMN_STRIDE, output_columns
from ..preprocess import LineSpec, preprocess_line
from ..reading.line import line_log_probs_with, pad_lines, width_batches
from ..typeset import Drawn
from .run import Figure, RunFolder, RunRngs, RunResult, scheduler, seed_everything
from .threads import ThreadTuner, kept_threads

__all__ = ["LineSet", "SequenceFit", "calibrate_lines", "calibrate_sequence_checkpoint", "evaluate_lines", "fit_sequence", "prepare_lines"]


# --------------------------------------------------------------------------- data


@dataclass
class LineSet:
    """Preprocessed lines: ``uint8`` arrays of the spec's height and their own widths."""

    images: list[np.ndarray]
    texts: list[str]
    ids: list[str]
    source: str
    citation: str = ""
    blank_dropped: int = 0

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def widths(self) -> np.ndarray:
        return np.asarray([im.shape[1] for im in self.images], np.int64)


def _content_key(samples: LineSamples) -> bytes:
    h = hashlib.sha256()
    for item, text in zip(samples.images, samples.texts):
        if isinstance(item, Drawn):
            h.update(repr(item).encode())
        elif isinstance(item, (str, os.PathLike)):
            st = Path(item).stat()
            h.update(f"{item}|{st.st_size}|{st.st_mtime_ns}".encode())
        else:
            a = np.ascontiguousarray(np.asarray(item))
            h.update(str(a.shape).encode() + a.tobytes())
        h.update(text.encode())
    return h.digest()


#: Lines per preprocessing task (and per worker process round).
_CHUNK = 256


def _preprocess_chunk(task: tuple[LineSamples, LineSpec, int]) -> list[tuple[int, np.ndarray]]:
    """(index, uint8 line image) of the lines of a chunk the preprocessing does not find
    blank; ``start`` is the chunk's first index in the whole set."""
    samples, spec, start = task
    out = []
    for i in range(len(samples)):
        p = preprocess_line(samples.image(i), spec, name=samples.ids[i])
        if not p.blank:
            out.append((start + i, np.round(p.image * 255).astype(np.uint8)))
    return out


def prepare_lines(samples: LineSamples | Callable[[], LineSamples], spec: LineSpec, *, cache: bool = True, progress: bool = True, key: str | None = None, code: Sequence[str] = (), workers: int | None = None) -> LineSet:
    """Preprocess every line (cached in the user cache, keyed by content, spec and code);
    lines the preprocessing finds blank are dropped and counted. ``samples`` may be a
    function making them, called only when the cache misses, with ``key`` naming what it
    makes and ``code`` the source files that make it (synthetic lines: no rendering when
    they are cached). ``workers`` > 1 preprocesses (and renders) in that many processes."""
    from .. import preprocess as _pp

    made: list[LineSamples] = []

    def get() -> LineSamples:
        if not made:
            made.append(samples() if callable(samples) else samples)
        return made[0]

    def make() -> dict[str, np.ndarray]:
        samples = get()
        chunks = [range(a, min(a + _CHUNK, len(samples))) for a in range(0, len(samples), _CHUNK)]
        bar = tqdm(total=len(samples), desc=f"preprocess {samples.source}", unit="line", disable=not progress, leave=False, mininterval=0.5)
        done: list[list[tuple[int, np.ndarray]]] = []
        n_workers = min(workers or 1, len(chunks))
        if n_workers > 1:
            from concurrent.futures import ProcessPoolExecutor

            with ProcessPoolExecutor(n_workers) as pool:
                for c, part in zip(chunks, pool.map(_preprocess_chunk, [(samples.subset(list(c)), spec, c.start) for c in chunks])):
                    done.append(part)
                    bar.update(len(c))
        else:
            for c in chunks:
                done.append(_preprocess_chunk((samples.subset(list(c)), spec, c.start)))
                bar.update(len(c))
        bar.close()
        kept = [item for part in done for item in part]
        flat = [img.reshape(-1) for _, img in kept]
        texts = "\x00".join(samples.texts).encode()
        ids = "\x00".join(samples.ids).encode()
        return {"pixels": np.concatenate(flat) if flat else np.zeros(0, np.uint8), "widths": np.asarray([img.shape[1] for _, img in kept], np.int64),
                "keep": np.asarray([i for i, _ in kept], np.int64),
                "texts": np.frombuffer(texts, np.uint8), "ids": np.frombuffer(ids, np.uint8), "source": np.frombuffer(f"{samples.source}\x00{samples.citation}\x00{len(samples)}".encode(), np.uint8)}

    path = None
    if cache:
        content = key.encode() if key is not None else _content_key(get())
        path = cache_file("lines", json.dumps(spec.to_dict(), sort_keys=True), content, code=(_pp.__file__, __file__, *code))
    z = cached_arrays(path, make)
    images, offset = [], 0
    for w in z["widths"]:
        n = spec.height * int(w)
        images.append(z["pixels"][offset : offset + n].reshape(spec.height, int(w)))
        offset += n
    keep = [int(i) for i in z["keep"]]
    texts = bytes(z["texts"]).decode().split("\x00")
    ids = bytes(z["ids"]).decode().split("\x00")
    source, citation, total = bytes(z["source"]).decode().split("\x00")
    return LineSet(images, [texts[i] for i in keep], [ids[i] for i in keep], source, citation, int(total) - len(keep))


def collate(images: Sequence[np.ndarray], *, min_width: int = 8) -> tuple[torch.Tensor, np.ndarray]:
    """A (B, 1, H, W_max) float tensor in [0, 1] (padded with background) and the widths."""
    x, widths = pad_lines(images, min_width=min_width)
    return torch.from_numpy(x), widths


# --------------------------------------------------------------------------- network helpers


@torch.inference_mode()
def line_log_probs(model: nn.Module, images: Sequence[np.ndarray], device: torch.device, batch_size: int = 64) -> list[np.ndarray]:
    """Per line, the (T_i, C) log-probabilities of its own columns (batched by width)."""
    model.eval()
    run = lambda x: model(torch.from_numpy(x).to(device)).float().cpu().numpy()  # noqa: E731
    return line_log_probs_with(run, images, getattr(model, "column_stride", COLUMN_STRIDE), batch_size)


def _ctc_batch_loss(model: nn.Module, x: torch.Tensor, widths: np.ndarray, texts: Sequence[str], codec: CTCCodec, device: torch.device, stride: int | None = None) -> torch.Tensor:
    """Mean CTC loss of a batch; ``stride``: the model's column stride (needed when
    ``model`` is wrapped, e.g. in ``DistributedDataParallel``)."""
    logits = model(x.to(device, non_blocking=True))  # (B,T,C)
    if stride is None:
        stride = int(getattr(model, "column_stride", COLUMN_STRIDE))
    return _ctc_loss(logits, widths, texts, codec, stride)


def _ctc_loss(logits: torch.Tensor, widths: np.ndarray, texts: Sequence[str], codec: CTCCodec, stride: int, reduction: str = "mean") -> torch.Tensor:
    """The CTC loss of a batch's (B, T, C) logits (``reduction`` as for ``F.ctc_loss``:
    ``mean`` over the batch of each line's loss per target character, or ``sum``)."""
    log_probs = F.log_softmax(logits, dim=2).permute(1, 0, 2)  # (T,B,C) for ctc_loss
    t_max = log_probs.shape[0]
    input_lengths = torch.as_tensor([min(output_columns(int(w), stride), t_max) for w in widths], dtype=torch.long)
    targets = [codec.encode(t) for t in texts]
    target_lengths = torch.as_tensor([len(t) for t in targets], dtype=torch.long)
    flat = torch.as_tensor([k for t in targets for k in t], dtype=torch.long)
    return F.ctc_loss(log_probs, flat, input_lengths, target_lengths, blank=0, reduction=reduction, zero_infinity=True)


# --------------------------------------------------------------------------- training


@dataclass
class SequenceFit(RunResult):
    best_val_cer: float
    rank: int = 0  # under torchrun: this process's rank (0 wrote the files)


def _load_sets(cfg: SequenceConfig, spec: LineSpec, progress: bool, log: Callable[[str], None], *, validation_only: bool = False) -> tuple[list[LineSet], list[LineSet]]:
    """The training and validation lines of each of the recipe's data sets; with
    ``validation_only`` the first data set's validation lines alone (the ones that pick the
    best epoch and calibrate it), and no training lines."""
    workers = min(os.cpu_count() or 1, 4)
    trains: list[LineSet] = []
    vals: list[LineSet] = []
    for spec_name in cfg.data[:1] if validation_only else cfg.data:
        opts = dict(cfg.data_options.get(spec_name, {}))
        repeat = int(opts.pop("repeat", 1))  # the training lines this many times per epoch
        synthetic = spec_name.startswith(("synth:", "fonts:"))
        src = get_line_source(spec_name, cfg.data_dir, **opts) if synthetic else get_line_source(spec_name, cfg.data_dir, val_fraction=cfg.val_fraction, seed=cfg.seed, **opts)
        t0 = time.perf_counter()
        for split, into in (("val", vals),) if validation_only else (("train", trains), ("val", vals)):
            if isinstance(src, (SyntheticLines, FontLines)):  # cached by recipe: no rendering on a hit
                into.append(prepare_lines(functools.partial(src.load, split), spec, progress=progress, key=src.recipe_key(split), code=src.code_files(), workers=workers))
                continue
            part = src.load(split)
            if split == "train" and cfg.max_train_samples and len(part) > cfg.max_train_samples:
                part = part.subset(np.sort(np.random.default_rng(cfg.seed).permutation(len(part))[: cfg.max_train_samples]))
            into.append(prepare_lines(part, spec, progress=progress, workers=workers))
        if validation_only:
            log(f"{spec_name}: val {len(vals[-1]):,} lines from {vals[-1].source} ({time.perf_counter() - t0:.0f} s)")
            continue
        if repeat > 1:
            t = trains[-1]
            trains[-1] = LineSet(t.images * repeat, t.texts * repeat, t.ids * repeat, f"{t.source} x{repeat}", t.citation, t.blank_dropped)
        log(f"{spec_name}: train {len(trains[-1]):,} lines from {trains[-1].source}, val {len(vals[-1]):,} from {vals[-1].source} ({time.perf_counter() - t0:.0f} s)")
    return trains, vals


def evaluate_lines(model: nn.Module, lines: LineSet, codec: CTCCodec, device: torch.device, *, beam_width: int | None = None, lexicon: Lexicon | None = None) -> tuple[dict[str, float], list[Decoded]]:
    """Error rates of ``model`` on ``lines`` and the decoded results (greedy by default)."""
    decoded = [decode(lp, codec, beam_width=beam_width, lexicon=lexicon) for lp in line_log_probs(model, lines.images, device)]
    return error_rates(lines.texts, [d.text for d in decoded]), decoded


def _require_spellable(lines: LineSet, codec: CTCCodec, what: str) -> None:
    """An error naming ``lines`` and how many of them ``codec`` cannot encode (``what`` they are), if any."""
    bad = sum(not codec.can_encode(t) for t in lines.texts)
    if bad:
        raise HcrError(f"{lines.source}: {bad} {what}")


@torch.inference_mode()
def calibrate_lines(ckpt: Checkpoint, lines: LineSet, device: torch.device, batch_size: int = 64) -> dict[str, float] | None:
    """Fit ``ckpt.temperature`` of a word/line model on ``lines`` (its validation lines): the
    temperature minimising the CTC negative log-likelihood per line
    (:func:`hcr.metrics.best_temperature`). Returns it with the NLL before and after (also
    recorded in ``ckpt.metrics``), or None (nothing changed) without lines. Decoding never uses it (see :mod:`hcr.reading.line`):
    it is the model's calibration, stored like a classifier's."""
    if not len(lines):
        return None
    model, codec = ckpt.build_model().to(device), ckpt.codec
    stride = int(getattr(model, "column_stride", COLUMN_STRIDE))
    batches = []
    for idx in width_batches(lines.widths, batch_size):
        x, widths = collate([lines.images[i] for i in idx])
        batches.append((model(x.to(device)).float(), widths, [lines.texts[i] for i in idx]))

    def nll(t: float) -> float:
        return sum(float(_ctc_loss(logits / t, widths, texts, codec, stride, reduction="sum")) for logits, widths, texts in batches) / len(lines)

    before = nll(1.0)
    ckpt.temperature = best_temperature(nll)
    result = {"temperature": ckpt.temperature, "val_nll_before": round(before, 5), "val_nll_after": round(nll(ckpt.temperature), 5)}
    ckpt.metrics.update(result)
    return result


def calibrate_sequence_checkpoint(ckpt: Checkpoint, device: torch.device, *, data_dir: str | None = None, progress: bool = True, log: Callable[[str], None] = print) -> dict[str, float]:
    """Fit the temperature of a word/line model file on the validation lines its recipe
    held out (rebuilt from the recipe in the file, as training picked them), like
    :func:`fit_sequence` does at the end of a run. Sets ``ckpt.temperature`` and its metrics."""
    cfg = SequenceConfig.from_dict(ckpt.config)
    if data_dir:
        cfg.data_dir = data_dir
    if not isinstance(ckpt.spec, LineSpec):
        raise HcrError(f"{ckpt.source}: a character classifier, not a word/line model")
    _, vals = _load_sets(cfg, ckpt.spec, progress, log, validation_only=True)
    _require_spellable(vals[0], ckpt.codec, "validation line(s) with characters the model cannot write: not the data it was trained on")
    result = calibrate_lines(ckpt, vals[0], device)
    if result is None:
        raise HcrError(f"{vals[0].source}: no validation lines to calibrate on")
    return result


def fit_sequence(cfg: SequenceConfig, out_dir: str | Path, *, resume: bool = False, progress: bool = True, log: Callable[[str], None] = print, dist_backend: str = "auto") -> SequenceFit:
    """Train a sequence model; see the module docstring for what is written. Under
    ``torchrun`` the processes train together as :func:`hcr.train.classify.fit` describes."""
    with session(cfg.device, dist_backend) as (world, device), kept_threads():  # a recipe's threads last for the run
        return _fit_sequence(cfg, Path(out_dir), world, device, resume=resume, progress=progress and world.is_main, log=world.log(log))


@dataclass
class _LineBatch:
    """One step's share of a global batch of lines."""

    idx: np.ndarray  # this rank's lines
    n_global: int  # lines in the global batch (every rank)
    seed: int | None  # augmentation seed (None: the loop's generator)


def _line_batch(train: LineSet, augment: bool, rng: np.random.Generator, b: _LineBatch) -> tuple[torch.Tensor, np.ndarray, list[str]]:
    """(padded inputs, widths, texts) of a batch, augmented with ``rng`` or the batch's seed."""
    from ..augment import augment_line

    r = rng if b.seed is None else np.random.default_rng(b.seed)
    x, widths = collate([augment_line(train.images[i], r) if augment else train.images[i] for i in b.idx])
    return x, widths, [train.texts[i] for i in b.idx]


def _fit_sequence(cfg: SequenceConfig, out: Path, world: World, device: torch.device, *, resume: bool, progress: bool, log: Callable[[str], None]) -> SequenceFit:
    last, job = resume_point(out, resume=resume, world=world, task="sequence", log=log)
    if last is not None:
        cfg = SequenceConfig.from_dict(last.config)
    cfg.validate()
    if model_task(cfg.model) != "sequence":
        raise HcrError(f"model {cfg.model!r} is a character classifier; a sequence recipe needs a sequence model (crnn)")
    precision = Precision(cfg.precision, device)
    if world.is_main:
        out.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg.seed)
    spec = LineSpec.from_dict(cfg.preprocess)
    trains, vals = world.local_main_first(lambda: _load_sets(cfg, spec, progress, log))
    train = LineSet([im for s in trains for im in s.images], [t for s in trains for t in s.texts], [i for s in trains for i in s.ids], " + ".join(s.source for s in trains))
    if len(train) == 0:
        raise HcrError(f"{cfg.data}: no training lines")
    world.check_sizes(len(train), cfg.batch_size, "training lines")
    codec = last.codec if last is not None else CTCCodec.from_texts(train.texts + [t for v in vals for t in v.texts], cfg.alphabet)
    base: Checkpoint | None = None
    if cfg.finetune and last is None:
        from ..pretrained import resolve_model

        base = load_checkpoint(resolve_model(cfg.finetune))  # a model file or a shipped name (words)
        if base.task != "sequence":
            raise HcrError(f"{cfg.finetune}: not a sequence model, cannot fine-tune a CRNN from it")
        codec = CTCCodec.from_texts(train.texts + [t for v in vals for t in v.texts], cfg.alphabet + "".join(base.codec.alphabet))
        # the recipe's model_kwargs may change what has no weights (the column stride, dropout)
        cfg = cfg.updated(model=base.model_name, model_kwargs={**base.model_kwargs, **cfg.model_kwargs}, preprocess=base.spec.to_dict())
        spec = LineSpec.from_dict(cfg.preprocess)
    for v in vals:  # validation lines the alphabet cannot spell (impossible only with finetune quirks)
        _require_spellable(v, codec, "line(s) with characters outside the alphabet")
    kwargs = {"in_height": spec.height, **cfg.model_kwargs}
    model = create_model(cfg.model, codec.num_classes, **kwargs).to(device)
    if base is not None:
        carried = _init_from(model, base, codec)
        log(f"fine-tuning from {cfg.finetune}: {carried}/{codec.num_classes} classes carried over")
    steps_per_epoch = math.ceil(len(train) / cfg.batch_size)
    opt_cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    opt = opt_cls(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = scheduler(cfg, opt, cfg.epochs * steps_per_epoch)
    rng = np.random.default_rng(cfg.seed)
    info = {
        "train_source": train.source, "val_source": vals[0].source, "train_lines": len(train), "val_lines": len(vals[0]),
        "citation": "; ".join(dict.fromkeys(s.citation for s in trains if s.citation)),
    }
    run = RunFolder(out, world, job, Figure("val_cer", higher_is_better=False), patience=cfg.early_stopping, epochs=cfg.epochs,
                    template=Checkpoint(cfg.model, kwargs, Checkpoint.sequence_labels(codec), spec, {}, cfg.to_dict(), task="sequence"), log=log)
    start_epoch = run.start(last, model, opt, sched, precision, RunRngs(numpy_gens={"order": rng}))
    stride = int(getattr(model, "column_stride", COLUMN_STRIDE))
    net = world.wrap(model, device)  # what trains; ``model`` (the same weights) is saved and validated
    log(f"{cfg.model} ({count_parameters(model):,} parameters, {codec.num_classes} classes incl. blank) on {device}, {world.describe()}; train {len(train):,} lines, val {', '.join(f'{len(v):,} ({v.source})' for v in vals)}")

    def validate() -> dict[str, float]:
        """The validation figures of the epoch (rank 0 computes them)."""
        with torch.no_grad():
            model.eval()
            vloss = [float(_ctc_batch_loss(model, *collate([vals[0].images[i] for i in idx]), [vals[0].texts[i] for i in idx], codec, device)) * len(idx) for idx in width_batches(vals[0].widths, 64)]
        row = {"val_loss": round(sum(vloss) / max(len(vals[0]), 1), 5)}
        for k, v in enumerate(vals):
            rates, _ = evaluate_lines(model, v, codec, device)
            tag = "" if k == 0 else f"_{k}"
            row[f"val_cer{tag}"] = round(rates["cer"], 5)
            row[f"val_wer{tag}"] = round(rates["wer"], 5)
            row[f"val_cer_ci{tag}"] = round(rates["cer_ci"], 5)
        return row

    tuner = ThreadTuner.for_run(cfg.threads, device)
    for epoch in range(start_epoch, cfg.epochs + 1):
        world.test_exit(epoch)
        rank_rng = world.reseed(cfg.seed, epoch)  # several processes: augmentation apart from the shared order
        aug_rng = rng if rank_rng is None else rank_rng
        t0 = time.perf_counter()
        net.train()
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)  # on the device: no sync per step
        seen = 0
        batches = width_batches(train.widths, cfg.batch_size, rng)
        plan = [_LineBatch(world.shard(idx), len(idx), rank_seed(cfg.seed, world.rank, epoch, b) if cfg.loader_workers else None) for b, idx in enumerate(batches)]
        world.record_shard(epoch, (int(i) for t in plan for i in t.idx[: world.shard_size(t.n_global)]))
        stream = batch_stream(functools.partial(_line_batch, train, cfg.augment, aug_rng), plan, workers=cfg.loader_workers, pin_memory=device.type == "cuda")
        bar = tqdm(stream, total=len(plan), desc=f"epoch {epoch}/{cfg.epochs}", unit="batch", disable=not progress, leave=False, mininterval=0.5)
        if tuner is not None:
            tuner.begin()
        for b, (task, (x, widths, texts)) in enumerate(zip(plan, bar)):
            with precision.autocast():
                loss = _ctc_batch_loss(net, x, widths, texts, codec, device, stride)
            precision.step(loss if not world.active else loss * world.loss_weight(task.n_global), opt, clip=(model.parameters(), 5.0))
            sched.step()
            if tuner is not None:
                tuner.tick()
            n = world.shard_size(task.n_global)  # 0 for a rank left only a weightless filler line
            loss_sum += loss.detach().double() * n
            seen += n
            if progress and (b % 10 == 0 or b == len(plan) - 1):
                bar.set_postfix(loss=f"{float(loss_sum) / max(seen, 1):.4f}", lr=f"{sched.get_last_lr()[0]:.2e}")
        bar.close()
        total_loss, total_seen = world.all_sum([float(loss_sum), seen], device)
        train_time = time.perf_counter() - t0
        world.sync_buffers(model)
        row: dict[str, Any] = {"epoch": epoch, "train_loss": round(total_loss / total_seen, 5)}
        row.update(world.from_main(validate))
        row.update({"lr": float(f"{sched.get_last_lr()[0]:.3e}"), "seconds": round(train_time, 1), "lines_per_s": round(total_seen / train_time, 1)})
        if tuner is not None:
            row["threads"] = tuner.chosen
        improved = run.end_epoch(epoch, row, row["val_cer"], {"val_sets": [v.source for v in vals], **info, **{k: v for k, v in row.items() if k.startswith("val_")}})
        extra = "".join(f" | val{k} CER {row[f'val_cer_{k}']:.4f}" for k in range(1, len(vals)))
        log(f"epoch {epoch}/{cfg.epochs}: train loss {row['train_loss']:.4f} | val loss {row['val_loss']:.4f} CER {row['val_cer']:.4f} WER {row['val_wer']:.4f}{' *' if improved else ''}{extra} | {row['lines_per_s']:.0f} lines/s")
        if run.should_stop():
            break

    def calibrated(best: Checkpoint) -> str | None:
        result = calibrate_lines(best, vals[0], device)
        if result is None:
            return None
        return f"calibrated on validation: temperature {result['temperature']:.3f}, CTC NLL per line {result['val_nll_before']:.4f} -> {result['val_nll_after']:.4f}"

    run.finish(calibrated)
    return SequenceFit(run.best_path, run.last_path, run.history, run.best, world.rank)


def _init_from(model: nn.Module, base: Checkpoint, codec: CTCCodec) -> int:
    """Copy a sequence model's weights into ``model``; the output rows by symbol (the blank too)."""
    old = base.build_model().state_dict()
    own = model.state_dict()
    head = [k for k in own if k.startswith("head.")]
    body = {k: v for k, v in old.items() if k not in head}
    mismatched = [k for k, v in body.items() if k not in own or own[k].shape != v.shape]
    if mismatched:
        raise HcrError(f"cannot fine-tune from {base.source}: mismatched layers {mismatched[:3]}")
    model.load_state_dict(body, strict=False)
    old_syms = {s: i for i, s in enumerate(base.label_map.symbols)}
    new_syms = ("",) + codec.alphabet
    w_key = [k for k in head if k.endswith("weight")][0]
    b_key = [k for k in head if k.endswith("bias")][0]
    carried = 0
    with torch.no_grad():
        for i, s in enumerate(new_syms):
            j = old_syms.get(s)
            if j is not None:
                own[w_key][i] = old[w_key][j]
                own[b_key][i] = old[b_key][j]
                carried += 1
    model.load_state_dict(own)
    return carried


# --------------------------------------------------------------------------- inference
