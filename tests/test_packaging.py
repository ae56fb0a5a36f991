"""The distribution's name and the install hints (issue 17): `hcr` on PyPI is another
project, so hcr is published as `hcr-toolkit`, and every hint names that."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: An install hint naming the old distribution: pip install hcr, 'hcr[web]', --no-deps hcr.
OLD_HINT = re.compile(r"""(?:install\s+(?:--no-deps\s+)?hcr(?![-\w])|['"]hcr\[)""")


def test_the_distribution_is_hcr_toolkit_with_the_hcr_command() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == "hcr-toolkit"
    assert project["scripts"]["hcr"] == "hcr.cli:main"
    torch = next(d for d in project["dependencies"] if d.startswith("torch"))
    assert "==" not in torch and "<" in torch and ">=" in torch  # a range: the CPU build from PyTorch's index fits it
    assert all(not d.startswith(("scikit-learn", "scipy", "tensorflow")) for d in project["dependencies"])
    assert not any("tf]" in d or d.startswith("tensorflow") for d in project["optional-dependencies"]["test"])


def test_no_hint_sends_users_to_the_other_hcr() -> None:
    files = [ROOT / "README.md", ROOT / "requirements-inference.txt", ROOT / "pyproject.toml"]
    files += sorted((ROOT / "docs").glob("*.md")) + sorted((ROOT / "src" / "hcr").rglob("*.py")) + sorted((ROOT / "src" / "hcr").rglob("*.md"))
    bad = [f"{f.relative_to(ROOT)}:{n}: {line.strip()}" for f in files for n, line in enumerate(f.read_text().splitlines(), 1) if OLD_HINT.search(line)]
    assert not bad, "\n".join(bad)
    assert OLD_HINT.search("pip install 'hcr[web]'") and OLD_HINT.search("pip install --no-deps hcr") and not OLD_HINT.search("pip install 'hcr-toolkit[web]'")
