"""Load workflows from ``package.module:attr`` or ``path/to/file.py:attr`` references.

A module that fails to import (a typo: ``SyntaxError``, ``NameError``, ``ImportError``, …)
becomes a :class:`WorkflowLoadError` of one line, ``file:line: Error: message``, located at
the user's code that raised it (see :func:`import_failure`), never a traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType, TracebackType

from stepdag.core.errors import StepdagError, WorkflowLoadError
from stepdag.core.model import Workflow
from stepdag.core.sources import is_library_file


@dataclass(frozen=True)
class LoadedWorkflow:
    ref: str  # the reference it was loaded from, normalised to module:attr
    workflow: Workflow
    source: Path | None  # the module file, where the compiled ASL is written beside

    @property
    def where(self) -> str:
        """``statemachines/etl.py:wf`` (the file as the user sees it), else the ref."""
        if self.source is None:
            return self.ref
        return f"{display_path(self.source)}:{self.ref.rpartition(':')[2]}"


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


def discover(
    directory: str | Path = "statemachines",
    *,
    on_error: Callable[[WorkflowLoadError], None] | None = None,
) -> list[LoadedWorkflow]:
    """Every Workflow defined at top level of the ``*.py`` files in ``directory``.

    A module that fails to import raises, unless ``on_error`` is given: then it is
    reported there and skipped (``stepdag serve`` keeps serving the others). Two
    workflows with one name always raise (:func:`unique`).
    """
    root = Path(directory)
    if not root.is_dir():
        raise WorkflowLoadError(f"no workflow directory {str(directory)!r}")
    out: list[LoadedWorkflow] = []
    for path in sorted(root.glob("*.py")):
        if path.name.startswith("_"):
            continue
        try:
            module = _import(str(path))
        except WorkflowLoadError as exc:
            if on_error is None:
                raise
            on_error(exc)
            continue
        for attr in _workflows_in(module):
            out.append(LoadedWorkflow(f"{module.__name__}:{attr}", getattr(module, attr), path))
    return unique(out)


def unique(loaded: Iterable[LoadedWorkflow]) -> list[LoadedWorkflow]:
    """``loaded`` without aliases of one Workflow object; two different workflows with
    one name (a copied module) are an error naming both, never silently merged."""
    seen: dict[str, LoadedWorkflow] = {}
    out = []
    for lw in loaded:
        first = seen.setdefault(lw.workflow.name, lw)
        if first is lw:
            out.append(lw)
        elif first.workflow is not lw.workflow:
            raise WorkflowLoadError(
                f"workflow name {lw.workflow.name!r} is defined twice: {first.where} and {lw.where}"
            )
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
        if exc.name and (target == exc.name or target.startswith(f"{exc.name}.")):
            raise WorkflowLoadError(
                f"cannot import module {target!r}: {exc}. Use package.module:attr with the "
                "package importable, or a file path like statemachines/etl.py:wf"
            ) from exc
        raise import_failure(exc) from exc
    except Exception as exc:
        raise import_failure(exc) from exc


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
    cached = sys.modules.get(name)
    if cached is not None and (len(parts) > 1 or _same_file(cached, path)):
        return cached
    try:
        if len(parts) > 1:
            return importlib.import_module(name)
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise WorkflowLoadError(f"cannot load {str(path)!r} as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
        return module
    except WorkflowLoadError:
        raise
    except Exception as exc:
        raise import_failure(exc, path) from exc


def _same_file(module: ModuleType, path: Path) -> bool:
    # Another file with the same stem (a second project's etl.py) is not this module:
    # reusing it would run the wrong code under the right name.
    return module.__file__ is not None and Path(module.__file__).resolve() == path


def import_failure(exc: BaseException, module_file: Path | None = None) -> WorkflowLoadError:
    """``file:line: Error: message`` for an exception raised while importing a module.

    The location is the innermost frame in the user's code (not the import machinery,
    stepdag, the standard library or an installed package), so an error in a helper
    module the workflow imports names the helper; a ``SyntaxError`` carries its own.
    Messages are folded onto one line, except a stepdag error's (a validation report
    raised at import lists its problems one a line, as everywhere else).
    """
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f"{display_path(Path(exc.filename))}:{exc.lineno or 0}"
        text = exc.msg
    else:
        frame = _user_frame(exc.__traceback__, module_file)
        where = f"{display_path(frame[0])}:{frame[1]}" if frame else "<unknown>"
        text = str(exc)
    if not isinstance(exc, StepdagError):
        text = " ".join(text.split())
    message = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return WorkflowLoadError(f"{where}: {message}")


def _user_frame(tb: TracebackType | None, fallback: Path | None) -> tuple[Path, int] | None:
    frames: list[tuple[Path, int]] = []
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if not filename.startswith("<"):  # "<frozen importlib._bootstrap>", "<string>"
            frames.append((Path(filename).resolve(), tb.tb_lineno))
        tb = tb.tb_next
    users = [f for f in frames if not is_library_file(f[0])]
    for candidates in (users, frames):
        if candidates:
            return candidates[-1]
    return None if fallback is None else (fallback, 0)


def display_path(path: Path) -> str:
    """``path`` relative to the working directory when it is inside it, else absolute."""
    path = path.resolve()
    cwd = Path.cwd().resolve()
    return str(path.relative_to(cwd)) if path.is_relative_to(cwd) else str(path)
