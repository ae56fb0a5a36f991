"""Exceptions with messages meant for people.

Every error hcr raises on bad input derives from :class:`HcrError`; the CLI prints
``str(error)`` as one line and exits non-zero instead of showing a traceback.
"""

from __future__ import annotations


class HcrError(Exception):
    """Base class: the message names the offending thing and the problem."""


class InputError(HcrError):
    """An image or input that cannot be decoded or used (corrupt, empty, too large...)."""


class DataError(HcrError):
    """A data set that is missing, malformed, or fails its checksum."""


class ModelFileError(HcrError):
    """A model/checkpoint file that is missing, not a checkpoint, or tampered with."""


class UnknownNameError(HcrError, KeyError):
    """An unknown registry name (data set, model, ...); the message lists valid names."""

    def __init__(self, kind: str, name: str, valid: list[str]) -> None:
        self.kind, self.name, self.valid = kind, name, list(valid)
        super().__init__(f"unknown {kind} {name!r}; choose one of: {', '.join(valid)}")

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0])
