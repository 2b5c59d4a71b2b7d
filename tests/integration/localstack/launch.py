"""Start LocalStack (run by the LocalStack venv's Python 3.13, never imported by pytest).

One narrow patch, for a LocalStack bug that is not in AWS: its Step Functions target
names the execution after ``event["id"]`` unless the target has a constant ``Input``; with
an InputTransformer the transformed document has no ``id``, so delivery fails with
``KeyError: 'id'`` and nothing starts. AWS names rule-started executions itself (a
random name, see infra/constructs/triggers.py), so the patch names it ``long_uid()`` when
the event has no id and changes nothing else: matching, transformation and the
``StartExecution`` call stay LocalStack's.
"""

from __future__ import annotations

from typing import Any


def _patch_states_target() -> None:
    from localstack.services.events import target
    from localstack.services.events.utils import to_json_str
    from localstack.utils.strings import long_uid

    def send_event(self: Any, event: Any, trace_header: Any) -> None:
        self.service = "stepfunctions"
        named = isinstance(event, dict) and "id" in event and not self.target.get("Input")
        self.client.start_execution(
            stateMachineArn=self.target["Arn"],
            name=event["id"] if named else long_uid(),
            input=to_json_str(event),
        )

    target.StatesTargetSender.send_event = send_event


if __name__ == "__main__":
    _patch_states_target()
    from localstack.runtime.main import main

    main()
