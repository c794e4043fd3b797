"""Parsers that turn a post's text into a :class:`TextGraph` (spaCy dependency parse) and
its image or caption into a :class:`SceneGraph` (objects, boxes, predicates)."""
