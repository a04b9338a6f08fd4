"""Run every benchmark section (or those named: `python -m bench model store`) and print their tables."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import traceback
from pathlib import Path

from bench.table import Section

# Section modules, in print order. Each has `run() -> Section`.
SECTIONS = ("model", "store", "agent", "dashboard", "remote", "browser")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("sections", nargs="*", default=list(SECTIONS), help=f"any of {', '.join(SECTIONS)}")
    parser.add_argument("--json", type=Path, default=Path("bench-results/bench.json"))
    args = parser.parse_args(argv)
    results: dict[str, dict] = {}
    failed = False
    for name in args.sections:
        try:
            module = importlib.import_module(f"bench.{name}")
            section: Section = module.run()
        except ModuleNotFoundError as error:
            if error.name != f"bench.{name}":
                raise
            section = Section(name, [], skipped="section not implemented")
        except Exception:  # a broken section must not hide the others' numbers
            traceback.print_exc()
            section, failed = Section(name, [], skipped="failed: see traceback above"), True
        print(section.render(), flush=True)
        results[name] = section.as_dict()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nwrote {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
