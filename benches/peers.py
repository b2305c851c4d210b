"""Peers that cannot share the project's environment: each runs a script of benches/ in its own
virtual environment, created on first use under DATA_DIR/venvs/<name> with pinned versions,
and prints one JSON object on stdout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from report import log

BENCHES = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Peer:
    """A tool run by `script` (in benches/) in the environment `name` holding `requirements`."""

    name: str
    script: str
    requirements: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()

    def python(self, data_dir: Path) -> Path:
        """The environment's Python, created with the pins unless already there."""
        venv = (data_dir / "venvs" / self.name).resolve()
        python = venv / "bin" / "python"
        stamp = venv / "bench-requirements.txt"
        wanted = "\n".join(self.requirements) + "\n"
        if python.exists() and stamp.exists() and stamp.read_text() == wanted:
            return python
        log(f"creating {venv} with {' '.join(self.requirements)}")
        started = time.perf_counter()
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", *self.requirements],
            check=True,
            stdout=sys.stderr,
        )
        stamp.write_text(wanted)
        log(f"  created in {time.perf_counter() - started:.0f} s")
        return python

    def run(self, data_dir: Path, arguments: Sequence[str]) -> dict[str, Any]:
        """The script's JSON output; exits naming the peer when the script fails."""
        command = [str(self.python(data_dir)), str(BENCHES / self.script), *arguments]
        env = {**os.environ, **dict(self.env)}
        env.pop("PYTHONPATH", None)
        process = subprocess.run(command, capture_output=True, text=True, env=env)
        if process.returncode != 0:
            raise SystemExit(f"{self.name} failed ({process.returncode}):\n{process.stderr}")
        result: dict[str, Any] = json.loads(process.stdout)
        return result
