"""cfn-lint on synthesized templates: ``python -m infra.lint cdk.out/*.template.json``.

The tests call :func:`lint_template`; CI may call the module. Every ignored check is
listed with its reason: nothing else may be silenced.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

# check id -> why it is ignored
CFN_LINT_IGNORED: dict[str, str] = {
    "W3005": "CDK adds an explicit DependsOn on a Lambda/state-machine role next to the "
    "GetAtt of that role (it also needs the DependsOn on the role's policy, which is not "
    "redundant); the duplicate edge is harmless and not controllable from the L2.",
}
# Regions the template is checked against (resource/property availability).
CFN_LINT_REGIONS: tuple[str, ...] = ("us-east-1",)


def lint_template(path: str | Path) -> list[str]:
    """cfn-lint findings for one template, formatted ``<rule> <message> (<path>)``."""
    from cfnlint.api import lint_file  # type: ignore[import-untyped]
    from cfnlint.config import ManualArgs  # type: ignore[import-untyped]

    matches = lint_file(
        Path(path),
        config=ManualArgs(ignore_checks=sorted(CFN_LINT_IGNORED), regions=list(CFN_LINT_REGIONS)),
    )
    return [f"{m.rule.id} {m.message} ({'/'.join(map(str, m.path))})" for m in matches]


def main(argv: Sequence[str] | None = None) -> int:
    paths = list(argv if argv is not None else sys.argv[1:]) or sorted(
        str(p) for p in Path("cdk.out").glob("*.template.json")
    )
    if not paths:
        print("no templates to lint (run `python -m infra.app` first)", file=sys.stderr)
        return 2
    failed = False
    for path in paths:
        findings = lint_template(path)
        for finding in findings:
            print(f"{path}: {finding}")
        failed = failed or bool(findings)
        if not findings:
            print(f"{path}: cfn-lint clean")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
