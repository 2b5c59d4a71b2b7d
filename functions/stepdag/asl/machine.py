"""A compiled (sub-)machine: the top level, a Parallel branch or a Map processor."""

from __future__ import annotations

from typing import Any, Final

from stepdag.asl import jsonata, variables
from stepdag.asl.runtime import Frame
from stepdag.asl.states.base import State
from stepdag.asl.states.distributed import DistributedMapState
from stepdag.asl.states.flow import ChoiceState, FailState, PassState, SucceedState, WaitState
from stepdag.asl.states.parallel import MapState, ParallelState
from stepdag.asl.states.task import TaskState

STATE_TYPES: Final[dict[str, type[State]]] = {
    "Pass": PassState,
    "Task": TaskState,
    "Choice": ChoiceState,
    "Wait": WaitState,
    "Succeed": SucceedState,
    "Fail": FailState,
    "Parallel": ParallelState,
    "Map": MapState,
}


def _state_type(spec: dict[str, Any]) -> type[State]:
    if spec["Type"] == "Map":
        processor = spec.get("ItemProcessor") or spec.get("Iterator") or {}
        if (processor.get("ProcessorConfig") or {}).get("Mode") == "DISTRIBUTED":
            return DistributedMapState
    return STATE_TYPES[spec["Type"]]


def _inherit(spec: dict[str, Any], language: str) -> dict[str, Any]:
    """A state without its own QueryLanguage takes its machine's; so do the machines
    nested in it (AWS: the states of a Map's ItemProcessor or a Parallel's branches
    follow the state machine's QueryLanguage, not the Map's or Parallel's own)."""
    if "QueryLanguage" not in spec:
        spec = {**spec, "QueryLanguage": language}
    if "Branches" in spec and isinstance(spec["Branches"], list):
        spec = {**spec, "Branches": [{"QueryLanguage": language, **b} for b in spec["Branches"]]}
    for key in ("ItemProcessor", "Iterator"):
        if isinstance(spec.get(key), dict):
            spec = {**spec, key: {"QueryLanguage": language, **spec[key]}}
    return spec


class Machine:
    """States plus ``StartAt``; assumes the definition was validated."""

    def __init__(self, raw: dict[str, Any], query_language: str = "JSONPath") -> None:
        self.start_at: str = raw["StartAt"]
        language = raw.get("QueryLanguage", query_language)
        self.states: dict[str, State] = {
            name: _state_type(spec)(name, _inherit(spec, language))
            for name, spec in raw["States"].items()
        }

    def run(self, frame: Frame, data: Any) -> Any:
        """Run from ``StartAt`` to a terminal state; errors propagate as StatesError."""
        state = self.states[self.start_at]
        states = self.states
        # Evaluations in this thread read this frame's variables, rng and clock; a
        # branch run inline in its parent's thread restores the parent's on return.
        scope_token = variables.enter(frame.scope)
        env_token = jsonata.evaluating(frame.execution.rng, frame.execution.clock)
        try:
            while True:
                output, next_name = state.run(frame, data)
                if next_name is None:
                    return output
                data = output
                state = states[next_name]
        finally:
            jsonata.done_evaluating(env_token)
            variables.leave(scope_token)


__all__ = ["STATE_TYPES", "Machine"]
