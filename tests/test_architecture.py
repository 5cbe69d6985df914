"""docs/architecture.md maps the code: every module is in its table, and the layout rules hold."""

import re

from tests.conftest import PROJECT_ROOT

DOC = PROJECT_ROOT / "docs" / "architecture.md"


def modules() -> list[str]:
    found = [p for p in (PROJECT_ROOT / "folksy").rglob("*.py") if p.name != "__init__.py"]
    found += [p for p in (PROJECT_ROOT / "steps").glob("*.py") if p.name != "__init__.py"]
    return sorted(str(p.relative_to(PROJECT_ROOT)) for p in found)


def test_every_module_is_in_the_architecture_table():
    listed = set(re.findall(r"^\| `([\w/]+\.py)` \|", DOC.read_text(), flags=re.M))
    missing = [m for m in modules() if m not in listed]
    assert not missing, f"docs/architecture.md's module table lacks {missing}"
    stale = sorted(listed - set(modules()))
    assert not stale, f"docs/architecture.md lists modules that do not exist: {stale}"


def test_the_four_change_points_exist():
    text = DOC.read_text()
    section = text[text.index("## Where to make a change") : text.index("## Modules")]
    paths = re.findall(r"`(folksy/[\w/]+\.py)`", section)
    assert len(paths) == 4 and all((PROJECT_ROOT / p).is_file() for p in paths), paths


def test_steps_are_thin_and_never_import_each_other():
    for path in (PROJECT_ROOT / "steps").glob("*.py"):
        text = path.read_text()
        assert not re.search(r"^\s*(from steps\b|import steps\b)", text, flags=re.M), f"{path.name} imports another step"
        limit = 80 if path.name == "main.py" else 150
        assert len(text.splitlines()) <= limit, f"steps/{path.name} has {len(text.splitlines())} lines; the limit is {limit}"
    library = "\n".join(p.read_text() for p in (PROJECT_ROOT / "folksy").rglob("*.py"))
    assert not re.search(r"^\s*(from steps\b|import steps\b|from corpus\b|import corpus\b)", library, flags=re.M)


def test_only_the_folksy_package_is_installed():
    import tomllib

    setuptools = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert setuptools["packages"]["find"]["include"] == ["folksy*"]
    assert not (PROJECT_ROOT / "corpus" / "__init__.py").exists()  # corpus/ is data, not a package
