"""The house rules of docs/house-rules.md that can be read off the source (issue 20).

Each test parses the package's source with ``ast``; none runs a scan. The rules that
need running code have their own tests (named in docs/house-rules.md).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import poisonguard
from poisonguard.attack import ATTACK_INFO
from poisonguard.detect import available_detectors, get_detector

PACKAGE = Path(poisonguard.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _imports(path: Path) -> Iterator[str]:
    """Every module ``path`` imports (top level or inside functions), absolute."""
    package = _module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" \
        else _module_name(path)
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def _sources(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


def test_no_detector_imports_another() -> None:
    detector_modules = {type(get_detector(name)).__module__ for name in available_detectors()}
    assert len(detector_modules) >= 8  # every registered detector has its own module
    offences = []
    for path in _sources("detect"):
        here = _module_name(path)
        if here not in detector_modules:
            continue  # shared machinery (base, thresholds, subpopulation, ...) may be imported
        for target in _imports(path):
            if target in detector_modules and target != here:
                offences.append(f"{here} imports {target}")
    assert not offences, offences


def _branch_tests(tree: ast.AST) -> Iterator[ast.AST]:
    """The conditions of every branch: if/elif, while, conditional expressions,
    comprehension filters, assert, and every match statement."""
    for node in ast.walk(tree):
        if isinstance(node, ast.If | ast.While | ast.IfExp | ast.Assert):
            yield node.test
        elif isinstance(node, ast.comprehension):
            yield from node.ifs
        elif isinstance(node, ast.Match):
            yield node


#: Names that carry the signature policy's inputs through the CLI.
POLICY_NAMES = {"pubkey", "trust", "trust_embedded_key", "allow_unsigned", "policy"}


def test_the_cli_does_not_branch_on_attack_kind_or_signature_policy() -> None:
    kinds = set(ATTACK_INFO)
    offences = []
    for path in _sources("cli"):
        for test in _branch_tests(_tree(path)):
            where = f"{path.relative_to(PACKAGE)}:{test.lineno}"
            for node in ast.walk(test):
                if isinstance(node, ast.Constant) and node.value in kinds:
                    offences.append(f"{where}: branches on attack kind {node.value!r}")
                if isinstance(node, ast.Name) and node.id in POLICY_NAMES:
                    offences.append(f"{where}: branches on signature option {node.id!r}")
    assert not offences, offences


#: Readers that bypass the one opener (poisonguard.datasets.open_dataset).
DIRECT_READERS = {"load_dataset", "builtin_dataset", "read_csv", "read_parquet", "read_table",
                  "read_json", "load_npz", "table_to_dataset", "image_folder_dataset"}


def test_commands_and_scan_open_data_through_open_dataset() -> None:
    callers = [*_sources("cli"), PACKAGE / "scan.py"]
    offences = []
    for path in callers:
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.Call):
                name = node.func.attr if isinstance(node.func, ast.Attribute) else \
                    getattr(node.func, "id", "")
                if name in DIRECT_READERS:
                    offences.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {name}()")
    assert not offences, offences


def _strings(tree: ast.AST) -> Iterator[ast.Constant]:
    """String constants that are not docstrings (statements of their own)."""
    docstrings = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and id(node) not in docstrings:
            yield node


def test_builtin_names_are_parsed_in_one_place() -> None:
    offences = [f"{path.relative_to(PACKAGE)}:{node.lineno}"
                for path in sorted(PACKAGE.rglob("*.py")) if path != PACKAGE / "datasets.py"
                for node in _strings(_tree(path)) if node.value.startswith("builtin:")]
    assert not offences, f"'builtin:' handled outside poisonguard/datasets.py: {offences}"


def test_no_detector_clamps_scores_by_hand() -> None:
    """``DetectorResult`` raises flagged rows to >= 0.5 and lowers the rest below it, and
    derives the clean classes: detectors neither clamp nor pass a threshold."""
    offences = []
    for path in _sources("detect"):
        if path.name in {"base.py", "thresholds.py"}:
            continue  # where the convention lives
        tree = _tree(path)
        defaults = {id(d) for f in ast.walk(tree) if isinstance(f, ast.arguments)
                    for d in [*f.defaults, *f.kw_defaults] if d is not None}
        for node in ast.walk(tree):
            where = f"{path.name}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Constant) and isinstance(node.value, float) \
                    and 0.4 <= node.value < 0.5 and id(node) not in defaults:
                offences.append(f"{where}: score-like constant {node.value}")
            if not isinstance(node, ast.Call):
                continue
            func = node.func.attr if isinstance(node.func, ast.Attribute) else \
                getattr(node.func, "id", "")
            constants = {a.value for a in node.args if isinstance(a, ast.Constant)}
            if func == "nextafter" and 0.5 in constants:
                offences.append(f"{where}: nextafter(0.5, ...)")
            if func == "DetectorResult":
                offences += [f"{where}: DetectorResult({k.arg}=...)" for k in node.keywords
                             if k.arg in {"threshold", "clean_classes"}]
    assert not offences, offences
