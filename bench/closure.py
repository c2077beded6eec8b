"""The project code a module runs — its import closure — and a hash of it: what decides whether something stored
(a run's summary, a figure, a page) was computed by the code of today.

The closure follows every import of gradbench's own packages, at any level of a module (a lazy import inside a
function counts) and the packages' __init__ modules, which Python runs on the way; it stops at other libraries,
whose versions are recorded apart. The hash reads each module's code without comments and docstrings, so a change
of wording leaves what was stored valid.
"""

import ast
import hashlib
from collections.abc import Iterable
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bench", "report")


def without_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            node.body = body[1:] or ([] if isinstance(node, ast.Module) else [ast.Pass()])  # a module may be empty
    return tree


def code_of(source: str) -> str:
    """A module's code without its comments and docstrings: what a change of wording leaves alone."""
    return ast.dump(without_docstrings(ast.parse(source)))


def definitions_code(path: Path, names: Iterable[str]) -> str:
    """The code (as code_of) of some top-level definitions of a module and of every top-level name they use,
    directly or not: what those functions compute, whatever else the module holds."""
    defined = {}
    for node in without_docstrings(ast.parse(path.read_text(encoding="utf-8"))).body:
        targets = node.targets if isinstance(node, ast.Assign) else [node]
        for target in targets:
            if isinstance(target, ast.Name | ast.FunctionDef | ast.ClassDef):
                defined[getattr(target, "id", None) or target.name] = node
    seen, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in defined and name not in seen:
            seen.add(name)
            todo.extend(n.id for n in ast.walk(defined[name]) if isinstance(n, ast.Name))
    return "".join(ast.dump(defined[name]) for name in sorted(seen))


def source_file(module: str) -> Path | None:
    """The file of one of the project's modules or packages; None for anything else (a class, another library)."""
    if module.split(".")[0] not in PACKAGES:
        return None
    path = ROOT.joinpath(*module.split("."))
    for candidate in (path / "__init__.py", path.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def parents(module: str) -> list[str]:
    """The packages Python runs on the way to a module: report.grading.runs -> report, report.grading."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


@cache
def imports(module: str) -> frozenset[str]:
    """The project modules one module imports, anywhere in it."""
    path = source_file(module)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set(parents(module))
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # from .x import y: relative to this module's package, one level up per extra dot
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base]).strip(".")
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # `from report import figures`
    return frozenset(name for name in found if source_file(name) and name != module)


def closure(modules: Iterable[str]) -> list[str]:
    """The modules given and every project module they import, directly or not, sorted."""
    seen, todo = set(), list(modules)
    while todo:
        module = todo.pop()
        if module not in seen and source_file(module):
            seen.add(module)
            todo.extend(imports(module) | set(parents(module)))
    return sorted(seen)


@cache
def module_code(module: str) -> str:
    """One project module's code_of, parsed once per process: a build hashes many closures that share modules."""
    return code_of(source_file(module).read_text(encoding="utf-8"))


@cache
def code_hash(*modules: str) -> str:
    """A hash of the code of the modules' closure (not its comments): equal, then they compute what they did."""
    digest = hashlib.sha256()
    for module in closure(modules):
        digest.update(f"{module}\0{module_code(module)}\0".encode())
    return digest.hexdigest()[:16]
