"""``validate_input``: execution input checked against every ``params`` annotation, pure
(no engine, no store), before anything is recorded."""

from __future__ import annotations

from typing import Any

import pytest

from stepdag import InputValidationError, Workflow
from stepdag.core.inputs import validate_input
from stepdag.core.model import Dag


def _dag() -> Dag:
    wf = Workflow("typed_input")

    @wf.node
    def a(params: dict[str, int]) -> int:
        return params["x"]

    @wf.node
    def b(a: int) -> int:
        return a

    return wf.build()


def test_fitting_input_passes() -> None:
    validate_input(_dag(), {"x": 1})


def test_misfit_input_names_the_node_parameter_and_field() -> None:
    with pytest.raises(InputValidationError) as err:
        validate_input(_dag(), {"x": "one"})
    text = str(err.value)
    assert "workflow 'typed_input'" in text and "node 'a'" in text and "'params'" in text
    assert text.count("\n") == 0 and "x:" in text
    assert err.value.http_status == 400


@pytest.mark.parametrize("bad", [float("nan"), {"x": float("inf")}, {1, 2}, object()])
def test_non_json_input_is_refused(bad: Any) -> None:
    with pytest.raises(InputValidationError, match="execution input is not JSON"):
        validate_input(_dag(), bad)


def test_a_workflow_without_params_takes_any_json() -> None:
    wf = Workflow("untyped")

    @wf.node
    def only() -> int:
        return 1

    validate_input(wf.build(), {"anything": [1, "two", None]})
