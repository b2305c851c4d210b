"""An install in a process of its own, for tests that kill it (SIGKILL) at a crash point.

Usage: python agent_install_process.py STATE REPO ROOT TRUST_STATE BUNDLE NAME VERSION SHA LENGTH
It installs BUNDLE (moved into a slot) with the real trust client, prints "installed" and exits;
with EDGEWISE_AGENT_CRASH_AT set it dies where that names instead.
"""

from __future__ import annotations

import sys
from pathlib import Path

from edgewise.agent.health import HealthPolicy
from edgewise.agent.install import Installer
from edgewise.agent.slots import SlotStore
from edgewise.transport import BundleRef
from edgewise.trust import TrustClient


def main(args: list[str]) -> None:
    state, repo, root, trust_state, bundle = map(Path, args[:5])
    ref = BundleRef(args[5], int(args[6]), args[7], int(args[8]))
    client = TrustClient.for_directory(repo, root, trust_state)
    installer = Installer(
        SlotStore(state), lambda path: client.verify_file(path, record=False), HealthPolicy()
    )
    installer.install(bundle, ref)
    print("installed", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
