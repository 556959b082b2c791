"""What a user reads points inside the repository: no outside document, no section numbers of one.

Checked: README.md, ARCHITECTURE.md, CHANGELOG.md and docs/ (and that their relative links
resolve), every command's --help, `model show` of every preset, the files
shipped for users (presets, examples, dashboard templates), every string
in the code that can become a message, and every docstring of the CLI and
the server (help texts, OpenAPI descriptions).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from touchmodel.cli.app import app

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "touchmodel"
# A link outside the repository, or a citation of a numbered section of a document users do not have.
OUTSIDE = re.compile(r"\.\./shared|SPEC(\.md)?\b|§\s*\d")
LINK = re.compile(r"\]\(([^)#\s]+)(#[^)]*)?\)")


def _offending(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if OUTSIDE.search(line)]


def user_docs() -> list[Path]:
    return [
        ROOT / "README.md",
        ROOT / "ARCHITECTURE.md",
        ROOT / "CHANGELOG.md",
        *sorted((ROOT / "docs").glob("*.md")),
    ]


@pytest.mark.parametrize("path", user_docs(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_docs_cite_nothing_outside_the_repository(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert _offending(text) == []
    for target, _anchor in LINK.findall(text):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        resolved = (path.parent / target).resolve()
        assert resolved.is_relative_to(ROOT), f"{path.name}: {target} is outside the repository"
        assert resolved.exists(), f"{path.name}: {target} does not exist"


def test_the_reference_pages_exist_and_are_linked_from_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for page in ("docs/touch-model.md", "docs/data-contract.md", "docs/mapping.md"):
        assert f"]({page}" in readme, page


def _commands(group: Any, path: list[str]) -> list[list[str]]:
    found = [path]
    if hasattr(group, "commands"):  # a group (typer may ship its own click)
        for name, sub in group.commands.items():
            found += _commands(sub, [*path, name])
    return found


def test_no_help_text_cites_an_outside_document() -> None:
    runner = CliRunner()
    commands = _commands(typer.main.get_command(app), [])
    assert len(commands) > 20
    for cmd in commands:
        result = runner.invoke(app, [*cmd, "--help"], terminal_width=200)
        assert result.exit_code == 0, (cmd, result.output)
        assert _offending(result.output) == [], cmd


@pytest.mark.parametrize("preset", ["standard", "hybrid", "touch-model-design"])
def test_model_show_cites_no_outside_document(preset: str) -> None:
    result = CliRunner().invoke(app, ["model", "show", preset])
    assert result.exit_code == 0, result.output
    assert "tiers:" in result.output
    assert _offending(result.output) == []


def test_files_shipped_for_users_cite_no_outside_document() -> None:
    shipped = [
        *(PACKAGE / "model" / "presets").glob("*.yaml"),
        *(PACKAGE / "examples").glob("*.yaml"),
        *(PACKAGE / "server" / "templates").rglob("*.html"),
    ]
    assert len(shipped) > 10
    bad = {p.name: _offending(p.read_text(encoding="utf-8")) for p in shipped}
    assert {k: v for k, v in bad.items() if v} == {}


def _docstring_nodes(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def test_no_message_in_the_code_cites_an_outside_document() -> None:
    """String literals may become messages; in the CLI and server, docstrings are help and API text."""
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = _docstring_nodes(tree)
        shown_docstrings = path.parent.name in ("cli", "server")
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
                continue
            if id(node) in docstrings and not shown_docstrings:
                continue  # for developers only
            if OUTSIDE.search(node.value):
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value[:80]!r}")
    assert bad == []
