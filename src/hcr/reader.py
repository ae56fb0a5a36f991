"""Reading text: the readers and their results, kept importable here; they live in
:mod:`hcr.reading` (:mod:`~hcr.reading.segmented`, :mod:`~hcr.reading.crnn`,
:mod:`~hcr.reading.result`)."""

from .lexicon import Lexicon
from .reading import ENGINES, CrnnReader, ReadChar, Reader, ReadLine, ReadResult, ReadWord, read, split_charset

__all__ = ["CrnnReader", "ENGINES", "Lexicon", "ReadChar", "ReadLine", "ReadResult", "ReadWord", "Reader", "read", "split_charset"]
