"""Load workflows from ``package.module:attr`` or ``path/to/file.py:attr`` references."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from stepdag.core.errors import WorkflowLoadError
from stepdag.core.model import Workflow


@dataclass(frozen=True)
class LoadedWorkflow:
    ref: str  # the reference it was loaded from, normalised to module:attr
    workflow: Workflow
    source: Path | None  # the module file, where the compiled ASL is written beside


def load_workflow(ref: str) -> LoadedWorkflow:
    """Resolve a WORKFLOW reference; ``attr`` may be omitted when the module has one."""
    target, _, attr = ref.partition(":")
    if not target:
        raise WorkflowLoadError(
            f"empty workflow reference {ref!r}; use module:attr or file.py:attr"
        )
    module = _import(target)
    if attr:
        obj = getattr(module, attr, None)
        if not isinstance(obj, Workflow):
            found = _workflows_in(module)
            hint = f" (it defines: {', '.join(found)})" if found else ""
            raise WorkflowLoadError(f"{target!r} has no Workflow named {attr!r}{hint}")
    else:
        found = _workflows_in(module)
        if len(found) != 1:
            raise WorkflowLoadError(
                f"{target!r} defines {len(found)} workflows ({', '.join(found) or 'none'}); "
                "name one as module:attr"
            )
        attr = found[0]
        obj = getattr(module, attr)
    source = Path(module.__file__).resolve() if module.__file__ else None
    return LoadedWorkflow(f"{module.__name__}:{attr}", obj, source)


def discover(directory: str | Path = "statemachines") -> list[LoadedWorkflow]:
    """Every Workflow defined at top level of the ``*.py`` files in ``directory``."""
    root = Path(directory)
    if not root.is_dir():
        raise WorkflowLoadError(f"no workflow directory {str(root)!r}")
    out: list[LoadedWorkflow] = []
    for path in sorted(root.glob("*.py")):
        if path.name.startswith("_"):
            continue
        module = _import(str(path))
        for attr in _workflows_in(module):
            out.append(LoadedWorkflow(f"{module.__name__}:{attr}", getattr(module, attr), path))
    return out


def _workflows_in(module: ModuleType) -> list[str]:
    return [k for k, v in vars(module).items() if isinstance(v, Workflow) and not k.startswith("_")]


def _import(target: str) -> ModuleType:
    if target.endswith(".py") or "/" in target:
        return _import_file(Path(target))
    # Like `python -m`, resolve module references from the working directory.
    cwd = str(Path.cwd())
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as exc:
        if exc.name and target.startswith(exc.name):
            raise WorkflowLoadError(
                f"cannot import module {target!r}: {exc}. Use package.module:attr with the "
                "package importable, or a file path like statemachines/etl.py:wf"
            ) from exc
        raise


def _import_file(path: Path) -> ModuleType:
    path = path.resolve()
    if not path.is_file():
        raise WorkflowLoadError(f"no such workflow file: {str(path)!r}")
    # A file inside a package directory (has __init__.py) is imported under its package
    # name, so a file path and a module path give the same module object (one registry).
    parts = [path.stem]
    parent = path.parent
    while (parent / "__init__.py").is_file():
        parts.insert(0, parent.name)
        parent = parent.parent
    name = ".".join(parts)
    if str(parent) not in sys.path:
        sys.path.insert(0, str(parent))
    if name in sys.modules:
        return sys.modules[name]
    if len(parts) > 1:
        return importlib.import_module(name)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise WorkflowLoadError(f"cannot load {str(path)!r} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception:
        del sys.modules[name]
        raise
    return module
