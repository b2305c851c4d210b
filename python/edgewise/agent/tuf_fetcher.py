"""python-tuf's fetcher over the metadata inbox: the Updater asks for files, the inbox has the
retained documents of each role.

With consistent snapshots the Updater asks for ``N.root.json`` (each root after the one it
trusts), ``timestamp.json``, ``N.snapshot.json`` and ``N.targets.json``. A versioned name is
served only when the retained document is that version (every root version is retained on its
own topic); anything else is "not found" (HTTP 404 to python-tuf), which is how a repository
says there is no newer root.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from tuf.api.exceptions import DownloadHTTPError
from tuf.ngclient import FetcherInterface

from .tuf_inbox import MetadataInbox, MetadataSnapshot

BASE_URL = "mqtt://edgewise/v1/tuf/"
_FILE = re.compile(
    r"(?:(?P<version>[1-9][0-9]{0,18})\.)?(?P<role>root|timestamp|snapshot|targets)\.json"
)


class InboxFetcher(FetcherInterface):
    def __init__(self, inbox: MetadataInbox | MetadataSnapshot, wait: float) -> None:
        self.inbox = inbox
        self.wait = wait  # seconds to wait for a role's first retained document

    def _fetch(self, url: str) -> Iterator[bytes]:
        match = _FILE.fullmatch(url.removeprefix(BASE_URL)) if url.startswith(BASE_URL) else None
        if match is None:
            raise DownloadHTTPError(f"{url}: not TUF metadata the control plane publishes", 404)
        role, wanted = match["role"], match["version"]
        if role == "root" and wanted is not None:
            document = self.inbox.root(int(wanted), self.wait)
        else:
            document = self.inbox.get(role, self.wait)
        if document is None or (wanted is not None and document.version != int(wanted)):
            raise DownloadHTTPError(f"{url}: not retained on the broker", 404)
        return iter([document.data])
