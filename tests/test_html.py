"""The HTML view: entities as displaCy marks them, relations as SVG arcs, the image with its
evidence boxes; escaped text; checked in a real headless browser (Chromium) when one is installed."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

import graphie
from graphie.cli import main
from graphie.draw import write_html
from graphie.types import Entity, Extraction, Relation, Span
from parsers.scene import SceneGraph, SceneObject

HOSTILE = 'Barack Obama met <b>Obama</b <script>document.body.dataset.pwned = "yes"</script> & "Paris"'
BROWSERS = ("chromium", "chromium-browser", "chromium-headless-shell", "google-chrome", "google-chrome-stable")


def entity(text: str, whole: str, type_: str, score: float, start: int, end: int, evidence=None) -> Entity:
    """An entity over words ``start..end-1`` whose characters are found in ``whole``."""
    at = whole.index(text)
    return Entity(Span(start, end, text, at, at + len(text)), type_, score, list(evidence or []))


@pytest.fixture
def hostile() -> Extraction:
    """A post with HTML in its text and in an entity, a nested entity and two relations."""
    tokens = ["Barack", "Obama", "met", "<b>Obama</b", "<script>document.body.dataset.pwned", "=",
              '"yes"</script>', "&", '"Paris"']
    barack = entity("Barack Obama", HOSTILE, "PER", 0.98, 0, 2)
    obama = entity("Obama</b", HOSTILE, "PER", 0.91, 3, 4)
    first = Entity(Span(0, 1, "Barack", 0, 6), "MISC", 0.5)  # nested in "Barack Obama"
    paris = entity('"Paris"', HOSTILE, "LOC<x>", 0.7, 8, 9)
    return Extraction(HOSTILE, tokens, [barack, obama, first, paris],
                      [Relation(barack, obama, "peer", 0.81), Relation(obama, paris, 'a"b<c>', 0.6)])


class Elements(HTMLParser):
    """Start tags with their attributes, and the text, as a browser's parser sees them."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def of_class(self, name: str) -> list[dict]:
        return [a for _, a in self.tags if name in (a.get("class") or "").split()]


def parse(page: str) -> Elements:
    p = Elements()
    p.feed(page)
    return p


def test_entities_relations_and_escaping(hostile):
    page = hostile.to_html()
    assert "<script" not in page and "<b>" not in page  # every text is escaped
    found = parse(page)
    marks = found.of_class("graphie-entity")
    # Running text cannot hold overlapping marks: the longer "Barack Obama" wins over "Barack".
    assert [(m["data-entity"], m["data-type"]) for m in marks] == [("0", "PER"), ("1", "PER"), ("3", "LOC<x>")]
    assert [n["data-entity"] for n in found.of_class("graphie-node")] == ["2", "0", "1", "3"]  # all, text order
    arcs = found.of_class("graphie-relation")
    assert [(a["data-head"], a["data-tail"], a["data-label"]) for a in arcs] == [("0", "1", "peer"), ("1", "3", 'a"b<c>')]
    text = "".join(found.text)
    assert "Obama</b" in text and '<script>document.body.dataset.pwned = "yes"</script>' in text
    assert hostile._repr_html_() == page


def test_page_is_a_whole_document(hostile):
    page = hostile.to_html(page=True)
    assert page.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in page
    assert re.search(r"<title>graphie: Barack Obama met &lt;b&gt;Obama&lt;/b", page)


def test_no_relations_no_svg_and_no_entities_plain_text():
    result = Extraction("nothing here", ["nothing", "here"])
    page = result.to_html()
    assert "graphie-relations" not in page and "graphie-entity" not in page and "nothing here" in page


def scene_and_image(tmp_path: Path) -> tuple[SceneGraph, Path]:
    """A 200x100 picture with a red block where the 'person' box is."""
    image = Image.new("RGB", (200, 100), (230, 230, 230))
    image.paste((200, 40, 40), (20, 10, 80, 90))
    path = tmp_path / "photo.png"
    image.save(path)
    graph = SceneGraph([SceneObject("image", box=(0, 0, 200, 100)), SceneObject("person", 0.9, (20, 10, 80, 90)),
                        SceneObject("horse", 0.8, (100, 20, 190, 95))], width=200, height=100)
    return graph, path


def test_image_inline_with_evidence_boxes(hostile, tmp_path):
    graph, path = scene_and_image(tmp_path)
    hostile.scene_graph = graph
    hostile.entities[0].evidence = [{"object": 1, "label": "person", "weight": 0.7}]
    found = parse(hostile.to_html(path))
    (img,) = [a for t, a in found.tags if t == "img"]
    assert img["src"].startswith("data:image/jpeg;base64,")
    boxes = found.of_class("graphie-evidence")
    assert [(b["data-entity"], b["data-object"], b["data-label"]) for b in boxes] == [("0", "1", "person")]
    hostile.entities[0].evidence = []
    assert "graphie-evidence" not in hostile.to_html(path)  # no evidence, no boxes: the image alone


def test_write_html_and_unwritable_path(hostile, tmp_path):
    out = tmp_path / "x.html"
    assert write_html(hostile, None, out) == out.read_text(encoding="utf-8")
    with pytest.raises(graphie.OutputError, match="cannot write the HTML page"):
        write_html(hostile, None, tmp_path / "missing" / "x.html")


def test_graphie_draw_format_html(model_dir, tmp_path, capsys):
    out = tmp_path / "post.page"
    assert main(["draw", "--model", str(model_dir), "--text", "Obama</b visited Paris", "--format", "html",
                 "--output", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "Obama&lt;/b visited Paris" in page
    code = main(["draw", "--model", str(model_dir), "--text", "x", "--output", str(tmp_path / "no" / "a.html")])
    assert code == 2 and "does not exist" in capsys.readouterr().err


# --- a real browser ----------------------------------------------------------------------------
def browser() -> str | None:
    return next((found for name in BROWSERS if (found := shutil.which(name))), None)


#: Run in the page after it loads: what the browser made of it, as JSON in <pre id="measured">.
MEASURE = """<script>
window.addEventListener("load", () => {
  const box = (e) => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; };
  const out = {
    marks: [...document.querySelectorAll("mark.graphie-entity")].map(m => ({
      type: m.dataset.type, text: m.firstChild.textContent, box: box(m)})),
    nodes: [...document.querySelectorAll("g.graphie-node")].map(box),
    arcs: [...document.querySelectorAll("g.graphie-relation")].map(g => ({
      label: g.dataset.label, length: g.querySelector("path.graphie-arc").getTotalLength(), box: box(g)})),
    image: [...document.querySelectorAll("div.graphie-image img")].map(i => [i.naturalWidth, i.complete, box(i)]),
    evidence: [...document.querySelectorAll("g.graphie-evidence rect")].map(box),
    pwned: document.body.dataset.pwned || null,
    scripts: document.scripts.length,
  };
  const pre = document.createElement("pre");
  pre.id = "measured";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def render(page: str, tmp_path: Path) -> dict:
    """``page`` loaded by headless Chromium; what MEASURE found."""
    exe = browser()
    if exe is None:
        if os.environ.get("GRAPHIE_REQUIRE_BROWSER"):
            pytest.fail("GRAPHIE_REQUIRE_BROWSER is set but no Chromium is installed (.ci/run installs it)")
        pytest.skip("no headless browser installed (apt-get install chromium); the HTML is checked without one above")
    path = tmp_path / "page.html"
    path.write_text(page.replace("</body>", MEASURE + "\n</body>"), encoding="utf-8")
    done = subprocess.run(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
         f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,1600", "--virtual-time-budget=5000",
         "--dump-dom", path.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r'<pre id="measured">(.*?)</pre>', done.stdout, re.S)
    assert found, f"the page did not finish loading: {done.stdout[-1000:]}"
    return json.loads(found.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">")
                      .replace("&amp;", "&"))


def test_page_in_a_real_browser(hostile, tmp_path):
    graph, image = scene_and_image(tmp_path)
    hostile.scene_graph = graph
    hostile.entities[0].evidence = [{"object": 1, "label": "person", "weight": 0.7}]
    seen = render(hostile.to_html(image, page=True), tmp_path)
    assert seen["pwned"] is None and seen["scripts"] == 1  # only the measuring script ran
    assert [(m["type"], m["text"]) for m in seen["marks"]] == [("PER", "Barack Obama"), ("PER", "Obama</b"),
                                                               ("LOC<x>", '"Paris"')]
    assert all(m["box"][2] > 0 and m["box"][3] > 0 for m in seen["marks"])
    assert len(seen["nodes"]) == 4 and all(w > 0 and h > 0 for _, _, w, h in seen["nodes"])
    assert [a["label"] for a in seen["arcs"]] == ["peer", 'a"b<c>'] and all(a["length"] > 20 for a in seen["arcs"])
    # Arcs sit above the entity boxes they join.
    node_top = min(y for _, y, _, _ in seen["nodes"])
    assert all(a["box"][1] < node_top for a in seen["arcs"])
    ((natural_width, complete, img_box),) = seen["image"]
    assert complete and natural_width == 200  # the base64 JPEG decoded
    # The evidence box lands where the person is: x 20..80 of 200, y 10..90 of 100, scaled to the shown image.
    ((x, y, w, h),) = seen["evidence"]
    sx, sy = img_box[2] / 200, img_box[3] / 100
    assert abs(x - (img_box[0] + 20 * sx)) < 6 and abs(w - 60 * sx) < 12
    assert abs(y - (img_box[1] + 10 * sy)) < 6 and abs(h - 80 * sy) < 12
