"""MNIST and EMNIST from their official gzip IDX files.

Quirks are fixed here, once: EMNIST stores every image transposed (columns first), and
EMNIST Letters numbers its classes from 1. After loading, every sample is upright with
targets starting at 0, like MNIST.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError
from ..labels import DIGITS, LabelMap
from .base import DataSource, Samples, resolve_data_dir
from .download import RemoteFile, ensure_files, extract_members
from .idx import read_idx_pair

MNIST_CITATION = "MNIST: Yann LeCun, Corinna Cortes and Christopher J.C. Burges (1998)"
EMNIST_CITATION = (
    "EMNIST: Gregory Cohen, Saeed Afshar, Jonathan Tapson and André van Schaik, "
    "'EMNIST: an extension of MNIST to handwritten letters' (2017), derived from NIST Special Database 19"
)

_MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://yann.lecun.com/exdb/mnist/")
# md5 of the gzip files as published, and of their decompressed content (hand-placed files
# that were re-compressed are accepted when their content matches).
_MNIST_FILES = {
    "train-images-idx3-ubyte.gz": ("f68b3c2dcbeaeaa6fbfbe8f4c8a4b2d1", "6bbc9ace898e44ae57da46a324031adb"),
    "train-labels-idx1-ubyte.gz": ("d53e105ee54ea40749a09fcbcd1e9432", "a25bea736e30d166cdddb491f175f624"),
    "t10k-images-idx3-ubyte.gz": ("9fb629c4189551a2d022fa330f9573f3", "2646ac647ad5339dbf082846283269ea"),
    "t10k-labels-idx1-ubyte.gz": ("ec29112dd5afa0611ce80d1b7f02629c", "27ae3e4e09519cfbb04c329615203637"),
}

EMNIST_ZIP = RemoteFile(
    "gzip.zip",
    ("https://biometrics.nist.gov/cs_links/EMNIST/gzip.zip",),
    md5="58c8d27c78d21e728a6bc7b3cc06412e",
)
EMNIST_SUBSETS = ("byclass", "bymerge", "balanced", "letters", "digits", "mnist")


class MnistSource(DataSource):
    """The 70,000 MNIST digits: splits ``train`` (60,000) and ``test`` (10,000)."""

    name = "mnist"
    splits = ("train", "test")
    default_val_split = "test"
    citation = MNIST_CITATION

    def __init__(self, data_dir: str | Path | None = None) -> None:
        self.dir = resolve_data_dir(data_dir) / "mnist"

    def remote_files(self) -> list[RemoteFile]:
        return [RemoteFile(f, tuple(m + f for m in _MNIST_MIRRORS), md5=md5, content_md5=cmd5) for f, (md5, cmd5) in _MNIST_FILES.items()]

    def required_files(self) -> list[Path]:
        return [self.dir / f for f in _MNIST_FILES]

    def download(self, progress: bool = True) -> list[Path]:
        return ensure_files(self.remote_files(), self.dir, download=True, progress=progress)

    def label_map(self) -> LabelMap:
        return LabelMap(DIGITS)

    def load(self, split: str) -> Samples:
        self.check_split(split)
        prefix = "train" if split == "train" else "t10k"
        files = [rf for rf in self.remote_files() if rf.filename.startswith(prefix)]
        img, lab = ensure_files(files, self.dir, download=self.auto_download)
        x, y = read_idx_pair(img, lab)
        return Samples(x, y, self.label_map(), source=f"mnist:{split}")


class EmnistSource(DataSource):
    """One EMNIST split (``byclass``, ``letters``...), read from the official file layout.

    Splits are the official ``train`` and ``test``, plus any other split whose files are
    present (e.g. the development subset ``dev-train`` / ``dev-val``), found by name:
    ``emnist-<subset>-<split>-images-idx3-ubyte.gz``.
    """

    citation = EMNIST_CITATION

    def __init__(self, subset: str, data_dir: str | Path | None = None) -> None:
        if subset not in EMNIST_SUBSETS:
            raise DataError(f"unknown EMNIST split {subset!r}; choose one of: {', '.join(EMNIST_SUBSETS)}")
        self.subset = subset
        self.name = f"emnist-{subset}"
        self.dir = resolve_data_dir(data_dir) / "emnist"
        local = sorted(
            p.name[len(f"emnist-{subset}-") : -len("-images-idx3-ubyte.gz")]
            for p in self.dir.glob(f"emnist-{subset}-*-images-idx3-ubyte.gz")
        ) if self.dir.is_dir() else []
        self.splits = tuple(dict.fromkeys(["train", "test", *local]))
        # prefer the official splits; fall back to a development subset that is on disk
        official = (self.dir / self._file("train", "images")).exists()
        self.default_train_split = "dev-train" if not official and "dev-train" in local else "train"
        self.default_val_split = "dev-val" if not official and "dev-val" in local else "test"

    def _file(self, split: str, kind: str) -> str:
        return f"emnist-{self.subset}-{split}-{kind}-idx{3 if kind == 'images' else 1}-ubyte.gz"

    def required_files(self) -> list[Path]:
        names = [self._file(s, k) for s in self.splits for k in ("images", "labels")]
        return [self.dir / f"emnist-{self.subset}-mapping.txt", *(self.dir / n for n in names)]

    def download(self, progress: bool = True) -> list[Path]:
        """Fetch the official archive (verified) and extract this subset's files from it."""
        wanted = {f"gzip/{self._file(s, k)}": self._file(s, k) for s in ("train", "test") for k in ("images", "labels")}
        wanted[f"gzip/emnist-{self.subset}-mapping.txt"] = f"emnist-{self.subset}-mapping.txt"
        missing = {m: f for m, f in wanted.items() if not (self.dir / f).exists()}
        if missing:
            try:
                (zip_path,) = ensure_files([EMNIST_ZIP], self.dir, download=True, progress=progress)
            except DataError as e:
                files = "\n  ".join(str(self.dir / f) for f in missing.values())
                raise DataError(f"{e}\nAlternatively place the extracted files themselves:\n  {files}") from None
            extract_members(zip_path, missing, self.dir)
        return [self.dir / f for f in wanted.values()]

    def _require(self, names: list[str], official: bool) -> list[Path]:
        """Paths of ``names``; official files are fetched when missing, others must be placed."""
        paths = [self.dir / n for n in names]
        missing = [str(p) for p in paths if not p.exists()]
        if missing and not (official and self.auto_download):
            raise DataError(f"{self.name}: missing files {', '.join(missing)}")
        if missing:
            self.download()
        return paths

    def _mapping(self) -> Path:
        return self._require([f"emnist-{self.subset}-mapping.txt"], official=True)[0]

    def label_map(self) -> LabelMap:
        return LabelMap.from_mapping_file(self._mapping().read_text().splitlines())

    def _label_offset(self) -> int:
        first = self._mapping().read_text().split()
        return int(first[0]) if first else 0

    def load(self, split: str) -> Samples:
        self.check_split(split)
        img, lab = self._require([self._file(split, "images"), self._file(split, "labels")], official=split in ("train", "test"))
        x, y = read_idx_pair(img, lab)
        x = np.ascontiguousarray(x.transpose(0, 2, 1))  # EMNIST stores images transposed
        y = y - self._label_offset()  # Letters starts at 1
        return Samples(x, y, self.label_map(), source=f"{self.name}:{split}")
