"""``stepdag logs``: a node's Powertools log lines, locally or from CloudWatch Logs.

Both sources yield the same JSON documents (``runtime/logs.py`` captures local runs in
the shape the node-runner Lambda's Powertools Logger prints, ``cli/cloudwatch.py`` reads
them on AWS), so one view (``cli/views.py``) renders them.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from stepdag.cli.app import out
from stepdag.cli.args import ExecutionArg
from stepdag.cli.remote import Target
from stepdag.cli.target import client_for, target_options
from stepdag.cli.views import log_view


@target_options
def logs(
    execution: ExecutionArg,
    *,
    node: Annotated[str | None, typer.Option(help="only this node's lines")] = None,
    index: Annotated[int | None, typer.Option(min=0, help="only this Map item")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines, as stored")] = False,
    target: Target,
) -> None:
    """A node's (or every node's) Powertools log lines: captured locally, CloudWatch on AWS."""
    client = client_for(target)
    rec = client.get(execution)
    entries = client.logs(rec, node=node, index=index)
    if as_json:
        for entry in entries:
            sys.stdout.write(json.dumps(entry, default=str, sort_keys=True) + "\n")
        return
    out.print(log_view(entries))


__all__ = ["logs"]
