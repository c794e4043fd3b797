"""Rerun the commands shown in the docs and write their real output back into the pages.

    python tools/refresh_doc_outputs.py            # after shipping a new default model

Updates the output blocks of ``docs/quickstart.md`` (the two ``graphie extract`` runs and the
two Python snippets), ``docs/index.md`` (its snippet), ``docs/tutorials/batch.md`` (the
``extract-file`` run, results trimmed) and the picture ``docs/_static/quickstart_draw.png``. Each
block is found by the command or code just above it, so prose around the blocks is left alone.
Run it from the repository root; it fails loudly when a block it expects is gone.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
ASTRONAUT = "Astronaut Eileen Collins of NASA poses before the launch of Columbia at Kennedy Space Center"
OBAMA = "Barack Obama and Michelle Obama at the White House"


def run(*args: str, cwd: Path = ROOT) -> str:
    cli = "import sys; from graphie.cli import main; sys.exit(main(sys.argv[1:]))"
    out = subprocess.run([sys.executable, "-c", cli, *args], cwd=cwd, check=True, capture_output=True, text=True)
    return out.stdout


def python_output(code: str, namespace: dict | None = None) -> str:
    """What the docs' own code prints; pass one ``namespace`` to snippets that go on from each other."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(compile(code, "<docs>", "exec"), namespace if namespace is not None else {})  # noqa: S102
    return buf.getvalue()


def set_console_output(text: str, command: str, output: str) -> str:
    """Replace what follows the line holding ``command`` in its console block."""
    body = text.index("\n", text.index(command)) + 1
    return text[:body] + output.rstrip("\n") + "\n" + text[text.index("```", body):]


def set_text_block(text: str, pos: int, output: str) -> str:
    """Replace the body of the first ```text block after position ``pos``."""
    body = text.index("```text\n", pos) + len("```text\n")
    return text[:body] + output.rstrip("\n") + "\n" + text[text.index("```", body):]


def python_block(text: str, anchor: str) -> tuple[str, int]:
    """The code of the first ```python block after ``anchor``, and where the block ends."""
    start = text.index("```python\n", text.index(anchor)) + len("```python\n")
    end = text.index("```", start)
    return text[start:end], end + 3


def trimmed(line: str) -> str:
    """One extract-file output line with its result cut to text, tokens and the first entity."""
    record = json.loads(line)
    if "result" not in record:
        return line.rstrip("\n")
    r = record["result"]
    head = json.dumps({"id": record["id"], "result": {"text": r["text"], "tokens": r["tokens"]}})[:-2]
    first = json.dumps(r["entities"][0]) + ", ..." if r["entities"] else ""
    return f'{head}, "entities": [{first}], "relations": [...], ...}}}}'


def refresh_quickstart() -> None:
    path = DOCS / "quickstart.md"
    text = path.read_text(encoding="utf-8")
    image = "examples/data/astronaut.jpg"
    text = set_console_output(text, f'$ graphie extract --text "{ASTRONAUT}" --image {image}',
                              run("extract", "--text", ASTRONAUT, "--image", image))
    text = set_console_output(text, f'$ graphie extract --text "{OBAMA}"\n', run("extract", "--text", OBAMA))
    session: dict = {}  # the second snippet goes on from the first
    first, end = python_block(text, "## The same from Python")
    text = set_text_block(text, end, python_output(first, session))
    second, end = python_block(text, "- `to_dict()` for JSON.")
    text = set_text_block(text, end, python_output(second, session))
    path.write_text(text, encoding="utf-8")
    run("draw", "--text", ASTRONAUT, "--image", image, "--output", str(DOCS / "_static" / "quickstart_draw.png"))


def refresh_index() -> None:
    path = DOCS / "index.md"
    text = path.read_text(encoding="utf-8")
    code, end = python_block(text, "# graphie")
    path.write_text(set_text_block(text, end, python_output(code)), encoding="utf-8")


def refresh_batch() -> None:
    path = DOCS / "tutorials" / "batch.md"
    text = path.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "astronaut.jpg").write_bytes((ROOT / "examples" / "data" / "astronaut.jpg").read_bytes())
        lines = [  # the file shown in the tutorial, bad lines included
            json.dumps({"id": "p1", "text": OBAMA}).encode(),
            json.dumps({"id": "p2", "text": ASTRONAUT.rsplit(" at ", 1)[0], "image": "astronaut.jpg"}).encode(),
            json.dumps({"id": "p3", "text": "   "}).encode(),
            b'{"id": "p5", "text": "bad \xff bytes"}',
            b'{"id": "p6", "text":',
            json.dumps({"id": "p4", "text": "Messi and Ronaldo before the Barcelona match",
                        "image": "missing.jpg"}).encode(),
        ]
        (folder / "posts.jsonl").write_bytes(b"\n".join(lines) + b"\n")
        counts = run("extract-file", "posts.jsonl", "--output", "out.jsonl", "--images", ".", cwd=folder)
        out = (folder / "out.jsonl").read_text(encoding="utf-8").splitlines()
    command = "$ graphie extract-file posts.jsonl --output out.jsonl --images ."
    bar = text.index("\n", text.index(command)) + 1  # the progress-bar line stays: its speed is one machine's
    text = set_console_output(text, text[bar:text.index("\n", bar)], counts)
    text = set_text_block(text, text.index("`out.jsonl` has one line per input line"), "\n".join(trimmed(x) for x in out))
    path.write_text(text, encoding="utf-8")


def main() -> None:
    refresh_quickstart()
    refresh_index()
    refresh_batch()
    print("refreshed docs/quickstart.md, docs/index.md, docs/tutorials/batch.md, docs/_static/quickstart_draw.png")


if __name__ == "__main__":
    main()
