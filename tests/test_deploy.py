"""Deploying (docs/deploy.md): the Dockerfile builds the inference-only image and runs the
documented command, the server binds to loopback by default, the probes exist, and the
Triton configurations of the page name the real inputs and outputs of the shipped models.

Without Docker the Dockerfile is checked by reading it; ``docker build`` runs only where a
``docker`` command exists.
"""

from __future__ import annotations

import inspect
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hcr.cli import build_parser

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "Dockerfile"
PAGE = REPO / "docs" / "deploy.md"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        word, _, rest = full.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def exec_form(args: str) -> list[str]:
    """The argument list of a JSON ("exec") form CMD, or a shell form split like a shell."""
    return list(json.loads(args)) if args.startswith("[") else shlex.split(args)


def test_the_image_is_the_inference_only_install() -> None:
    steps = instructions()
    assert steps[0][0] == "FROM" and re.fullmatch(r"python:3\.1\d-slim", steps[0][1])
    runs = " ".join(args for kind, args in steps if kind == "RUN")
    assert "pip install -r requirements-inference.txt" in runs
    assert "pip install --no-deps ." in runs
    assert not any("torch" in args.lower() or "streamlit" in args.lower() for _, args in steps)  # (comments aside)
    # the server packages of the web extra, with its version bounds
    web = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["web"]
    wanted = [w.split(";")[0].strip() for w in web if w.split(">")[0].split(";")[0].strip() in ("fastapi", "uvicorn", "httptools", "uvloop", "python-multipart")]
    assert len(wanted) == 5
    for requirement in wanted:
        assert f'"{requirement}"' in runs, requirement
    # what it copies exists, and is not left out of the build context
    ignored = {line.strip().rstrip("/") for line in (REPO / ".dockerignore").read_text().splitlines() if line.strip() and not line.startswith("#")}
    for kind, args in steps:
        if kind == "COPY":
            for src in args.split()[:-1]:
                assert (REPO / src).exists(), src
                assert src.rstrip("/") not in ignored, f"{src} is copied but in .dockerignore"
    assert {".git", ".venv", "runs", "tests"} <= ignored
    assert any(kind == "USER" and args not in ("root", "0") for kind, args in steps), "the server must not run as root"


def test_the_command_is_hcr_serve_on_the_exposed_port() -> None:
    steps = dict(instructions())
    port = steps["EXPOSE"]
    cmd = exec_form(steps["CMD"])
    assert cmd[:2] == ["hcr", "serve"]
    args = build_parser().parse_args(cmd[1:])  # the options exist
    assert str(args.port) == port and args.host == "0.0.0.0" and args.processes >= 1  # the container's own interface
    assert f"127.0.0.1:{port}/ready" in steps["HEALTHCHECK"]


def test_the_server_binds_to_loopback_by_default() -> None:
    from hcr.web.api import serve

    assert build_parser().parse_args(["serve"]).host == "127.0.0.1"
    assert build_parser().parse_args(["app"]).host == "127.0.0.1"
    assert inspect.signature(serve).parameters["host"].default == "127.0.0.1"
    # the page publishes the container's port on the host's loopback
    assert "-p 127.0.0.1:8000:8000" in PAGE.read_text()


def test_the_page_documents_the_probes_the_api_has() -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from hcr.web.api import ApiConfig, create_app

    text = PAGE.read_text()
    with TestClient(create_app(ApiConfig(models=["digits"]))) as c:
        for path in ("/health", "/ready"):
            assert f"`GET {path}`" in text and f"path: {path}" in text
            assert c.get(path).status_code == 200


def _pbtxt_blocks() -> dict[str, str]:
    blocks = re.findall(r"```protobuf\n(.*?)```", PAGE.read_text(), re.S)
    return {re.search(r'name: "(\w+)"', b).group(1): b for b in blocks}  # type: ignore[union-attr]


def test_triton_configs_match_the_shipped_onnx_files() -> None:
    ort = pytest.importorskip("onnxruntime")
    from hcr.pretrained import pretrained_path

    configs = _pbtxt_blocks()
    assert set(configs) == {"chars", "words"}
    text = PAGE.read_text()
    for name in ("chars", "digits", "letters", "words"):
        session = ort.InferenceSession(str(pretrained_path(name).with_suffix(".onnx")), providers=["CPUExecutionProvider"])
        (inp,), (out,) = session.get_inputs(), session.get_outputs()
        assert (inp.name, out.name, inp.type, out.type) == ("input", "logits", "tensor(float)", "tensor(float)")
        # the table: [batch, ...] as onnxruntime reports the shapes
        row = next(line for line in text.splitlines() if line.startswith(f"| `{name}`"))
        assert f"`[{', '.join(map(str, inp.shape))}]`" in row and f"`[{', '.join(map(str, out.shape))}" in row, (row, inp.shape, out.shape)
        # Triton dims: without the batch axis, free axes as -1
        dims = lambda shape: "[ " + ", ".join(str(d) if isinstance(d, int) else "-1" for d in shape[1:]) + " ]"  # noqa: E731
        if name in configs:
            block = configs[name]
            assert f'name: "{inp.name}", data_type: TYPE_FP32, dims: {dims(inp.shape)}' in block, (block, inp.shape)
            assert f'name: "{out.name}", data_type: TYPE_FP32, dims: {dims(out.shape)}' in block, (block, out.shape)
            assert 'backend: "onnxruntime"' in block
        else:
            assert f"dims: {dims(out.shape)}" in text, (name, out.shape)


def _docker_daemon() -> bool:
    """Whether a ``docker`` command exists and reaches a daemon."""
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=60).returncode == 0


@pytest.mark.skipif(shutil.which("docker") is None, reason="docker is not installed here: the Dockerfile is checked by reading it")
def test_docker_build() -> None:  # pragma: no cover (only where Docker is)
    if not _docker_daemon():
        pytest.skip("docker is installed but no Docker daemon answers: the Dockerfile is checked by reading it")
    proc = subprocess.run(["docker", "build", "-q", "-t", "hcr-serve:test", str(REPO)], capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = subprocess.run(["docker", "run", "--rm", "hcr-serve:test", "python", "-c",
                          "import importlib.util, hcr.web.api; print(importlib.util.find_spec('torch') is None)"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and run.stdout.strip() == "True", run.stderr[-2000:]
