"""Rerun every command whose output the docs show and write the real output back (or check it).

    python tools/refresh_doc_outputs.py              # rewrite every marked block (after retraining)
    python tools/refresh_doc_outputs.py --check      # compare only; exit 1 and print a diff if stale
    python tools/refresh_doc_outputs.py --long       # also the blocks that take many minutes
    python tools/refresh_doc_outputs.py docs/quickstart.md   # one page

**The marker.** An HTML comment on the line just above a fenced block (invisible on GitHub and
in the Sphinx site) says that the block's output is generated:

    <!-- doc-output -->
    ```console
    $ graphie extract --text "Barack Obama at the White House"
    entity    'Barack Obama'  ...          <- rewritten: what the command prints on stdout
    ```

    <!-- doc-output -->
    ```python
    print(graphie.extract("...").entities)
    ```
    ```text
    [...]                                  <- rewritten: what the snippet prints
    ```

In a ``console`` block every ``$ `` line is a command (run with bash; a plain ``graphie ...``
line runs in-process) and the lines up to the next ``$ `` line are its output. A ``python``
block is executed (all marked snippets of a page share one namespace, in page order) and its
output goes into the ``text`` block right after it; with no such block it must print nothing.
A page's blocks run in order in a fresh interpreter, in a scratch folder that mirrors the
repository (``examples``, ``configs``, ``benchmarks``, ``tools``, ``graphie`` and ``parsers``
linked in, ``../shared`` beside it), so relative paths read as in the docs and nothing is
written into the repository. Options, space-separated after ``doc-output:``:

- ``needs=PATH[,PATH]``: skip the block when a path (from the repository root) is missing, e.g.
  benchmark data that is not shipped;
- ``slow``: takes tens of seconds (the CI test marks its page ``slow``);
- ``long``: takes minutes; refreshed only with ``--long``, never checked in CI;
- ``stderr``: show stderr too, interleaved with stdout;
- ``fails``: the commands are expected to exit with an error (otherwise an error stops the run);
- ``setup=NAME``: run the setup function NAME first (``SETUPS`` below), e.g. write input files;
- ``filter=NAME``: pass each output line through the function NAME (``FILTERS`` below);
- ``keep=FILE:DEST``: after a refresh, copy FILE from the scratch folder to DEST in the repository
  (pictures drawn by the command).

**Generated pages.** Besides the marked blocks, the files in ``GENERATED`` (e.g. the output
record's table, ``docs/_generated/output_record.md``, which docs/tutorials/batch.md includes) are
written from the code's own declarations; ``--check`` compares them too.

**Comparing** (``--check`` and ``tests/test_docs_outputs.py``) is exact except for this
normalisation: durations (a number followed by ``s``, ``ms``, ``s/it``, ``it/s``, ``post/s``)
and ``"seconds": N`` are masked, the scratch folder is shown as ``.``, and a number with
decimals may differ from the docs by one unit in its last shown decimal (rounding on another
CPU); integers, labels and text must match exactly.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARKER = re.compile(r"^<!--\s*doc-output(?::\s*(.*?))?\s*-->\s*$")
LINKED = ("examples", "configs", "benchmarks", "tools", "graphie", "parsers")


# --- the pages and their marked blocks ---------------------------------------------------------


def output_record_table() -> str:
    """The output record's table, from its one declaration (:data:`graphie.records.RECORD_FIELDS`)."""
    from graphie.records import record_table

    return record_table()


#: Files written whole from a declaration in the code (no command runs); docs include them.
GENERATED = {ROOT / "docs" / "_generated" / "output_record.md": output_record_table}


def stale_generated() -> list[str]:
    """A diff for each file of ``GENERATED`` that differs from what its declaration gives now."""
    problems = []
    for path, make in GENERATED.items():
        shown = path.read_text(encoding="utf-8") if path.is_file() else ""
        actual = make()
        if shown != actual:
            diff = difflib.unified_diff(shown.splitlines(), actual.splitlines(), "shown", "actual", lineterm="")
            problems.append(f"{rel(path)}: differs from what the code declares\n" + "\n".join(diff))
    return problems


def write_generated() -> None:
    for path, make in GENERATED.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(make(), encoding="utf-8")
        print(f"wrote {rel(path)}")


def pages() -> list[Path]:
    """Every page that can show output: README.md and docs/**/*.md (build output excluded)."""
    docs = sorted(p for p in (ROOT / "docs").rglob("*.md") if "_build" not in p.parts)
    return [ROOT / "README.md", *docs]


@dataclass
class Block:
    """One marked block: its options, kind, code, and the line range of the output it shows."""

    page: Path
    line: int  # 1-based line of the marker
    kind: str  # "console" or "python"
    options: dict[str, str]
    code: str  # the python code, or the console block's body
    out_start: int | None = None  # 0-based line range [start, end) of the output text
    out_end: int | None = None
    commands: list[tuple[str, list[str]]] = field(default_factory=list)  # console: (command, shown output)

    def shown(self) -> str:
        """The output the docs show now (console: each command's output, in order)."""
        if self.kind == "console":
            return "\n".join("\n".join([f"$ {c}", *out]) for c, out in self.commands)
        lines = self.page.read_text(encoding="utf-8").splitlines()
        return "\n".join(lines[self.out_start:self.out_end]) if self.out_start is not None else ""

    @property
    def where(self) -> str:
        return f"{rel(self.page)}:{self.line}"


def rel(page: Path) -> str:
    """``page`` relative to the repository root when it is inside it."""
    return str(page.relative_to(ROOT)) if page.is_relative_to(ROOT) else str(page)


def parse_options(text: str | None) -> dict[str, str]:
    options = {}
    for item in shlex.split(text or ""):
        key, _, value = item.partition("=")
        options[key] = value
    return options


def blocks(page: Path) -> list[Block]:
    """The marked blocks of ``page``, in order; a marker not followed by a console or python block
    is an error."""
    lines = page.read_text(encoding="utf-8").splitlines()
    all_fences = fences(lines)
    for i, line in enumerate(lines):
        if MARKER.match(line) and not (i + 1 < len(lines) and lines[i + 1].startswith("```")):
            raise ValueError(f"{rel(page)}:{i + 1}: doc-output marker not directly above a fenced block")
    found = []
    for n, (start, end, lang) in enumerate(all_fences):
        m = MARKER.match(lines[start - 1]) if start > 0 else None
        if not m:
            continue
        if lang not in ("console", "python"):
            raise ValueError(f"{rel(page)}:{start}: doc-output marker not followed by a console or python block")
        body = lines[start + 1:end]
        block = Block(page, start, lang, parse_options(m.group(1)), "\n".join(body) + "\n")
        if block.kind == "console":
            for text in body:
                if text.startswith("$ "):
                    block.commands.append((text[2:], []))
                elif block.commands:
                    block.commands[-1][1].append(text)
                else:
                    raise ValueError(f"{block.where}: console block must start with a '$ ' command")
        elif n + 1 < len(all_fences):
            o_start, o_end, o_lang = all_fences[n + 1]
            if o_lang == "text" and not any(x.strip() for x in lines[end + 1:o_start]):
                block.out_start, block.out_end = o_start + 1, o_end
        found.append(block)
    return found


def fences(lines: list[str]) -> list[tuple[int, int, str]]:
    """Every fenced block as (line of the opening fence, line of the closing fence, language),
    0-based; the language is what follows the backticks (``python``, ``{toctree}``, ...)."""
    found, i = [], 0
    while i < len(lines):
        if lines[i].startswith("```"):
            end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), len(lines))
            found.append((i, end, lines[i][3:].strip()))
            i = end
        i += 1
    return found


def unmarked_outputs(page: Path) -> list[str]:
    """Output blocks with no marker, as ``page:line``: a console block in which a ``$ `` command
    is followed by output, or a ``text`` block right after (blank lines apart) a python block."""
    lines = page.read_text(encoding="utf-8").splitlines()
    missing, previous = [], None
    for start, end, lang in fences(lines):
        marked = start > 0 and bool(MARKER.match(lines[start - 1]))
        body = lines[start + 1:end]
        has_output = any(a.startswith("$ ") and not b.startswith("$ ") for a, b in zip(body, body[1:]))
        if lang == "console" and has_output and not marked:
            missing.append(f"{rel(page)}:{start + 1}")
        if lang == "text" and previous is not None:
            p_start, p_end, p_lang = previous
            between = lines[p_end + 1:start]
            if p_lang == "python" and not any(x.strip() for x in between):
                if not (p_start > 0 and MARKER.match(lines[p_start - 1])):
                    missing.append(f"{rel(page)}:{start + 1}")
        previous = (start, end, lang)
    return missing


# --- running a page ----------------------------------------------------------------------------


def setup_batch_posts(folder: Path) -> None:
    """docs/tutorials/batch.md: the example image and the posts file shown there, bad lines included."""
    shutil.copy(ROOT / "examples" / "data" / "astronaut.jpg", folder / "astronaut.jpg")
    lines = [
        b'{"id": "p1", "text": "Barack Obama and Michelle Obama at the White House"}',
        b'{"id": "p2", "text": "Astronaut Eileen Collins of NASA poses before the launch of Columbia", "image": "astronaut.jpg"}',
        b'{"id": "p3", "text": "   "}',
        b'{"id": "p5", "text": "bad \xff bytes"}',
        b'{"id": "p6", "text":',
        b'{"id": "p4", "text": "Messi and Ronaldo before the Barcelona match", "image": "missing.jpg"}',
        b'{"id": 8, "txet": "Serena Williams wins in Melbourne"}',
    ]
    (folder / "posts.jsonl").write_bytes(b"\n".join(lines) + b"\n")


def trim_results(line: str) -> str:
    """One extract-file output record with its entities cut to the first."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return line
    if not isinstance(record, dict) or len(record.get("entities") or []) < 2:
        return line
    head = json.dumps({k: record[k] for k in ("id", "line")})[:-1]
    rest = json.dumps({k: v for k, v in record.items() if k not in ("id", "line", "entities")})[1:]
    return f'{head}, "entities": [{json.dumps(record["entities"][0])}, ...], {rest}'


def no_install_state(line: str) -> str:
    """A ``graphie components`` line without the machine's " (installed)" / " (missing)" marks,
    which depend on the extras installed where the docs are checked."""
    return re.sub(r" \((?:installed|missing)\)", "", line)


SETUPS = {"batch-posts": setup_batch_posts}
FILTERS = {"trim-results": trim_results, "no-install-state": no_install_state}


def scratch_folder() -> Path:
    """A folder that mirrors the repository's layout: ``repo/`` (the working folder, with the
    repository's code folders linked in) and ``shared`` (linked to ``ROOT/../shared`` if present)."""
    base = Path(tempfile.mkdtemp(prefix="graphie_docs_"))
    work = base / "repo"
    work.mkdir()
    for name in LINKED:
        (work / name).symlink_to(ROOT / name)
    if (ROOT.parent / "shared").exists():
        (base / "shared").symlink_to(ROOT.parent / "shared")
    return work


def run_console(command: str, cwd: Path, options: dict[str, str]) -> str:
    """What ``command`` prints; ``graphie ...`` without shell syntax runs in this process (the
    model stays loaded between commands), anything else in bash. A command that exits with an
    error fails the run, unless the block is marked ``fails``."""
    words = shlex.split(command)
    shown_err = "stderr" in options
    if words and words[0] == "graphie" and not re.search(r"[|<>;&`$]", command):
        from graphie.cli import main

        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out if shown_err else err):
            try:
                status = main(words[1:])
            except SystemExit as exc:
                status = exc.code
        text, errors = out.getvalue(), err.getvalue()
    else:
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        done = subprocess.run(["bash", "-c", command], cwd=cwd, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT if shown_err else subprocess.PIPE, text=True)
        status, text, errors = done.returncode, done.stdout, done.stderr or ""
    if status and "fails" not in options:
        raise RuntimeError(f"`{command}` exited with status {status}:\n{(errors or text)[-3000:]}")
    return text


def run_python(code: str, namespace: dict, where: str) -> str:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(compile(code, where, "exec"), namespace)  # noqa: S102  (the docs' own code)
    return buf.getvalue()


def skip_reason(block: Block, levels: set[str]) -> str | None:
    if "long" in block.options and "long" not in levels:
        return "long (refresh with --long)"
    if "slow" in block.options and "slow" not in levels:
        return "slow"
    missing = [p for p in block.options.get("needs", "").split(",") if p and not (ROOT / p).exists()]
    return f"needs {', '.join(missing)}" if missing else None


def run_page_here(page: Path, levels: set[str], keep: bool = False) -> list[dict]:
    """Run the marked blocks of ``page`` in this process; one record per block: its output
    (console: a list of outputs, one per command) or why it was skipped. With ``keep``, the
    files named by ``keep=`` options are copied into the repository. The scratch folder is
    removed at the end."""
    work = scratch_folder()
    try:
        return _run_blocks(page, levels, keep, work)
    finally:
        os.chdir(ROOT)
        shutil.rmtree(work.parent, ignore_errors=True)


def _run_blocks(page: Path, levels: set[str], keep: bool, work: Path) -> list[dict]:
    namespace: dict = {"__name__": "__docs__"}
    done_setups: set[str] = set()
    records = []
    os.chdir(work)
    sys.path.insert(0, str(ROOT))
    for block in blocks(page):
        reason = skip_reason(block, levels)
        if reason:
            records.append({"line": block.line, "skipped": reason})
            continue
        setup = block.options.get("setup")
        if setup and setup not in done_setups:
            SETUPS[setup](work)
            done_setups.add(setup)
        if block.kind == "console":
            outputs = [run_console(c, work, block.options) for c, _ in block.commands]
        else:
            outputs = [run_python(block.code, namespace, block.where)]
        if "filter" in block.options:
            f = FILTERS[block.options["filter"]]
            outputs = ["\n".join(f(x) for x in out.splitlines()) for out in outputs]
        outputs = [out.replace(str(work.parent / "shared"), "../shared").replace(str(work), ".") for out in outputs]
        if keep and "keep" in block.options:
            src, _, dest = block.options["keep"].partition(":")
            shutil.copy(work / src, ROOT / dest)
        records.append({"line": block.line, "outputs": outputs})
    return records


def run_page(page: Path, levels: set[str], keep: bool = False) -> list[dict]:
    """:func:`run_page_here` in a fresh interpreter (so registrations and loaded models of one
    page never leak into another)."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = Path(f.name)
    try:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--run-page", str(page), "--out", str(out),
               "--levels", ",".join(sorted(levels))] + (["--keep"] if keep else [])
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"running the blocks of {rel(page)} failed:\n{done.stderr[-4000:]}")
        return json.loads(out.read_text(encoding="utf-8"))
    finally:
        out.unlink(missing_ok=True)


# --- comparing and writing back ----------------------------------------------------------------

_TIME = re.compile(r"(?<![\w.])\d+(?:\.\d+)?\s?(?:ms|s|s/it|it/s|post/s|posts/s)(?![\w/])|(\"seconds\": )\d+(?:\.\d+)?")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def normalise(text: str) -> str:
    """Durations masked, trailing blanks dropped (see the module docstring)."""
    text = _TIME.sub(lambda m: (m.group(1) or "") + "<time>", text)
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


def same(shown: str, actual: str) -> bool:
    """Whether the docs' ``shown`` output matches ``actual`` after :func:`normalise`: text equal,
    integers equal, a number with ``k`` decimals within one unit of the ``k``-th decimal."""
    shown, actual = normalise(shown), normalise(actual)
    if _NUMBER.split(shown) != _NUMBER.split(actual):
        return False
    for a, b in zip(_NUMBER.findall(shown), _NUMBER.findall(actual)):
        if "." not in a or "." not in b:
            if a != b:
                return False
            continue
        decimals = len(a.split(".")[1])
        if abs(float(a) - round(float(b), decimals)) > 1.5 * 10 ** -decimals:
            return False
    return True


def actual_text(block: Block, outputs: list[str]) -> str:
    """The actual output, laid out as :meth:`Block.shown` lays out the docs' output."""
    if block.kind == "console":
        return "\n".join("\n".join([f"$ {c}", *out.rstrip("\n").splitlines()]) for (c, _), out in zip(block.commands, outputs))
    return outputs[0].rstrip("\n")


def stale(page: Path, levels: set[str]) -> list[str]:
    """A diff for each block of ``page`` whose shown output differs from what it prints now."""
    problems = []
    records = {r["line"]: r for r in run_page(page, levels)}
    for block in blocks(page):
        record = records[block.line]
        if "skipped" in record:
            continue
        if block.kind == "python" and block.out_start is None and record["outputs"][0].strip():
            problems.append(f"{block.where}: the snippet prints output but the page shows none")
            continue
        shown, actual = block.shown(), actual_text(block, record["outputs"])
        if not same(shown, actual):
            diff = difflib.unified_diff(shown.splitlines(), actual.splitlines(), "shown", "actual", lineterm="")
            problems.append(f"{block.where}: shown output differs from what it prints now\n" + "\n".join(diff))
    return problems


def refresh(page: Path, levels: set[str]) -> list[str]:
    """Rewrite the output of every block of ``page`` that ran; the skipped ones, as notes."""
    records = {r["line"]: r for r in run_page(page, levels, keep=True)}
    lines = page.read_text(encoding="utf-8").splitlines()
    notes = []
    for block in reversed(blocks(page)):  # bottom-up, so line numbers above stay valid
        record = records[block.line]
        if "skipped" in record:
            notes.append(f"{block.where}: left as it is ({record['skipped']})")
            continue
        if block.kind == "console":
            start, end = block.line + 1, block.line + 1 + len(block.code.splitlines())
            body = actual_text(block, record["outputs"]).splitlines()
            lines[start:end] = body
        elif block.out_start is not None:
            lines[block.out_start:block.out_end] = record["outputs"][0].rstrip("\n").splitlines()
    page.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pages", nargs="*", type=Path, help="pages to do (default: README.md and docs/**/*.md)")
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 when a shown output is stale")
    parser.add_argument("--long", action="store_true", help="also the blocks marked long (minutes each)")
    parser.add_argument("--run-page", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--levels", default="slow", help=argparse.SUPPRESS)
    parser.add_argument("--keep", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run_page:
        records = run_page_here(args.run_page.resolve(), set(filter(None, args.levels.split(","))), args.keep)
        args.out.write_text(json.dumps(records), encoding="utf-8")
        return 0
    levels = {"slow", "long"} if args.long else {"slow"}
    targets = [p.resolve() for p in args.pages] or [p for p in pages() if blocks(p)]
    unmarked = [where for p in targets for where in unmarked_outputs(p)]
    for where in unmarked:
        print(f"{where}: output block without a doc-output marker (not refreshed)", file=sys.stderr)
    status = 1 if unmarked else 0
    if not args.pages:
        if args.check:
            for problem in stale_generated():
                print(problem, file=sys.stderr)
                status = 1
        else:
            write_generated()
    for page in targets:
        if args.check:
            for problem in stale(page, levels):
                print(problem, file=sys.stderr)
                status = 1
        else:
            for note in refresh(page, levels):
                print(note)
            print(f"refreshed {rel(page)}")
    return status


if __name__ == "__main__":
    sys.exit(main())
