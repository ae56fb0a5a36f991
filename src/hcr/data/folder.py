"""Images in one sub-folder per class (``root/A/*.png``, ``root/7/*.jpg``, ...)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ..errors import DataError, InputError
from ..labels import LabelMap
from .base import Samples
from .csv_source import _SplitArrays

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif")
_SHOW_PROBLEMS = 3


def _image_files(folder: Path) -> list[Path]:
    """Image files directly in ``folder`` (suffix case-insensitive, hidden files skipped), sorted."""
    return sorted(
        p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()
    )


class FolderSource(_SplitArrays):
    """A folder with one sub-folder per class; the sub-folder names are the class symbols.

    Images keep their own size (``Samples.images`` is a list of 2-D ``uint8`` arrays) and are
    decoded by :func:`hcr.preprocess.load_image`; unreadable files are skipped with a warning.
    """

    name = "folder"
    citation = ""

    def __init__(self, root: Path, val_fraction: float = 0.1, seed: int = 0) -> None:
        super().__init__(val_fraction, seed)
        self.root = Path(root).expanduser()
        self._classes: dict[str, list[Path]] | None = None

    def _class_files(self) -> dict[str, list[Path]]:
        """Class symbol -> its image files, for every sub-folder holding at least one image."""
        if self._classes is None:
            if not self.root.exists():
                raise DataError(f"image folder {self.root} does not exist")
            if not self.root.is_dir():
                raise DataError(f"{self.root} is not a folder (expected one sub-folder of images per class)")
            classes = {}
            for sub in sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")):
                files = _image_files(sub)
                if files:
                    classes[sub.name] = files
            hint = (f"; it holds a labels.tsv: word/line images with transcriptions are the data set lines:{self.root}"
                    if (self.root / "labels.tsv").exists() else "")
            if hint and len(classes) == 1:  # e.g. the images/ folder of a word/line set
                raise DataError(f"{self.root} has one class folder only ({next(iter(classes))}/){hint}")
            if not classes:
                raise DataError(
                    f"{self.root} has no class folders with images: expected one sub-folder per class "
                    f"(e.g. {self.root / 'A'}) holding {', '.join(IMAGE_SUFFIXES)} files{hint}"
                )
            self._classes = classes
        return self._classes

    def label_map(self) -> LabelMap:
        return LabelMap.from_symbols(self._class_files())

    def required_files(self) -> list[Path]:
        return [self.root]

    def _source_prefix(self) -> str:
        return f"{self.name}:{self.root.name}"

    def _read_all(self) -> Samples:
        from ..preprocess import load_image

        images: list[np.ndarray] = []
        targets: list[int] = []
        ids: list[str] = []
        problems: list[str] = []
        for target, files in enumerate(self._class_files().values()):
            for path in files:
                rel = path.relative_to(self.root).as_posix()
                try:
                    image = load_image(path)
                except (InputError, OSError) as e:
                    problems.append(str(e) if path.name in str(e) else f"{rel}: {e}")
                    continue
                images.append(image)
                targets.append(target)
                ids.append(rel)
        shown = "; ".join(problems[:_SHOW_PROBLEMS]) + ("; ..." if len(problems) > _SHOW_PROBLEMS else "")
        if not images:  # the reasons go in the one error line (no warning before it)
            raise DataError(f"no readable images in {self.root}" + (f": {len(problems)} unreadable ({shown})" if problems else ""))
        if problems:
            warnings.warn(f"skipped {len(problems)} unreadable image(s) in {self.root}: {shown}", stacklevel=4)
        return Samples(images, np.asarray(targets, dtype=np.int64), self.label_map(), f"{self._source_prefix()}:all", ids)
