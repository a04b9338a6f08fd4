"""Dependencies point one way: `fer` <- `pi_agent`, `app`. The web app (app/, pages/, streamlit_app.py) never imports
the Raspberry Pi agent: shared vision and video code lives in `fer`."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module":
            names.update(arg.value for arg in node.args if isinstance(arg, ast.Constant) and isinstance(arg.value, str))
    return names


def app_files() -> list[Path]:
    return sorted([*(ROOT / "app").rglob("*.py"), *(ROOT / "pages").rglob("*.py"), ROOT / "streamlit_app.py"])


def test_no_app_or_page_module_imports_pi_agent():
    offenders = {str(path.relative_to(ROOT)): sorted(m for m in imported_modules(path) if m.split(".")[0] == "pi_agent")
                 for path in app_files()}
    assert {path: modules for path, modules in offenders.items() if modules} == {}


def test_the_check_sees_every_kind_of_import(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import pi_agent.video\nfrom pi_agent import vision\n"
                      "def f():\n    from pi_agent.vision import FrameAnalyzer\n"
                      "import importlib\nimportlib.import_module('pi_agent.cli')\n")
    assert {"pi_agent.video", "pi_agent", "pi_agent.vision", "pi_agent.cli"} <= imported_modules(sample)
    assert len(app_files()) > 5
