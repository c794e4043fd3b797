"""Fixtures shared by the front-door tests: a small untrained joint model saved to disk."""

from __future__ import annotations

import pytest
import torch

import graphie
from graphie.models import GraphieModel
from graphie.models.config import ModelConfig


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    """A saved untrained joint model (4 entity types, 2 relations): the plumbing, not quality."""
    torch.manual_seed(0)
    config = ModelConfig(task="jmere", entity_types=["LOC", "MISC", "ORG", "PER"],
                         relation_labels=["couple", "member_of"], pair_channels=["pos", "distance"])
    folder = tmp_path_factory.mktemp("model")
    GraphieModel(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def extractor(model_dir):
    """That model behind the API, with the caption parser as its image side."""
    return graphie.load(model_dir, detector="caption")
