"""Parsers that turn a post's text into a :class:`~parsers.text.TextGraph` (spaCy dependency
parse) and its image or caption into a :class:`~parsers.scene.SceneGraph` (objects, boxes, predicates)."""
