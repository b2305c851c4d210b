"""The agent imports only what it needs: serving a native-engine model loads no pandas, polars,
pyarrow, scikit-learn, onnx or onnxruntime."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from agent_fleet import AGENT_TIMEOUT, active_is, start_fleet
from agent_support import ref_of
from test_agent_serving import rows

from edgewise.agent import DEVICE_ENVIRONMENT

HEAVY = ("pandas", "polars", "pyarrow", "sklearn", "skl2onnx", "onnx", "onnxruntime", "scipy")
TESTS = Path(__file__).parent


def test_running_agent_with_a_loaded_model_imports_nothing_heavy(broker, world, agent):
    published = world.publish()
    fleet, connection = start_fleet(world, broker, [published])
    try:
        agent.start()
        fleet.wait_state("dev-a", active_is(None))
        fleet.send("dev-a", "install", ref_of(published))
        fleet.wait_state("dev-a", active_is(ref_of(published)))
        assert agent.terminate() == 0
    finally:
        connection.stop()
    # A fresh process that starts from the installed slot, serves one prediction, then stops.
    process = subprocess.run(
        [
            sys.executable,
            str(TESTS / "agent_modules_process.py"),
            str(agent.config),
            str(agent.state_dir),
            json.dumps(rows(1)[0]),
        ],
        env=agent.env,
        capture_output=True,
        text=True,
        timeout=AGENT_TIMEOUT,
    )
    assert process.returncode == 0, process.stderr[-2000:]
    report = json.loads(process.stdout.splitlines()[-1])
    assert report["served"]
    modules = set(report["modules"])
    assert "edgewise.agent.daemon" in modules and "edgewise._core" in modules
    loaded = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    assert loaded == []
    # The device environment is in place before the Rust core and numpy load, which read it.
    assert report["loaded_before_run"] == []
    assert not set(DEVICE_ENVIRONMENT) & set(agent.env)
    assert report["environment"] == DEVICE_ENVIRONMENT
