"""Every command output shown in README.md and docs/**/*.md is what the command prints now.

The blocks are the ones marked ``<!-- doc-output -->`` (see ``tools/refresh_doc_outputs.py``,
which also rewrites them: ``python tools/refresh_doc_outputs.py`` after retraining a model).
Blocks that need benchmark data skip when ``../shared/data`` lacks it; ``long`` blocks are
refreshed by hand (``--long``) and never run here.
"""

import importlib.util
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("refresh_doc_outputs", ROOT / "tools" / "refresh_doc_outputs.py")
tool = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = tool  # dataclasses look their module up
_spec.loader.exec_module(tool)

PAGES = [page for page in tool.pages() if tool.blocks(page)]


@pytest.fixture(scope="module")
def stale_blocks(request):
    """The stale blocks of every page selected in this session, run two at a time (each page in
    its own interpreter, so one page uses the second core while the other imports or loads models)."""
    selected = [item.callspec.params["page"] for item in request.session.items
                if item.originalname == "test_shown_output_is_what_the_command_prints"]
    results = {}
    with ThreadPoolExecutor(max_workers=max(1, min(2, os.cpu_count() or 1))) as pool:
        futures = {page: pool.submit(tool.stale, page, {"slow"}) for page in selected}
    for page, future in futures.items():
        try:
            results[page] = future.result()
        except Exception as exc:  # noqa: BLE001  (raised again in the page's own test)
            results[page] = exc
    return results


def test_every_output_block_is_marked():
    missing = [where for page in tool.pages() for where in tool.unmarked_outputs(page)]
    assert not missing, f"output blocks without a <!-- doc-output --> marker: {missing}"


@pytest.mark.parametrize(
    "page",
    [
        pytest.param(page, id=tool.rel(page),
                     marks=[pytest.mark.slow] if any("slow" in b.options for b in tool.blocks(page)) else [])
        for page in PAGES
    ],
)
def test_shown_output_is_what_the_command_prints(page, stale_blocks):
    problems = stale_blocks[page]
    if isinstance(problems, Exception):
        raise problems
    assert not problems, "\n\n".join(problems) + "\n\nif the change is intended: python tools/refresh_doc_outputs.py"


def test_comparison_masks_timings_and_allows_one_unit_of_rounding_only():
    assert tool.same("PER 0.68\nepoch 1: 9s", "PER 0.69\nepoch 1: 12.5s\n")
    assert tool.same('{"images": 12, "seconds": 64.355}', '{"images": 12, "seconds": 1.0}')
    assert tool.same("first: 1980 ms", "first: 35 ms")
    assert not tool.same("PER 0.68", "PER 0.71")  # a real change of score
    assert not tool.same("PER 0.68", "ORG 0.68")  # a label
    assert not tool.same('{"done": 2}', '{"done": 3}')  # integers are exact
    assert not tool.same("0.68 0.91", "0.68")  # a missing number


def test_markers_are_found_and_misplaced_ones_rejected(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "text\n\n<!-- doc-output: needs=nowhere slow -->\n```python\nprint(1)\n```\n\n```text\n1\n```\n\n"
        "<!-- doc-output -->\n```console\n$ echo a\na\n$ true\n```\n"
    )
    py, console = tool.blocks(page)
    assert (py.kind, py.options, py.shown()) == ("python", {"needs": "nowhere", "slow": ""}, "1")
    assert tool.skip_reason(py, {"slow"}) == "needs nowhere"
    assert console.commands == [("echo a", ["a"]), ("true", [])]
    assert tool.unmarked_outputs(page) == []
    page.write_text("```python\nprint(1)\n```\n\n```text\n1\n```\n\n```console\n$ echo a\na\n```\n")
    assert tool.unmarked_outputs(page) == [f"{page}:5", f"{page}:9"]
    page.write_text("<!-- doc-output -->\n\n```console\n$ echo a\n```\n")
    with pytest.raises(ValueError, match="not directly above"):
        tool.blocks(page)
