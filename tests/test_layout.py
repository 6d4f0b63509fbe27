"""The package's layout: stage folders, an untrusted side that imports only the wire protocol, no work at import."""

import ast
import json
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "hwkit"
STAGES = ("author", "grade", "sandbox", "report", "written", "platforms", "bench")
# What the untrusted side may import of the toolkit: itself, and the protocol (which takes one helper from text).
SANDBOX_MAY_IMPORT = ("hwkit.sandbox", "hwkit.wire")


def toolkit_imports(path: Path) -> set[str]:
    """Every hwkit module a file imports, at any depth of its code (imports inside functions included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}: relative import; the toolkit imports by full name"
            if node.module and node.module.startswith("hwkit"):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("hwkit")}
    return found


def test_modules_sit_in_stage_folders():
    """Is every module in a stage folder, except the command line and the few helpers every stage shares?"""
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert top == ["__init__.py", "__main__.py", "cli.py", "errors.py", "text.py", "wire.py"]
    assert sorted(p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__") == sorted(STAGES)


def test_the_untrusted_side_imports_only_the_wire_protocol():
    """Does any module of the sandbox import a module of the trusted side (anything but the sandbox and wire)?"""
    for path in sorted((PACKAGE / "sandbox").glob("*.py")):
        for module in toolkit_imports(path):
            assert module.startswith(SANDBOX_MAY_IMPORT), f"sandbox/{path.name} imports {module}"


def test_the_grading_server_loads_no_trusted_module():
    """Which toolkit modules does the grading server's preload bring into a fresh interpreter? Only the sandbox's."""
    code = ("import json, sys; import hwkit.sandbox.preload; "
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('hwkit'))))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert set(loaded) == {"hwkit", "hwkit.sandbox", "hwkit.sandbox.confine", "hwkit.sandbox.lockdown",
                           "hwkit.sandbox.preload", "hwkit.sandbox.run", "hwkit.wire", "hwkit.text"}


def test_init_files_only_re_export():
    """Does any ``__init__.py`` run code at import (beyond its docstring and the package's lazy re-exports)?"""
    for path in sorted(PACKAGE.rglob("__init__.py")):
        body = ast.parse(path.read_text(encoding="utf-8")).body
        allowed = (ast.Expr, ast.ImportFrom, ast.Assign, ast.FunctionDef)
        assert all(isinstance(node, allowed) for node in body), path
        calls = [n for n in body if isinstance(n, ast.Expr) and not isinstance(n.value, ast.Constant)]
        assert not calls, f"{path}: runs code at import"
