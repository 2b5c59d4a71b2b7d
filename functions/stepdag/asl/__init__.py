"""Local interpreter for the Amazon States Language (JSONPath query language).

Runs the same ASL that stepdag deploys to AWS Step Functions, with Step Functions'
semantics: input/output processing, intrinsic functions, Choice rules, Retry/Catch,
Parallel/Map concurrency, timeouts, callbacks and AWS-shaped execution history.
"""

from __future__ import annotations

from stepdag.asl.clock import Clock, ClockEvent, RealClock, VirtualClock
from stepdag.asl.definition import validate_state_machine_definition
from stepdag.asl.errors import AslDefinitionError, StatesError, TaskFailure
from stepdag.asl.history import HistoryEvent
from stepdag.asl.interpreter import ExecutionHandle, ExecutionResult, StartOptions, StateMachine
from stepdag.asl.item_io import ItemReader, MemoryObjects, ResultWriter
from stepdag.asl.runtime import TaskContext, TaskHandler

__all__ = [
    "AslDefinitionError",
    "Clock",
    "ClockEvent",
    "ExecutionHandle",
    "ExecutionResult",
    "HistoryEvent",
    "ItemReader",
    "MemoryObjects",
    "RealClock",
    "ResultWriter",
    "StartOptions",
    "StateMachine",
    "StatesError",
    "TaskContext",
    "TaskFailure",
    "TaskHandler",
    "VirtualClock",
    "validate_state_machine_definition",
]
