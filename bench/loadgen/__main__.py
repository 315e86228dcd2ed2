"""``python -m bench.loadgen MODE SPEC_JSON``: the load generator, always a process apart from the harness."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

from bench.loadgen.blobs import pull, push
from bench.loadgen.listing import listing
from bench.loadgen.pushes import pushes
from bench.loadgen.storm import storm

MODES: dict[str, Callable[[dict[str, Any]], None]] = {
    "pull": pull, "push": push, "storm": storm, "pushes": pushes, "listing": listing}


def main(argv: list[str]) -> None:
    if len(argv) != 2 or argv[0] not in MODES:
        raise SystemExit(f"usage: python -m bench.loadgen {{{','.join(MODES)}}} SPEC_JSON")
    MODES[argv[0]](json.loads(argv[1]))


if __name__ == "__main__":
    main(sys.argv[1:])
