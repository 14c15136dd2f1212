"""How many generated examples a property test runs: all of them, or a tenth in the quick loop.

`make test` (and CI) runs every example; `make test-fast` sets GATEWAY_TEST_EXAMPLES=0.1, so the
floods still run there, only shorter.
"""

from __future__ import annotations

import math
import os


def examples(full: int) -> int:
    """Return the number of examples to run for a test written for `full`."""
    scale = float(os.environ.get("GATEWAY_TEST_EXAMPLES", "1"))
    return max(10, math.ceil(full * scale))
