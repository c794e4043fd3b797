"""Typed errors. Every error a user can cause is a :class:`GraphieError` naming the input at fault.

They live in ``parsers`` (the bottom layer) so that parsers and graphie raise the same classes;
:mod:`graphie.errors` re-exports them."""


class GraphieError(Exception):
    """Base class of every error graphie raises on purpose (the CLI prints these as one line)."""


class InvalidInputError(GraphieError, ValueError):
    """A text, post or argument that graphie cannot process (empty text, wrong type, ...)."""


class ImageError(GraphieError, ValueError):
    """An image that cannot be read: missing, empty, corrupt, too large, or not an image."""


class DatasetFormatError(GraphieError, ValueError):
    """A malformed line of a dataset file; the message names the file and line number."""

    def __init__(self, path, line_no: int | None, reason: str):
        where = f"{path}:{line_no}" if line_no is not None else f"{path}"
        super().__init__(f"{where}: {reason}")
        self.path = path
        self.line_no = line_no
        self.reason = reason


class ModelLoadError(GraphieError, OSError):
    """A saved model folder that is missing, incomplete or does not match its config."""


class MissingDependencyError(GraphieError, ImportError):
    """An optional component whose package or weights are not available here."""


class UnknownComponentError(GraphieError, KeyError):
    """A component name that no registry knows."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""
