"""A/B of the native model step between two builds of edgewise, on one machine at one time.

Each build is a `python` directory holding the `edgewise` package and its `_core` extension
(for example /work/main/python and a worktree's). The script alternates child processes, one
per build and round, each loading the bundle, reading the same rows of one Parquet file and
timing `plan.run` on them with one thread (best of `--repeat`). CPU seconds (user + sys of the
process) hold up on a loaded machine better than wall seconds; both are printed, with a digest
of the outputs so that a difference in results shows.

    python benches/model_step_ab.py BUNDLE PARQUET --builds /work/main/python python
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def child(bundle: Path, data: Path, rows: int, repeat: int) -> dict[str, object]:
    from edgewise import Model
    from edgewise._core import ParquetFile
    from edgewise.scoring import plan_parts

    model = Model.load(bundle, threads=1, engine="native")
    plan = model.engine.plan  # type: ignore[attr-defined]
    dictionary = [c.name for c in model.schema.columns if c.kind == "string"]
    parquet = ParquetFile(data, 1)
    batches = []
    for row_groups in plan_parts([parquet], rows, 4 * 1024 * 1024)[0].row_groups:
        batches.append(parquet.read(list(row_groups), list(model.layout.columns), dictionary))
        if sum(b.num_rows for b in batches) >= rows:
            break
    best = (float("inf"), float("inf"))
    for _ in range(repeat):
        cpu, wall = time.process_time(), time.perf_counter()
        outputs = [plan.run(batch, 1) for batch in batches]
        best = min(best, (time.process_time() - cpu, time.perf_counter() - wall))
    digest = hashlib.sha256()
    for output in outputs:
        for name in sorted(output):
            digest.update(name.encode() + output[name].tobytes())
    n = sum(b.num_rows for b in batches)
    return {"rows": n, "cpu": best[0], "wall": best[1], "digest": digest.hexdigest()[:16]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("parquet", type=Path)
    parser.add_argument("--builds", nargs=2, required=True, help="two python directories")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.bundle, args.parquet, args.rows, args.repeat)))
        return
    cpu: dict[str, list[float]] = {build: [] for build in args.builds}
    for _ in range(args.rounds):
        for build in args.builds:
            command = [sys.executable, __file__, str(args.bundle), str(args.parquet)]
            command += ["--builds", *args.builds, "--rows", str(args.rows), "--child"]
            command += ["--repeat", str(args.repeat)]
            env = {**os.environ, "PYTHONPATH": str(Path(build).resolve())}
            line = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
            result = json.loads(line.stdout)
            cpu[build].append(result["cpu"])
            print(build, json.dumps(result), flush=True)
    a, b = (min(cpu[build]) for build in args.builds)
    print(f"best CPU seconds: {a:.3f} vs {b:.3f}; first / second = {a / b:.2f}x")
    print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    main()
