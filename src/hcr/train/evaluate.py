"""Evaluating model files on a data set's split (:func:`evaluate_checkpoint` for classifiers,
:func:`evaluate_sequence_checkpoint` for word/line models), the names of splits in reports,
and calibrating a saved classifier (:func:`calibrate_checkpoint`)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..checkpoint import load_checkpoint, save_checkpoint
from ..config import TrainConfig
from ..data import get_line_source, get_source
from ..errors import HcrError
from ..labels import remap_indices
from ..metrics import error_rates, levenshtein
from ..modelfile import write_atomic
from ..reading.line import LineRecognizer
from ..runtime import Backend, load_backend
from ..runtime.torch import resolve_device
from .classify import _train_val, calibrate, prepare
from .sequence import calibrate_sequence_checkpoint, prepare_lines

#: Display names of the EMNIST subsets.
_EMNIST_NAMES = {"byclass": "ByClass", "bymerge": "ByMerge", "balanced": "Balanced", "letters": "Letters", "digits": "Digits", "mnist": "MNIST"}


def split_name(data: str, split: str) -> str:
    """An honest short name for a split: "EMNIST ByClass subset (dev-val)" for the
    development subsets, "MNIST official test set", "EMNIST ByClass official test split"."""
    name = data.split(":")[0]
    if name.startswith("emnist-") and name[7:] in _EMNIST_NAMES:
        subset = _EMNIST_NAMES[name[7:]]
        return f"EMNIST {subset} subset ({split})" if split.startswith("dev-") else f"EMNIST {subset} official {split} split"
    if name == "mnist" and split == "test":
        return "MNIST official test set"
    return f"{data} ({split} split)"


def describe_split(data: str, split: str, n: int) -> str:
    """:func:`split_name` with the sample count, and a warning on development subsets."""
    text = f"{split_name(data, split)}, {n:,} images"
    if data.startswith("emnist-") and split.startswith("dev-"):
        text += " — not the official EMNIST test set"
    return text


def evaluate_checkpoint(model_path: str | Path, data: str, split: str | None, out_dir: str | Path, *, data_dir: str | None = None, data_options: dict[str, Any] | None = None, device: str = "auto", progress: bool = True, known_classes_only: bool = False, backend: Backend | None = None) -> dict[str, Any]:
    """Evaluate a model file on a data split and write the full report into ``out_dir``
    (``backend``: the file already loaded, e.g. to find its task).

    Any classifier file :func:`hcr.runtime.load_backend` reads is evaluated the same way:
    hcr ``.pt``, exported ONNX / TorchScript / Keras / SavedModel / TFLite, imported Keras.

    Every sample counts: images the preprocessing finds blank are answered "no character"
    (an error), as ``hcr predict`` would answer them. With ``known_classes_only`` the samples
    of classes the model does not have are left out (e.g. a digits model on the digits of
    EMNIST ByClass), and the report says how many.
    """
    from ..metrics import classification_report
    from ..report import write_evaluation_report

    backend = backend or load_backend(model_path, device=device)  # any format; probabilities come from backend.probs
    label_map, name = backend.label_map, backend.meta.model_name
    src = get_source(data, data_dir, **(data_options or {}))
    split = split or src.default_val_split or src.splits[-1]
    samples = src.load(split)
    n_all, dropped = len(samples), 0
    if list(samples.label_map.symbols) != list(label_map.symbols):
        mapping = np.array(remap_indices(samples.label_map, label_map))
        if known_classes_only:
            known = np.flatnonzero(mapping[samples.targets] >= 0)
            if len(known) == 0:
                raise HcrError(f"{data} ({split}) has no sample of a class the model knows")
            dropped = len(samples) - len(known)
            samples = samples.subset(known)
        if (mapping[np.unique(samples.targets)] < 0).any():
            missing = [samples.label_map[int(t)] for t in np.unique(samples.targets) if mapping[t] < 0]
            raise HcrError(f"{data} has classes the model does not know: {missing[:10]} (evaluate on the known ones with --known-classes-only)")
        targets = mapping[samples.targets]
    else:
        targets = samples.targets
    x, _, blank = prepare(samples, backend.spec, progress=progress)
    probs = np.full((len(x), len(label_map)), 0.0, np.float32)
    if (~blank).any():
        probs[~blank] = backend.probs(x[~blank])
    # a blank answer is "no character": make it count as an error in every metric
    probs[blank] = 1.0 / len(label_map)
    rep = classification_report(targets, probs, label_map.symbols)
    desc = describe_split(data, split, n_all)
    if dropped:
        desc += f"; only the {len(x):,} samples of classes the model knows ({dropped:,} others left out)"
    rep.update({"data": data, "split": split, "data_description": desc, "blank_inputs": int(blank.sum()), "left_out_unknown_classes": dropped, "model_file": str(model_path), "model": name})
    credits = [c for c in (getattr(src, "citation", ""), str(backend.meta.metrics.get("citation", ""))) if c]
    write_evaluation_report(
        Path(out_dir), rep, x, targets, probs, label_map.symbols,
        title=f"{name} on {data} ({split})", data_description=desc,
        model_description=f"{name} from {model_path} (trained on {backend.meta.metrics.get('train_source', '?')})",
        credits=list(dict.fromkeys(credits)),
    )
    return rep


def calibrate_checkpoint(path: str | Path, *, data_dir: str | None = None, device: str = "auto", progress: bool = True) -> dict[str, float]:
    """Re-create a model's validation split from its recipe, fit its temperature, save in
    place. A character classifier: by expected calibration error (``val_ece_before``,
    ``val_ece_after``); a word/line model: by the CTC negative log-likelihood per line
    (``val_nll_before``, ``val_nll_after``; :func:`hcr.train.sequence.calibrate_lines`)."""
    ckpt = load_checkpoint(path)
    if ckpt.task == "sequence":
        result = calibrate_sequence_checkpoint(ckpt, resolve_device(device), data_dir=data_dir, progress=progress, log=lambda _: None)
        save_checkpoint(ckpt, path)
        return result
    cfg = TrainConfig.from_dict(ckpt.config)
    if data_dir:
        cfg.data_dir = data_dir
    _, val, labels, _ = _train_val(cfg, ckpt.char_spec, progress)
    if labels.symbols != ckpt.label_map.symbols:
        raise HcrError(f"{path}: its recipe's data set no longer has the model's classes")
    result = calibrate(ckpt, val, resolve_device(device))
    save_checkpoint(ckpt, path)
    return result


def evaluate_sequence_checkpoint(model_path: str | Path, data: str, split: str | None, out_dir: str | Path, *, data_dir: str | None = None, device: str = "auto", beam_width: int | None = None, lexicon: str | os.PathLike[str] | None = None, progress: bool = True, worst: int = 24, backend: Backend | None = None) -> dict[str, Any]:
    """Character and word error rates of a sequence model (an hcr file or an exported one, see
    :class:`~hcr.reading.line.LineRecognizer`; ``backend``: the file already loaded) on a line data split, written to
    ``out_dir``: ``report.md``, ``report.json``, ``results.tsv`` (every line: id, truth,
    read, edit distance) and ``worst.png`` (the ``worst`` lines with the most errors)."""
    from ..report import plot_line_gallery

    backend = backend or load_backend(str(model_path), device=device)
    if backend.task != "sequence":
        raise HcrError(f"{model_path}: a character classifier; evaluate it on a character data set (hcr evaluate MODEL --data emnist-byclass ...)")
    rec = LineRecognizer(backend, beam_width=beam_width, lexicon=lexicon)
    src = get_line_source(data, data_dir)
    split = split or ("val" if not data.startswith("lines:") else "all")
    samples = src.load(split)
    lines = prepare_lines(samples, rec.spec, progress=progress)
    codec = rec.codec
    unknown = sorted({c for t in lines.texts for c in t if not codec.can_encode(c)})
    lex = rec.lexicon
    hyps = [rec.decode(lp).text for lp in rec.log_probs(lines.images)]
    rates = error_rates(lines.texts, hyps)
    dist = [levenshtein(r, h) for r, h in zip(lines.texts, hyps)]
    desc = f"{samples.source}, {len(lines):,} lines" + (f" ({lines.blank_dropped} blank images left out)" if lines.blank_dropped else "")
    rep = {
        "model_file": str(model_path), "model": rec.backend.meta.model_name, "format": rec.backend.format, "data": data, "split": split, "data_description": desc,
        "decoding": "greedy" if beam_width in (None, 1) and lex is None else f"beam search (width {beam_width or 16})" + (" with lexicon" if lex else ""),
        **{k: (round(v, 6) if isinstance(v, float) else v) for k, v in rates.items()},
        "characters_outside_alphabet": "".join(unknown), "citation": samples.citation,
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    order = sorted(range(len(lines)), key=lambda i: (-dist[i] / max(len(lines.texts[i]), 1), i))[:worst]
    plot_line_gallery([lines.images[i] for i in order], [lines.texts[i] for i in order], [hyps[i] for i in order], out / "worst.png",
                      title=f"worst {len(order)} lines by CER: {desc}")
    write_atomic(out / "results.tsv", "id\ttruth\tread\tedits\n" + "".join(f"{lines.ids[i]}\t{lines.texts[i]}\t{hyps[i]}\t{dist[i]}\n" for i in range(len(lines))))
    write_atomic(out / "report.json", json.dumps(rep, indent=1, ensure_ascii=False))
    md = [
        f"# {rec.backend.meta.model_name} on {data} ({split})", "", f"- data: {desc}", f"- model: {model_path}", f"- decoding: {rep['decoding']}",
        f"- **CER {100 * rates['cer']:.2f}%** (case-insensitive {100 * rates['cer_ci']:.2f}%), WER {100 * rates['wer']:.2f}% "
        f"(case-insensitive {100 * rates['wer_ci']:.2f}%), lines read exactly {100 * rates['line_acc']:.2f}%",
        "- CER/WER: edit distance over the reference length, summed over all lines", "",
        "![worst lines](worst.png)", "",
    ]
    if unknown:
        md.append(f"Characters in the data the model cannot write (always errors): {''.join(unknown)!r}")
    if samples.citation:
        md.append(f"Data credit: {samples.citation}")
    write_atomic(out / "report.md", "\n".join(md) + "\n")
    return rep


__all__ = ["calibrate_checkpoint", "describe_split", "evaluate_checkpoint", "evaluate_sequence_checkpoint", "split_name"]
