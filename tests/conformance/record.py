"""(Re)record fixture ``expected`` values from moto, and flag suspected moto divergences.

Usage (from the repo root)::

    .venv/bin/python tests/conformance/record.py            # check only, print mismatches
    .venv/bin/python tests/conformance/record.py --write    # rewrite expected / moto_actual
    .venv/bin/python tests/conformance/record.py --write map_basic choice_string_ops

For fixtures without ``moto_divergent`` the moto result becomes ``expected``.  For
fixtures with ``moto_divergent``, ``expected`` is hand-written AWS behaviour and is never
overwritten; moto's current answer is stored in ``moto_actual`` instead, and the script
says whether moto still diverges.  Results that look like moto internals leaking out
(a Python exception repr as the cause of States.Runtime, or a harness crash) are flagged
as SUSPECT so a human decides whether to mark the fixture divergent.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # allow running as a plain script
    sys.path.insert(0, str(ROOT))

from tests.conformance.corpus import Fixture, load_fixtures, run_fixture_in_moto  # noqa: E402
from tests.support.moto_sfn import moto_sfn  # noqa: E402

# "TypeError(...)" / "KeyError(...)" causes are moto's catch-all for interpreter crashes.
_PY_EXC_CAUSE = re.compile(r"^[A-Z][A-Za-z]*(Error|Exception)\(")


def suspect_reason(result: dict[str, Any]) -> str | None:
    if result["status"] == "HARNESS_ERROR":
        return f"harness crashed: {result['error']}: {result['cause']}"
    cause = result.get("cause") or ""
    if result.get("error") == "States.Runtime" and _PY_EXC_CAUSE.match(cause):
        return f"moto internal exception surfaced as States.Runtime: {cause}"
    return None


def write_fixture(fixture: Fixture) -> None:
    fixture.path.write_text(json.dumps(fixture.data, indent=2, ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update fixture files")
    parser.add_argument("names", nargs="*", help="fixture stems to (re)record (default: all)")
    args = parser.parse_args(argv)

    fixtures = load_fixtures(require_expected=False)
    if args.names:
        wanted = set(args.names)
        fixtures = [f for f in fixtures if f.name in wanted]
    problems = 0
    started = time.monotonic()
    with moto_sfn() as sfn:
        for fx in fixtures:
            result = run_fixture_in_moto(sfn, fx)
            suspect = suspect_reason(result)
            if fx.moto_divergent:
                still = fx.comparable(result) != fx.comparable(fx.data.get("expected", {}))
                state = "still diverges" if still else "NOW MATCHES AWS (drop moto_divergent?)"
                print(f"[divergent] {fx.name}: {state}")
                if args.write:
                    fx.data["moto_actual"] = result
                    write_fixture(fx)
                problems += 0 if still else 1
                continue
            if suspect:
                print(f"[SUSPECT]   {fx.name}: {suspect}")
            old = fx.data.get("expected")
            if old is None or fx.comparable(old) != fx.comparable(result):
                print(
                    f"[changed]   {fx.name}:\n    was {json.dumps(old)}"
                    f"\n    now {json.dumps(result)}"
                )
                problems += 1
                if args.write:
                    fx.data["expected"] = result
                    write_fixture(fx)
    elapsed = time.monotonic() - started
    print(f"{len(fixtures)} fixtures, {problems} changed/problems, {elapsed:.1f}s")
    return 1 if problems and not args.write else 0


if __name__ == "__main__":
    raise SystemExit(main())
