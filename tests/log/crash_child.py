"""Child process for test_crash.py: append forever, printing each acknowledged batch.

Usage: python crash_child.py DATA_DIR TAG SEED.  The first stdout line is ``ready`` (the log is
open); each later line is JSON
``{"acked": [[index, entry], ...], "checkpoint": note}``, printed only after ``append_many``
returned, i.e. after the entries were durable and signed.  The parent SIGKILLs this process.
"""

from __future__ import annotations

import json
import random
import sys

from teelog.log import Log


def main() -> None:
    data, tag, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rng = random.Random(seed)
    log = Log.open(data)
    print("ready", flush=True)
    n = 0
    while True:
        batch = [f"{tag}-{n + k}".encode() * rng.randint(1, 40) for k in range(rng.randint(1, 300))]
        n += len(batch)
        indexes = log.append_many(batch)
        acked = [[i, e.decode()] for i, e in zip(indexes, batch, strict=True)]
        print(json.dumps({"acked": acked, "checkpoint": log.checkpoint().note}), flush=True)


if __name__ == "__main__":
    main()
