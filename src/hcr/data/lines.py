"""Word and line images with transcriptions, for the CRNN.

Two kinds of source, named by a spec string like the character data sets:

``lines:PATH``  a folder holding ``labels.tsv`` (tab-separated, a header row naming at least
                ``file`` and ``text``, optionally ``writer``; ``file`` is relative to the
                folder) and the images. The user's own words go here.
``dhsd``        the German handwritten street names (DHSD) placed in ``DATA_DIR/words/dhsd``
                (the same layout; Riaz, Saifullah, Agne, Dengel, Ahmed, DFKI; CC BY 4.0).
``fonts:KIND``  lines typeset in the fonts of ``KIND`` (``handwriting`` or ``printed``,
                :mod:`hcr.data.fonts`) by :func:`hcr.typeset.typeset` and captured on
                paper, ruled or squared paper or forms (:func:`hcr.typeset.capture`); the
                texts are names, words, dates, numbers, amounts, codes, addresses
                (:func:`hcr.texts.sample_text`). Whole font packages are held out for
                validation (about ``val_fraction`` of them), so the validation lines are
                in fonts training never saw. Options: ``count``, ``val_count``, ``seed``,
                ``val_fraction``. The lines are rendered when first preprocessed.
``synth:DATA``  lines composed from the glyphs of the character data set ``DATA`` (e.g.
                ``synth:emnist-byclass``) by :func:`hcr.compose.compose`, rendered in the
                users' styles (:func:`hcr.render.render_line`; ``train_styles: false``
                keeps training lines as composed, which is many times faster, and leaves
                the variation to training augmentation); the training split uses the
                data set's training glyphs only, validation its held-out glyphs. Options:
                ``count``, ``val_count``, ``seed``, ``random_text`` (share of training
                lines of random characters rather than words, numbers and dates),
                ``max_words`` (per training line).

Splits of a folder: ``all``; ``train`` and ``val``, where ``val`` holds whole writers
(a seeded choice of about ``val_fraction`` of them, so no writer of ``val`` is seen in
training) when a ``writer`` column exists, else a seeded share of the lines.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import DataError, InputError, UnknownNameError
from ..preprocess import ImageInput, load_image
from ..typeset import Drawn, TypesetLine
from .base import DataSource, resolve_data_dir

DHSD_CITATION = (
    "DHSD (German Handwriting Street-name Dataset): N. Riaz, S. Saifullah, S. Agne, A. Dengel, S. Ahmed (DFKI), "
    "licence CC BY 4.0"
)
LINE_SPLITS = ("all", "train", "val")


@dataclass
class LineSamples:
    """Word or line images (paths, or arrays for synthetic lines) with their texts."""

    images: Sequence[ImageInput | Drawn]
    texts: list[str]
    source: str = ""
    writers: list[str] | None = None
    ids: list[str] = field(default_factory=list)
    citation: str = ""

    def __post_init__(self) -> None:
        if len(self.images) != len(self.texts):
            raise DataError(f"{self.source}: {len(self.images)} images but {len(self.texts)} texts")
        if not self.ids:
            self.ids = [str(i) if not isinstance(i, (str, Path)) else Path(i).name for i in self.images]

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, index: Sequence[int] | np.ndarray) -> "LineSamples":
        idx = [int(i) for i in index]
        return LineSamples(
            [self.images[i] for i in idx], [self.texts[i] for i in idx], self.source,
            [self.writers[i] for i in idx] if self.writers is not None else None, [self.ids[i] for i in idx], self.citation,
        )

    def image(self, i: int) -> ImageInput:
        """Line ``i`` as an image input (a synthetic line drawn on demand is rendered)."""
        item = self.images[i]
        return item.render() if isinstance(item, Drawn) else item

    def load_image(self, i: int) -> np.ndarray:
        return load_image(self.image(i), name=self.ids[i])


def _writer_split(writers: Sequence[str], val_fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of validation lines: whole writers, chosen by a seeded hash order."""
    names = sorted(set(writers))
    order = sorted(names, key=lambda w: hashlib.sha256(f"{seed}:{w}".encode()).hexdigest())
    n_val = max(1, int(round(val_fraction * len(names)))) if len(names) > 1 else 0
    val = set(order[:n_val])
    return np.asarray([w in val for w in writers], bool)


class LineFolder:
    """A folder with ``labels.tsv`` and images (see the module docstring)."""

    def __init__(self, folder: str | Path, *, val_fraction: float = 0.1, seed: int = 0, citation: str = "", name: str = "lines") -> None:
        if not 0.0 < val_fraction < 1.0:
            raise DataError(f"val_fraction must be in (0, 1), got {val_fraction}")
        self.folder = Path(folder).expanduser()
        self.val_fraction, self.seed, self.citation, self.name = val_fraction, seed, citation, name
        self._all: LineSamples | None = None

    def _read(self) -> LineSamples:
        if self._all is not None:
            return self._all
        tsv = self.folder / "labels.tsv"
        if not tsv.is_file():
            raise DataError(f"{self.folder}: no labels.tsv (expected a tab-separated file with columns file, text[, writer])")
        try:
            with tsv.open(encoding="utf-8-sig", newline="") as handle:  # (a BOM, as some editors write, is not part of the header)
                rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
        except UnicodeDecodeError as e:
            raise DataError(f"{tsv}: not UTF-8 text (binary data, or another encoding: {e.reason}); save it as UTF-8") from None
        except (OSError, csv.Error) as e:
            raise DataError(f"{tsv}: cannot be read ({e})") from None
        if not rows:
            raise DataError(f"{tsv}: no lines listed (expected a header row with 'file' and 'text' columns, then one row per image)")
        if "file" not in rows[0] or "text" not in rows[0]:
            found = ", ".join(repr(k)[:40] for k in list(rows[0])[:6] if k is not None)
            raise DataError(f"{tsv}: needs a header row with 'file' and 'text' columns, separated by tabs (found {found or 'no columns'})")
        images: list[ImageInput] = []
        texts: list[str] = []
        writers: list[str] = []
        missing: list[str] = []
        for n, r in enumerate(rows, 2):
            f, t = (r.get("file") or "").strip(), r.get("text")
            if not f or t is None or not t.strip():
                raise DataError(f"{tsv} line {n}: empty file name or text")
            if Path(f).is_absolute() or ".." in Path(f).parts:
                raise DataError(f"{tsv} line {n}: {f[:80]!r} is not a path inside {self.folder} (file names are relative to the folder of labels.tsv)")
            p = self.folder / f
            if not p.is_file():
                missing.append(f)
                continue
            images.append(p)
            texts.append(t.strip())
            writers.append((r.get("writer") or "").strip())
        if missing:
            raise DataError(f"{tsv}: {len(missing)} listed image(s) not found, e.g. {missing[0]}")
        has_writers = all(writers) and len(set(writers)) > 1
        source = self.name if self.name != "lines" else f"lines:{self.folder}"  # a named set: no local paths in reports
        self._all = LineSamples(images, texts, source, writers if has_writers else None, citation=self.citation)
        return self._all

    def load(self, split: str = "all") -> LineSamples:
        if split not in LINE_SPLITS:
            raise UnknownNameError("split", split, list(LINE_SPLITS))
        data = self._read()
        if split == "all":
            return data
        if data.writers is not None:
            val = _writer_split(data.writers, self.val_fraction, self.seed)
        else:
            rng = np.random.default_rng(self.seed)
            val = np.zeros(len(data), bool)
            val[rng.permutation(len(data))[: max(1, int(round(self.val_fraction * len(data))))]] = True
        out = data.subset(np.flatnonzero(val if split == "val" else ~val))
        out.source = f"{data.source} ({split})"
        return out


class SyntheticLines:
    """Lines composed from a character data set's glyphs (see the module docstring)."""

    def __init__(self, data: str, source: DataSource, *, count: int = 4000, val_count: int = 600, seed: int = 0, random_text: float = 0.5, styles: bool = True, train_styles: bool = True, max_words: int = 4) -> None:
        """``source``: the character data set named ``data`` (``get_line_source("synth:DATA")`` builds it)."""
        self.data, self.source = data, source
        self.count, self.val_count, self.seed, self.random_text, self.styles = count, val_count, seed, random_text, styles
        self.train_styles, self.max_words = train_styles, max_words
        self.name = f"synth:{data}"
        self.citation = ""

    def recipe_key(self, split: str) -> str:
        """Every parameter the generated lines of ``split`` depend on; with
        :meth:`code_files` (the code that makes them) it keys a cache that skips rendering."""
        return f"{self.data}|{split}|{self.count}|{self.val_count}|{self.seed}|{self.random_text}|{self.styles}|{self.train_styles}|{self.max_words}"

    @staticmethod
    def code_files() -> tuple[str, ...]:
        """The source files that compose and render the lines."""
        from .. import compose, render

        return (str(compose.__file__), str(render.__file__), __file__)

    def load(self, split: str = "train") -> LineSamples:
        from ..compose import KINDS, GlyphPool, compose, make_text, random_text
        from ..render import STYLES, render_line

        if split not in ("train", "val"):
            raise UnknownNameError("split", split, ["train", "val"])
        src = self.source
        self.citation = getattr(src, "citation", "")
        char_split = src.default_train_split if split == "train" else _held_out_split(src)
        samples = src.load(char_split)
        pool = GlyphPool.from_samples(samples.images, samples.targets, samples.label_map.symbols)
        n = self.count if split == "train" else self.val_count
        images: list[ImageInput] = []
        texts: list[str] = []
        for i in range(n):
            rng = np.random.default_rng([self.seed, 0 if split == "train" else 1, i])
            if split == "train" and rng.random() < self.random_text:
                text = random_text(pool.symbols, rng, self.max_words)
            else:
                text = make_text(KINDS[i % len(KINDS)], rng)
                if not set(text) <= set(pool.symbols + " "):  # e.g. words from a digits-only data set
                    text = random_text(pool.symbols, rng, self.max_words)
                if split == "train":
                    text = " ".join(text.split()[: self.max_words])
            line = compose(text, pool, rng, vary=split == "train")
            if self.styles and (split == "val" or self.train_styles):
                images.append(load_image(render_line(line, STYLES[i % len(STYLES)], rng)))  # alpha flattened like any upload
            else:
                images.append(line)
            texts.append(text)
        return LineSamples(images, texts, f"{self.name} ({split}: glyphs of {char_split})", citation=self.citation, ids=[f"{split}-{i}" for i in range(n)])


#: Share of each kind's font packages held out for validation.
FONT_VAL_FRACTION = 0.15


def fonts_of_split(kind: str, split: str, seed: int = 0, val_fraction: float = FONT_VAL_FRACTION) -> list[Any]:
    """The font files (:class:`hcr.data.fonts.FontFile`) of ``kind`` for ``split``: whole
    packages, a seeded ``val_fraction`` of them held out for ``val``."""
    from .fonts import font_files

    fonts = font_files(kind)
    held = _writer_split([f.package.name for f in fonts], val_fraction, seed)
    return [f for f, v in zip(fonts, held) if v == (split == "val")]


class FontLines:
    """Lines typeset in fonts of one kind (see the module docstring)."""

    def __init__(self, kind: str, *, count: int = 20000, val_count: int = 1000, seed: int = 0, val_fraction: float = FONT_VAL_FRACTION) -> None:
        from .fonts import FONT_KINDS

        if kind not in FONT_KINDS:
            raise UnknownNameError("font kind", kind, list(FONT_KINDS))
        if not 0.0 < val_fraction < 1.0:
            raise DataError(f"val_fraction must be in (0, 1), got {val_fraction}")
        self.kind, self.count, self.val_count, self.seed, self.val_fraction = kind, count, val_count, seed, val_fraction
        self.name = f"fonts:{kind}"
        self.citation = f"{kind} fonts of the @fontsource packages (their licences: hcr.data.fonts.FONTS)"

    def recipe_key(self, split: str) -> str:
        """Every parameter the lines of ``split`` depend on (see :meth:`SyntheticLines.recipe_key`)."""
        return f"{self.name}|{split}|{self.count}|{self.val_count}|{self.seed}|{self.val_fraction}"

    @staticmethod
    def code_files() -> tuple[str, ...]:
        from .. import render, texts, typeset
        from . import fonts

        return (str(typeset.__file__), str(texts.__file__), str(render.__file__), str(fonts.__file__), __file__)

    def load(self, split: str = "train") -> LineSamples:
        from ..texts import ALPHABET, sample_text
        from ..typeset import font_charset

        if split not in ("train", "val"):
            raise UnknownNameError("split", split, ["train", "val"])
        fonts = fonts_of_split(self.kind, split, self.seed, self.val_fraction)
        n = self.count if split == "train" else self.val_count
        items: list[ImageInput | Drawn] = []
        texts: list[str] = []
        for i in range(n):
            seed = (self.seed, 2 if split == "train" else 3, i)
            rng = np.random.default_rng(list(seed))
            font = fonts[int(rng.integers(len(fonts)))]
            charset = font_charset(str(font.path), ALPHABET)
            if font.package.name.endswith("-sc"):  # small capitals: lower case is drawn as capitals
                charset = "".join(c for c in charset if not c.islower())
            text = sample_text(rng, charset)
            items.append(TypesetLine(text, str(font.path), seed))
            texts.append(text)
        return LineSamples(items, texts, f"{self.name} ({split}: {len(fonts)} fonts)", citation=self.citation, ids=[f"{split}-{i}" for i in range(n)])


def _held_out_split(src: Any) -> str:
    """The character data set's evaluation split (dev-val for the shared EMNIST subset)."""
    if getattr(src, "default_val_split", None):
        return str(src.default_val_split)
    splits = list(getattr(src, "splits", ()))
    for name in ("dev-val", "test", "val"):
        if name in splits:
            return name
    raise DataError(f"{src.name}: no held-out split for validation lines (has {splits})")


def dhsd_source(data_dir: str | Path | None = None, **options: Any) -> LineFolder:
    """DHSD as placed in ``DATA_DIR/words/dhsd`` (a clear error when it is not there)."""
    folder = resolve_data_dir(data_dir) / "words" / "dhsd"
    if not (folder / "labels.tsv").is_file():
        raise DataError(f"DHSD not found in {folder} (point --data-dir / HCR_DATA_DIR at the folder holding words/dhsd). {DHSD_SOURCE}")
    return LineFolder(folder, citation=DHSD_CITATION, name="dhsd", **options)


#: Where DHSD comes from, for ``hcr data info dhsd`` and the error when it is missing.
DHSD_SOURCE = (
    "DHSD is not downloaded by hcr: obtain the release from its authors (DFKI; CC BY 4.0) and place "
    "labels.tsv (file, text, writer) and images/ in DATA_DIR/words/dhsd (docs/datasets.md)"
)


def describe_lines(spec: str, src: LineFolder | SyntheticLines | FontLines, split: str | None = None) -> list[str]:
    """The lines ``hcr data info`` prints for the word/line data set ``src`` (named ``spec``):
    its credit, where it comes from, and, for a folder on disk, the lines, writers and
    characters of each split. Generated sets are described, not generated (that can take
    minutes)."""
    out = [spec]
    if getattr(src, "citation", ""):
        out.append(f"  credit: {src.citation}")
    if spec.partition(":")[0] == "dhsd":
        out.append(f"  where from: {DHSD_SOURCE}")
    out.append(f"  splits: {', '.join(LINE_SPLITS)}")
    if not isinstance(src, LineFolder):
        out.append("  generated on use (train with it: hcr train --config a recipe with task: sequence; docs/reading.md)")
        return out
    out.append(f"  folder: {src.folder}")
    for s in [split] if split else LINE_SPLITS:
        data = src.load(s)
        chars = sorted(set("".join(data.texts)))
        writers = len(set(data.writers)) if data.writers is not None else 0
        out.append(f"  {s}: {len(data):,} lines" + (f", {writers} writers" if writers else "") + f", {len(chars)} characters")
        if s == "all":
            out.append("    characters: " + "".join(chars).replace(" ", "␣"))
    return out


def decode_line(item: ImageInput, name: str) -> np.ndarray:
    """An image of a line data set, decoded (errors name the file)."""
    try:
        return load_image(item, name=name)
    except InputError as e:
        raise DataError(str(e)) from None
