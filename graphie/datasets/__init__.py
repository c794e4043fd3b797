"""Readers of the multimodal IE benchmarks, JMERE construction and dataset statistics.

- :func:`read_mnre`: MNRE (v1 and v2) relation classification lines;
- :func:`read_twitter`: Twitter-2015/2017 MNER CoNLL with ``IMGID`` lines (+ :func:`read_captions`);
- :func:`read_pgim`: PGIM's Twitter-2015 with LLM auxiliary knowledge as ``context``;
- :func:`jmere_from_mnre`, :func:`read_jmere`, :func:`write_jmere`: joint entity-relation data;
- :func:`read_dataset` by format name, :func:`dataset_stats`;
- :class:`StoredContext`: captions and notes from files, looked up post by post.

Every reader returns gold-annotated :class:`graphie.Post` s and raises
:class:`graphie.DatasetFormatError` naming the file and line of a malformed line.
"""

from .captions import attach_captions, read_captions
from .jmere import JMERE_ENTITY_TYPES, JMERE_RELATIONS, jmere_from_mnre, read_jmere, write_jmere
from .mnre import MNRE_ENTITY_TYPE, MNRE_NONE, parse_mnre_label, read_mnre
from .pgim import PGIM_EOS, attach_notes, notes_by_tokens, read_pgim
from .stats import DATASET_FORMATS, dataset_stats, read_dataset
from .stored import StoredContext
from .twitter import read_twitter

__all__ = [
    "attach_captions",
    "attach_notes",
    "DATASET_FORMATS",
    "JMERE_ENTITY_TYPES",
    "JMERE_RELATIONS",
    "MNRE_ENTITY_TYPE",
    "MNRE_NONE",
    "PGIM_EOS",
    "StoredContext",
    "dataset_stats",
    "jmere_from_mnre",
    "notes_by_tokens",
    "parse_mnre_label",
    "read_captions",
    "read_dataset",
    "read_jmere",
    "read_mnre",
    "read_pgim",
    "read_twitter",
    "write_jmere",
]
