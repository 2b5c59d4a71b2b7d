"""Synthesize the stack from two checkouts and diff the CloudFormation templates.

    .venv/bin/python scripts/template_diff.py BEFORE_ROOT [AFTER_ROOT]

``BEFORE_ROOT``/``AFTER_ROOT`` are repository roots (``AFTER_ROOT`` defaults to this one);
export a commit with ``git archive <commit> | tar -x -C /tmp/before``.  Each variant below
(cdk.json's context plus a few flags) is synthesized from both roots, without bundling and
without CDK's built-in validation, like tests/infra.  Asset hashes (any source change moves
them) are masked, and so is the code hash CDK puts in a Lambda version's logical id;
everything else must match, and every difference is listed by section
and logical id.  Exit status 1 when the templates differ outside ``Outputs``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parents[1]
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "api": {"stepdag:api": "true"},
    "api-cognito-cors": {
        "stepdag:api": "true",
        "stepdag:apiUserPoolArn": (
            "arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_abc"
        ),
        "stepdag:apiCorsOrigins": "https://console.example.com",
    },
    "express": {"stepdag:stateMachineType": "EXPRESS"},
    "canary-email": {
        "stepdag:deploymentType": "CANARY",
        "stepdag:alarmEmail": "ops@example.com",
        "stepdag:retainData": "false",
    },
}
_SYNTH = """
import json, os, sys
root = sys.argv[1]
sys.path[:0] = [os.path.join(root, "functions"), root]
os.chdir(root)
from infra.app import build_app
context = {**json.load(open("cdk.json"))["context"], **json.loads(sys.argv[3])}
app, stack = build_app(context, outdir=sys.argv[2], builtin_validation=False)
print(app.synth().get_stack_by_name(stack.stack_name).template_full_path)
"""
_HASH = re.compile(r"\b[0-9a-f]{64}\b")
# A Lambda version's logical id ends in a hash of the function's code asset (CDK's
# currentVersion): it moves with any source change, like the asset hash itself.
_VERSION_ID = re.compile(r"(CurrentVersion[0-9A-F]{8})[0-9a-f]{32}\b")


def synth(root: Path, context: dict[str, Any], outdir: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": f"{root / 'functions'}:{root}"}
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # leave the checkout as it was
    context = {"stepdag:skipBundling": "true", **context}
    done = subprocess.run(
        [sys.executable, "-c", _SYNTH, str(root), str(outdir), json.dumps(context)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise SystemExit(f"synth of {root} failed:\n{done.stderr[-3000:]}")
    path = Path(done.stdout.strip().splitlines()[-1])
    text = _VERSION_ID.sub(r"\1<code-hash>", _HASH.sub("<asset-hash>", path.read_text()))
    template: dict[str, Any] = json.loads(text)
    return template


def diff(before: dict[str, Any], after: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(section, logical id, "added" | "removed" | "changed") for every difference."""
    out = []
    for section in sorted(set(before) | set(after)):
        old, new = before.get(section, {}), after.get(section, {})
        if not isinstance(old, dict) or not isinstance(new, dict):
            if old != new:
                out.append((section, "", "changed"))
            continue
        for key in sorted(set(old) | set(new)):
            if key not in old:
                out.append((section, key, "added"))
            elif key not in new:
                out.append((section, key, "removed"))
            elif old[key] != new[key]:
                out.append((section, key, "changed"))
    return out


def main(argv: list[str]) -> int:
    if not 1 <= len(argv) <= 2:
        raise SystemExit(__doc__)
    before_root = Path(argv[0]).resolve()
    after_root = Path(argv[1]).resolve() if len(argv) == 2 else HERE
    outside_outputs = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, context in VARIANTS.items():
            old = synth(before_root, context, Path(tmp) / f"before-{name}")
            new = synth(after_root, context, Path(tmp) / f"after-{name}")
            found = diff(old, new)
            outside_outputs += sum(section != "Outputs" for section, _, _ in found)
            print(f"{name}: {len(found)} difference(s)")
            for section, key, what in found:
                print(f"  {section}.{key}: {what}")
                if what != "removed" and section == "Outputs":
                    print(f"    {json.dumps(new[section][key], sort_keys=True)[:300]}")
    print("outside Outputs:", outside_outputs)
    return 1 if outside_outputs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
