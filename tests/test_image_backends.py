"""The optional backends: torchvision and detectron2 (output conversion; clear errors when
absent), a user ONNX detector (a tiny YOLO-style model built here) and precomputed files."""

import importlib.util
import json

import numpy as np
import pytest
import torch
from PIL import Image

from graphie.errors import DatasetFormatError, InvalidInputError, MissingDependencyError, ModelLoadError
from parsers.image import get_detector, parse_image
from parsers.image.detectors.base import coco_labels, to_objects
from parsers.image.detectors.onnx import decode_yolo, letterbox

HAS_TORCHVISION = importlib.util.find_spec("torchvision") is not None
HAS_DETECTRON2 = importlib.util.find_spec("detectron2") is not None


def test_coco_labels():
    labels = coco_labels()
    assert len(labels) == 91 and labels[1] == "person" and labels[18] == "dog" and labels[90] == "toothbrush"
    assert len(coco_labels(with_background=False)) == 80


def test_torchvision_style_output_conversion():
    # What torchvision's detection models return for one image: float boxes (x0, y0, x1, y1
    # pixels), int64 label ids into the 91 COCO categories, float scores sorted descending.
    output = {
        "boxes": torch.tensor([[10.0, 20.0, 110.0, 220.0], [-5.0, 0.0, 50.0, 40.0], [0, 0, 5, 5], [1, 1, 9, 9]]),
        "labels": torch.tensor([1, 18, 12, 3], dtype=torch.int64),
        "scores": torch.tensor([0.98, 0.7, 0.9, 0.2]),
    }
    objects = to_objects(output["boxes"], output["labels"], output["scores"], coco_labels(), 0.5, 100, 200, "tv")
    assert [(o.label, round(o.score, 2)) for o in objects] == [("person", 0.98), ("dog", 0.7)]  # N/A id and 0.2 dropped
    assert objects[0].box == (10.0, 20.0, 100.0, 200.0)  # clipped to the 100×200 image
    assert objects[1].box == (0.0, 0.0, 50.0, 40.0)
    with pytest.raises(ValueError):
        to_objects(torch.zeros(2, 4), torch.zeros(3), torch.zeros(2), coco_labels(), 0.5, 10, 10, "tv")


@pytest.mark.skipif(HAS_TORCHVISION, reason="torchvision is installed: the error path does not apply")
def test_torchvision_absent_gives_install_hint():
    with pytest.raises(MissingDependencyError, match="CUDA builds") as caught:
        get_detector("torchvision")
    assert "pip install torchvision==0.28.0 --index-url https://download.pytorch.org/whl/cpu" in str(caught.value)


@pytest.mark.skipif(not HAS_TORCHVISION, reason="torchvision is not installed (no build matches torch 2.13 here)")
def test_torchvision_random_model_runs():
    det = get_detector("torchvision", model="fasterrcnn_mobilenet_v3_large_320_fpn", weights=None, threshold=0.0)
    objects = det.detect(Image.new("RGB", (64, 48), "gray"))
    assert all(o.box[2] <= 64 and o.box[3] <= 48 and o.label in coco_labels() for o in objects)


@pytest.mark.skipif(HAS_DETECTRON2, reason="detectron2 is installed: the error path does not apply")
def test_detectron2_absent_gives_install_hint():
    with pytest.raises(MissingDependencyError, match="detectron2.git"):
        get_detector("detectron2", config="x.yaml", weights="y.pth")


# --- a user-supplied ONNX detector -----------------------------------------------------------

def tiny_yolo(path, layout: str) -> None:
    """A real 3-class YOLO-style ONNX model: one fixed box (cx 32, cy 32, w 20, h 10, in the
    64×64 input) whose class scores are the mean of each colour channel of the input."""
    onnx = pytest.importorskip("onnx", reason="the onnx package builds the tiny test model")
    from onnx import TensorProto, helper

    box = helper.make_tensor("box", TensorProto.FLOAT, [1, 4, 1], [32.0, 32.0, 20.0, 10.0])
    obj = helper.make_tensor("obj", TensorProto.FLOAT, [1, 1, 1], [1.0])
    shape = helper.make_tensor("shape", TensorProto.INT64, [3], [1, 3, 1])
    nodes = [
        helper.make_node("GlobalAveragePool", ["images"], ["pooled"]),       # [1, 3, 1, 1]
        helper.make_node("Reshape", ["pooled", "shape"], ["scores"]),         # [1, 3, 1]
    ]
    if layout == "v8":  # [1, 4 + C, N]
        nodes.append(helper.make_node("Concat", ["box", "scores"], ["output0"], axis=1))
        out_shape = [1, 7, 1]
    else:  # v5: [1, N, 5 + C]
        nodes += [helper.make_node("Concat", ["box", "obj", "scores"], ["rows"], axis=1),
                  helper.make_node("Transpose", ["rows"], ["output0"], perm=[0, 2, 1])]
        out_shape = [1, 1, 8]
    graph = helper.make_graph(
        nodes, "tiny_yolo",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 64, 64])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, out_shape)],
        initializer=[box, obj, shape],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


@pytest.mark.parametrize("layout", ["v8", "v5"])
def test_onnx_detector(tmp_path, layout):
    tiny_yolo(tmp_path / "tiny.onnx", layout)
    (tmp_path / "labels.txt").write_text("red\ngreen\nblue\n")
    det = get_detector("onnx", model=str(tmp_path / "tiny.onnx"), labels=str(tmp_path / "labels.txt"))
    assert det.input_size == 64
    # A 64×32 red image: letterboxed with 16 px of grey above and below, so the red channel
    # mean is (1 + 114/255) / 2 ≈ 0.72 and the others ≈ 0.22 (below the 0.25 threshold).
    objects = det.detect(Image.new("RGB", (64, 32), (255, 0, 0)))
    assert [o.label for o in objects] == ["red"]
    assert objects[0].score == pytest.approx((1 + 114 / 255) / 2, abs=0.01)
    assert objects[0].box == pytest.approx((22, 11, 42, 21), abs=0.5)  # the padding is taken off
    # A 128×64 blue image: letterbox halves it; the box maps back at twice the size.
    blue = det.detect(Image.new("RGB", (128, 64), (0, 0, 255)))
    assert [o.label for o in blue] == ["blue"] and blue[0].box == pytest.approx((44, 22, 84, 42), abs=1)


def test_onnx_detector_errors(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        get_detector("onnx", model=str(tmp_path / "none.onnx"))
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelLoadError):
        get_detector("onnx", model=str(tmp_path / "junk.onnx"))
    tiny_yolo(tmp_path / "tiny.onnx", "v8")
    (tmp_path / "five.txt").write_text("a\nb\nc\nd\ne\n")
    det = get_detector("onnx", model=str(tmp_path / "tiny.onnx"), labels=str(tmp_path / "five.txt"))
    with pytest.raises(InvalidInputError, match="labels file match"):
        det.detect(Image.new("RGB", (64, 64)))


def test_letterbox_and_decode():
    x, r, px, py = letterbox(Image.new("RGB", (100, 50), (255, 255, 255)), 64)
    assert x.shape == (1, 3, 64, 64) and r == pytest.approx(0.64) and (px, py) == (0, 16)
    assert x[0, 0, 0, 0] == pytest.approx(114 / 255) and x[0, 0, 32, 32] == 1.0
    boxes, ids, scores = decode_yolo(np.array([[[10, 10, 4, 2, 0.5, 0.2, 0.8]]], dtype=np.float32), 2)
    assert boxes.tolist() == [[8, 9, 12, 11]] and ids.tolist() == [1] and scores[0] == pytest.approx(0.4)


# --- precomputed scene graphs ----------------------------------------------------------------

def graphie_graph(image_id):
    return {"image_id": image_id, "width": 100, "height": 50,
            "objects": [{"label": "image", "box": [0, 0, 100, 50]}, {"label": "dog", "score": 0.3, "box": [0, 0, 5, 5]},
                        {"label": "man", "score": 0.9, "box": [10, 10, 40, 40]}],
            "edges": [{"subject": 2, "predicate": "walk", "object": 1}]}


def test_precomputed_graphie_formats(tmp_path):
    (tmp_path / "all.json").write_text(json.dumps({"a.jpg": graphie_graph("a.jpg")}))
    (tmp_path / "list.json").write_text(json.dumps([graphie_graph("a.jpg"), graphie_graph("b.jpg")]))
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "a.jpg.json").write_text(json.dumps(graphie_graph("a.jpg")))
    for source in ("all.json", "list.json", "dir"):
        g = parse_image("/anywhere/a.jpg", "precomputed", path=str(tmp_path / source))
        assert [o.label for o in g.objects] == ["image", "man", "dog"]  # top() sorts by score
        assert [(e.subject, e.predicate, e.object) for e in g.edges] == [(1, "walk", 2)]
    assert len(parse_image("a.jpg", "precomputed", max_objects=1, path=str(tmp_path / "all.json"))) == 2
    with pytest.raises(InvalidInputError, match="no scene graph for image 'c.jpg'"):
        parse_image("c.jpg", "precomputed", path=str(tmp_path / "list.json"))


def test_precomputed_scene_graph_benchmark_format(tmp_path):
    prediction = {"0": {"bbox": [[0, 0, 10, 10], [20, 0, 30, 10], [5, 5, 8, 8]], "bbox_labels": [1, 2, 1],
                        "bbox_scores": [0.9, 0.8, 0.1], "rel_pairs": [[0, 1], [1, 0], [2, 1]],
                        "rel_labels": [1, 2, 2], "rel_scores": [0.7, 0.2, 0.9]}}
    info = {"idx_to_files": ["/data/vg/x.jpg"], "ind_to_classes": ["__background__", "man", "horse"],
            "ind_to_predicates": ["__background__", "riding", "near"]}
    (tmp_path / "custom_prediction.json").write_text(json.dumps(prediction))
    (tmp_path / "custom_data_info.json").write_text(json.dumps(info))
    g = parse_image("x.jpg", "precomputed", path=str(tmp_path / "custom_prediction.json"),
                    info=str(tmp_path / "custom_data_info.json"), max_relations=2)
    assert [o.label for o in g.objects] == ["image", "man", "horse", "man"]
    assert [(e.subject, e.predicate, e.object) for e in g.edges] == [(3, "near", 2), (1, "riding", 2)]
    # Names instead of ids, no info file, keyed by file name.
    named = {"y.jpg": {"boxes": [[0, 0, 1, 1]], "labels": ["cat"], "scores": [0.5]}}
    (tmp_path / "named.json").write_text(json.dumps(named))
    assert parse_image("y.jpg", "precomputed", path=str(tmp_path / "named.json")).objects[1].label == "cat"


def test_precomputed_bad_files(tmp_path):
    (tmp_path / "bad.json").write_text('{"a.jpg": [1, 2')
    with pytest.raises(DatasetFormatError, match="bad.json"):
        get_detector("precomputed", path=str(tmp_path / "bad.json"))
    (tmp_path / "short.json").write_text(json.dumps({"a.jpg": {"bbox": [[0, 0, 1, 1]], "bbox_labels": []}}))
    with pytest.raises(DatasetFormatError, match="1 boxes, 0 labels"):
        parse_image("a.jpg", "precomputed", path=str(tmp_path / "short.json"))
    with pytest.raises(InvalidInputError, match="do not exist"):
        get_detector("precomputed", path=str(tmp_path / "nothing.json"))
    with pytest.raises(InvalidInputError, match="image_id"):
        parse_image(b"\x89PNG", "precomputed", path=str(tmp_path / "short.json"))
