"""``stepdag asl run``: any ASL definition on the local interpreter, with a fixed contract."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from stepdag.cli.app import EXIT_FAILED, EXIT_INVALID
from stepdag.cli.args import parse_json_arg
from stepdag.core.errors import InputValidationError, WorkflowLoadError
from stepdag.core.inputs import NotJson, check_input, dumps


def asl_run(
    definition: Annotated[Path, typer.Argument(help="an ASL JSON file")],
    input: Annotated[str | None, typer.Option("--input", "-i", help="JSON or @file")] = None,
    handlers: Annotated[
        str | None,
        typer.Option(help="module:attr — a callable(resource, parameters) or a dict of them"),
    ] = None,
    machine_type: Annotated[
        str,
        typer.Option(
            "--type", help="STANDARD (fails at 25,000 history events) or EXPRESS (5-minute limit)"
        ),
    ] = "STANDARD",
) -> None:
    """Run an ASL file; print one JSON object {status, output, error, cause}.

    The contract: stdout carries exactly that object, exit 0 when status is SUCCEEDED,
    1 for any other run result, 2 when the definition or input is invalid (then status
    is "INVALID" and error/cause say why). The input is refused before the run when it
    is over 256 KiB of JSON, nests deeper than 64 levels or is not strict JSON.
    """
    try:
        # Imported here: the interpreter loads for this command only (start-up).
        from stepdag.asl import StateMachine

        raw = parse_json_arg(input, "--input") if input is not None else {}
        # Refused before the run, as StartExecution refuses it: the rules every entry applies.
        check_input(raw, "--input")
        if not definition.is_file():
            raise InputValidationError(f"no such definition file {str(definition)!r}")
        sm = StateMachine(
            definition.read_text(), name=definition.stem, machine_type=machine_type.upper()
        )
        handler = _load_handlers(handlers) if handlers else None
        result = sm.execute(raw, task_handler=handler, name="asl-run").to_contract()
    except Exception as exc:  # the contract holds even for invalid input
        from stepdag.asl.errors import AslDefinitionError

        result = {"status": "INVALID", "output": None, "error": type(exc).__name__}
        if isinstance(exc, AslDefinitionError):
            # CreateStateMachine's answer, and one line per problem for the reader.
            result |= {"error": "InvalidDefinition", "cause": exc.aws_message}
            sys.stderr.write("".join(f"{p}\n" for p in exc.problems))
        else:
            result["cause"] = str(exc)
        sys.stdout.write(dumps(result, "the result", sort_keys=True) + "\n")
        raise typer.Exit(EXIT_INVALID) from None
    result = _strict(result)
    sys.stdout.write(dumps(result, "the result", sort_keys=True) + "\n")
    if result["status"] != "SUCCEEDED":
        raise typer.Exit(EXIT_FAILED)


def _strict(result: dict[str, Any]) -> dict[str, Any]:
    """The contract's object is strict JSON: an output JSON cannot carry (NaN, Infinity,
    from a handler) makes the run FAILED, saying so, instead of being printed."""
    try:
        dumps(result["output"], "the execution output")
    except NotJson as exc:
        return {"status": "FAILED", "output": None, "error": "States.Runtime", "cause": str(exc)}
    return result


def _load_handlers(ref: str) -> Any:
    mod, _, attr = ref.partition(":")
    try:
        obj = getattr(importlib.import_module(mod), attr)
    except (ImportError, AttributeError) as exc:
        raise WorkflowLoadError(f"cannot load handlers {ref!r}: {exc}") from None
    if isinstance(obj, dict):
        table = obj

        def dispatch(resource: str, parameters: Any, ctx: Any) -> Any:
            fn = table.get(resource)
            if fn is None:
                raise LookupError(f"no handler for resource {resource!r}")
            return fn(parameters)

        return dispatch
    return lambda resource, parameters, ctx: obj(resource, parameters)


__all__ = ["asl_run"]
