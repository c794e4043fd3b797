"""Parsers that turn a post's text into a :class:`~parsers.text.TextGraph` (spaCy dependency
parse) and its image or caption into a :class:`~parsers.scene.SceneGraph` (objects, boxes, predicates)."""

import logging

logging.getLogger(__name__).addHandler(logging.NullHandler())  # a library logs; the application shows it
