"""The docs check: the commands and code shown in the documentation work.

Every fenced code block in the Markdown files below is checked according to its language
and an optional marker, an HTML comment on the line(s) before the block
(``<!-- docs-check: MODE -->``; see docs/index.md, "How the docs are checked"):

=============  ===================================  ==========================================
block          default (no marker)                  ``run``
=============  ===================================  ==========================================
bash, sh,      every ``hcr ...`` command parses     the ``hcr`` commands are also run, in order,
shell, zsh,    with ``hcr.cli.build_parser()``;     in one temporary folder per page (with the
console        ``make X`` names a Makefile target;  repository's samples/, configs/ and docs/),
               ``python FILE.py`` names a file      and must exit 0
python         run (``exec``), in that same folder  (the default)
yaml           parses as YAML                       loads as a training recipe (hcr.config)
=============  ===================================  ==========================================

``parse-only`` gives any block the default checks (and keeps a Python block from running:
it is only compiled); ``skip`` checks nothing. Run blocks see an empty ``HCR_DATA_DIR``: a
command that needs a data set download does not belong in one.

Also checked: ``docs/cli.md`` is what ``tools/gen_cli_docs.py`` writes, relative links and
pictures point at files that exist, and the reference tables of docs/training.md and
docs/preprocessing.md name every recipe and preprocessing field.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import importlib.util
import io
import os
import re
import shlex
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from helpers_train import hcr_cache, single_thread  # noqa: F401  (fixtures)

REPO = Path(__file__).resolve().parents[1]

#: Pages whose commands must parse (relative to the repository).
DOC_FILES = sorted(
    {REPO / "README.md", *(REPO / "docs").glob("*.md"), REPO / "notebooks" / "README.md", REPO / "benchmarks" / "README.md",
     REPO / "samples" / "README.md", *(REPO / "src" / "hcr" / "pretrained").glob("*.md")},
)
DOC_FILES = [p for p in DOC_FILES if p.is_file()]
#: Pages being written alongside this check: a link to them may point nowhere yet.
PENDING_LINKS = {"docs/web.md", "docs/export.md", "docs/reading.md", "docs/images/web-app.png"}

MODES = ("run", "parse-only", "skip")
SHELL = {"bash", "sh", "shell", "zsh", "console"}
_MARKER = re.compile(r"^\s*<!--\s*docs-check:\s*(\S+?)\s*-->\s*$")
_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([^\s`]*)")
_CONTROL = {"|", "||", "&&", ";", "&", ";;"}
_REDIRECT = {">", ">>", "<", ">&", "<&", "&>"}


class DocsCheckError(Exception):
    """A malformed marker (unknown mode, or not followed by a code block)."""


@dataclass
class Block:
    """A fenced code block: where it starts (1-based line of the fence), its language,
    its text, and the mode it is checked in."""

    file: Path
    line: int
    lang: str
    text: str
    marker: str | None = None

    @property
    def mode(self) -> str:
        if self.marker is not None:
            return self.marker
        if self.lang in SHELL or self.lang == "yaml":
            return "parse-only"
        if self.lang == "python":
            return "run"
        return "skip"

    @property
    def where(self) -> str:
        return f"{_rel(self.file)}:{self.line}"


@dataclass
class Command:
    """One simple command of a shell block: its words, and the block line it starts on."""

    words: list[str]
    line: int
    text: str = field(default="")


def _rel(path: Path) -> str:
    try:
        return path.resolve().relative_to(REPO).as_posix()
    except ValueError:
        return str(path)


def parse_blocks(text: str, file: Path = Path("<text>")) -> list[Block]:
    """The fenced code blocks of a Markdown text, each with its marker (if any)."""
    lines = text.splitlines()
    blocks: list[Block] = []
    marker: tuple[str, int] | None = None
    i = 0
    while i < len(lines):
        m = _MARKER.match(lines[i])
        if m:
            if m.group(1) not in MODES:
                raise DocsCheckError(f"{_rel(file)}:{i + 1}: unknown docs-check mode {m.group(1)!r} (use one of {', '.join(MODES)})")
            marker = (m.group(1), i + 1)
            i += 1
            continue
        fence = _FENCE.match(lines[i])
        if fence:
            indent, ticks, lang = fence.groups()
            body: list[str] = []
            j = i + 1
            while j < len(lines) and not lines[j].strip().startswith(ticks[0] * len(ticks)):
                body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j])
                j += 1
            blocks.append(Block(file, i + 1, lang.lower(), "\n".join(body), marker[0] if marker else None))
            marker = None
            i = j + 1
            continue
        if marker is not None and lines[i].strip():
            raise DocsCheckError(f"{_rel(file)}:{marker[1]}: a docs-check marker must come right before a code block")
        i += 1
    if marker is not None:
        raise DocsCheckError(f"{_rel(file)}:{marker[1]}: a docs-check marker must come right before a code block")
    return blocks


def shell_commands(block: Block) -> list[Command]:
    """The simple commands of a shell block: continuation lines joined, comments, prompts,
    environment assignments and redirections removed, pipelines and lists split."""
    out: list[Command] = []
    lines = block.text.splitlines()
    k = 0
    while k < len(lines):
        start = k
        line = lines[k]
        while line.rstrip().endswith("\\") and k + 1 < len(lines):
            k += 1
            line = line.rstrip()[:-1] + " " + lines[k]
        k += 1
        stripped = line.strip()
        if block.lang == "console":
            if not stripped.startswith("$ "):
                continue  # output, not a command
            stripped = stripped[2:]
        lexer = shlex.shlex(stripped, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        try:
            tokens = list(lexer)
        except ValueError as e:  # unbalanced quotes
            out.append(Command(["<unparsable>", str(e)], block.line + 1 + start, stripped))
            continue
        words: list[str] = []
        skip_next = False
        for tok in [*tokens, ";"]:
            if skip_next:
                skip_next = False
                continue
            if tok in _REDIRECT:
                skip_next = True
                if words and words[-1].isdigit():
                    words.pop()  # the 2 of 2>
                continue
            if tok in _CONTROL:
                while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
                    words.pop(0)  # VAR=value before the command
                if words:
                    out.append(Command(words, block.line + 1 + start, stripped))
                words = []
                continue
            words.append(tok)
    return out


def hcr_argv(cmd: Command) -> list[str] | None:
    """The arguments of an ``hcr`` command (``hcr``, ``.venv/bin/hcr``, ``python -m hcr.cli``), else None."""
    w = cmd.words
    if w and (w[0] == "hcr" or w[0].endswith("/hcr")):
        return w[1:]
    if len(w) >= 3 and Path(w[0]).name.startswith("python") and w[1] == "-m" and w[2] in ("hcr", "hcr.cli"):
        return w[3:]
    return None


def parse_problem(argv: list[str]) -> str | None:
    """Why ``hcr ARGV`` does not parse (argparse's message), or None if it does."""
    from hcr.cli import build_parser

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            build_parser().parse_args(argv)
        except SystemExit as e:
            if e.code not in (0, None):
                lines = err.getvalue().strip().splitlines()
                return lines[-1] if lines else f"exit {e.code}"
    return None


def _makefile_targets() -> set[str]:
    text = (REPO / "Makefile").read_text()
    return {m.group(1) for m in re.finditer(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", text, re.M)}


def command_problems(block: Block) -> list[str]:
    """Problems of a shell block's commands, each as ``file:line: command: why``."""
    problems: list[str] = []
    targets = _makefile_targets()
    for cmd in shell_commands(block):
        where = f"{_rel(block.file)}:{cmd.line}: {cmd.text}"
        if cmd.words[0] == "<unparsable>":
            problems.append(f"{where}: {cmd.words[1]}")
            continue
        argv = hcr_argv(cmd)
        if argv is not None:
            why = parse_problem(argv)
            if why:
                problems.append(f"{where}: {why}")
        elif cmd.words[0] == "make":
            for t in cmd.words[1:]:
                if "=" not in t and not t.startswith("-") and t not in targets:
                    problems.append(f"{where}: the Makefile has no target {t!r}")
        elif Path(cmd.words[0]).name.startswith("python") and len(cmd.words) > 1 and cmd.words[1].endswith(".py"):
            script = cmd.words[1]
            if not script.startswith(("/", "$", "~")) and not (REPO / script).is_file():
                problems.append(f"{where}: no file {script} in the repository")
    return problems


def check_static(block: Block) -> list[str]:
    """The checks that need no running: parsing commands, compiling Python, loading YAML."""
    if block.mode == "skip":
        return []
    if block.lang in SHELL:
        return command_problems(block)
    if block.lang == "python":
        try:
            compile(block.text, block.where, "exec")
        except SyntaxError as e:
            return [f"{block.where}: Python does not compile: {e}"]
    if block.lang == "yaml":
        try:
            yaml.safe_load(block.text)
        except yaml.YAMLError as e:
            return [f"{block.where}: not valid YAML: {str(e).splitlines()[0]}"]
    return []


def _all_blocks() -> dict[Path, list[Block]]:
    return {p: parse_blocks(p.read_text(encoding="utf-8"), p) for p in DOC_FILES}


def _run_files() -> list[Path]:
    return [p for p, blocks in _all_blocks().items() if any(b.mode == "run" and b.lang in (*SHELL, "python", "yaml") for b in blocks)]


# --------------------------------------------------------------------------- the checker itself


def test_markers_set_the_mode_and_defaults_follow_the_language() -> None:
    text = "\n".join([
        "```bash", "hcr models", "```",
        "<!-- docs-check: run -->", "", "```bash", "hcr data list", "```",
        "```python", "print(1)", "```",
        "<!-- docs-check: parse-only -->", "```python", "print(2)", "```",
        "<!-- docs-check: skip -->", "```sh", "hcr nonsense", "```",
        "```text", "hcr predict", "```",
    ])
    blocks = parse_blocks(text)
    assert [(b.lang, b.mode, b.line) for b in blocks] == [
        ("bash", "parse-only", 1), ("bash", "run", 6), ("python", "run", 9), ("python", "parse-only", 13),
        ("sh", "skip", 17), ("text", "skip", 20)]
    assert blocks[1].text == "hcr data list"


def test_a_bad_marker_is_an_error() -> None:
    with pytest.raises(DocsCheckError, match="unknown docs-check mode 'runn'"):
        parse_blocks("<!-- docs-check: runn -->\n```bash\nhcr models\n```")
    with pytest.raises(DocsCheckError, match="right before a code block"):
        parse_blocks("<!-- docs-check: run -->\nSome text.\n```bash\nhcr models\n```")


def test_shell_commands_are_split_like_a_shell_would() -> None:
    block = parse_blocks("\n".join([
        "```bash",
        "HCR_DATA_DIR=/data hcr predict a.png --json | head -3   # a comment",
        "hcr train --data csv:x.csv \\",
        "          --data-opt transpose=true --out runs/x && hcr models",
        'hcr data info "az-csv:A_Z Handwritten Data.csv" > info.txt 2> err.txt',
        "```",
        "```console",
        "$ hcr models",
        "chars  62 classes",
        "```",
    ]))
    cmds = [c for b in block for c in shell_commands(b)]
    assert [c.words for c in cmds] == [
        ["hcr", "predict", "a.png", "--json"], ["head", "-3"],
        ["hcr", "train", "--data", "csv:x.csv", "--data-opt", "transpose=true", "--out", "runs/x"], ["hcr", "models"],
        ["hcr", "data", "info", "az-csv:A_Z Handwritten Data.csv"],
        ["hcr", "models"],
    ]
    assert [c.line for c in cmds] == [2, 2, 3, 3, 5, 8]


def test_a_renamed_option_or_command_fails_the_check() -> None:
    good, renamed, gone, make, script = parse_blocks("\n".join([
        "```bash", "hcr predict --model digits --top-k 3 a.png", "```",
        "```bash", "hcr predict --topk 3 a.png", "```",
        "```bash", "hcr recognise a.png", "```",
        "```bash", "make demo", "make no-such-target", "```",
        "```bash", "python tools/no_such_tool.py", "python tools/gen_cli_docs.py --check", "```",
    ]), REPO / "README.md")
    assert command_problems(good) == []
    assert len(command_problems(renamed)) == 1 and "--topk" in command_problems(renamed)[0]
    assert "invalid choice: 'recognise'" in command_problems(gone)[0]
    assert command_problems(make) == ["README.md:12: make no-such-target: the Makefile has no target 'no-such-target'"]
    assert command_problems(script) == ["README.md:15: python tools/no_such_tool.py: no file tools/no_such_tool.py in the repository"]


# --------------------------------------------------------------------------- the pages


def test_the_pages_are_found() -> None:
    names = {_rel(p) for p in DOC_FILES}
    assert {"README.md", "docs/index.md", "docs/datasets.md", "docs/training.md", "docs/preprocessing.md", "docs/cli.md"} <= names
    assert sum(b.lang in SHELL for blocks in _all_blocks().values() for b in blocks) >= 20


@pytest.mark.parametrize("path", DOC_FILES, ids=_rel)
def test_every_command_parses(path: Path) -> None:
    """Every ``hcr`` command shown parses, ``make`` targets exist, Python compiles, YAML loads."""
    problems = [p for b in parse_blocks(path.read_text(encoding="utf-8"), path) for p in check_static(b)]
    assert not problems, "commands in the docs that do not work:\n" + "\n".join(problems)


def _workspace(tmp: Path) -> Path:
    """A folder that looks like the repository root for the docs' relative paths."""
    for name in ("samples", "configs", "docs", "tools", "benchmarks"):
        (tmp / name).symlink_to(REPO / name, target_is_directory=True)
    (tmp / "no-data").mkdir()
    return tmp


def _expand_globs(words: list[str]) -> list[str]:
    out: list[str] = []
    for w in words:
        hits = sorted(glob.glob(w)) if any(c in w for c in "*?[") else []
        out.extend(hits or [w])
    return out


def _run_block(block: Block) -> None:
    from hcr.cli import main

    if block.lang == "python":
        buf = io.StringIO()
        try:
            with contextlib.redirect_stdout(buf):
                exec(compile(block.text, block.where, "exec"), {"__name__": "__docs__"})
        except Exception:  # noqa: BLE001  (reported with the block's place)
            pytest.fail(f"{block.where}: the Python block failed:\n{traceback.format_exc()}\noutput:\n{buf.getvalue()}")
        return
    if block.lang == "yaml":
        from hcr.config import load_config

        recipe = Path("docs-check-recipe.yaml")
        recipe.write_text(block.text)
        try:
            load_config(recipe).validate()
        except Exception as e:  # noqa: BLE001
            pytest.fail(f"{block.where}: not a valid training recipe: {e}")
        return
    for cmd in shell_commands(block):
        argv = hcr_argv(cmd)
        if argv is None:
            continue
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(_expand_globs(argv))
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else 1
        assert code == 0, f"{_rel(block.file)}:{cmd.line}: {cmd.text}\nexit {code}\nstdout:\n{out.getvalue()[-3000:]}\nstderr:\n{err.getvalue()[-3000:]}"


@pytest.mark.usefixtures("hcr_cache", "single_thread")
@pytest.mark.parametrize("path", _run_files(), ids=_rel)
def test_run_blocks_work(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The blocks marked ``run`` (and Python blocks), in order, in one folder per page."""
    work = _workspace(tmp_path)
    monkeypatch.chdir(work)
    monkeypatch.setenv("HCR_DATA_DIR", str(work / "no-data"))  # nothing may need a download
    monkeypatch.setenv("MPLBACKEND", "Agg")
    for block in parse_blocks(path.read_text(encoding="utf-8"), path):
        if block.mode == "run":
            _run_block(block)


# --------------------------------------------------------------------------- generated and cross-checked content


def _gen_cli_docs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_cli_docs", REPO / "tools" / "gen_cli_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_reference_is_current() -> None:
    fresh = _gen_cli_docs().render_cli_docs()
    committed = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    assert committed == fresh, "docs/cli.md is out of date: run  python tools/gen_cli_docs.py"


def test_cli_reference_covers_every_command() -> None:
    from hcr.cli import build_parser

    gen = _gen_cli_docs()
    text = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    commands = [" ".join(words) for words, _, _ in gen.walk(build_parser())]
    assert len(commands) > 8
    for command in commands:
        assert f"## `{command}`" in text
    assert "`--known-classes-only`" in text and "`--annotate DIR`" in text


_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


@pytest.mark.parametrize("path", DOC_FILES, ids=_rel)
def test_local_links_point_at_files(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # links inside code blocks are code
    missing = []
    for target in _LINK.findall(text):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue
        file = (path.parent / target.split("#")[0]).resolve()
        if not file.exists() and _rel(file) not in PENDING_LINKS:
            missing.append(target)
    assert not missing, f"{_rel(path)} links to missing files: {missing}"


def _documented_fields(page: str) -> set[str]:
    return set(re.findall(r"^\| `([a-z_]+)` \|", (REPO / "docs" / page).read_text(encoding="utf-8"), re.M))


def test_training_page_documents_every_recipe_field() -> None:
    from hcr.config import TrainConfig

    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    documented = _documented_fields("training.md")
    assert fields <= documented, f"docs/training.md lacks recipe fields {sorted(fields - documented)}"


def test_preprocessing_page_documents_every_spec_field() -> None:
    from hcr.preprocess import PreprocessSpec

    fields = {f.name for f in dataclasses.fields(PreprocessSpec)}
    documented = _documented_fields("preprocessing.md")
    assert fields <= documented, f"docs/preprocessing.md lacks preprocessing fields {sorted(fields - documented)}"


def test_python_runs_where_the_docs_say(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failing Python block is reported with its page and line (the check can fail)."""
    (block,) = parse_blocks("text\n```python\nraise ValueError('boom')\n```", REPO / "docs" / "x.md")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(pytest.fail.Exception, match=r"docs/x.md:2: the Python block failed"):
        _run_block(block)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, *sys.argv[1:]]))
