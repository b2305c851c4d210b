"""Where a client reads repository files from, behind python-tuf's `FetcherInterface`.

The TUF client workflow only ever asks a fetcher for the bytes at a URL, with a length cap that
python-tuf enforces while the chunks arrive. A directory (a mounted share, a copied repository)
needs no HTTP; a device will plug in a fetcher that reads from MQTT instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

from tuf.api.exceptions import DownloadError, DownloadHTTPError
from tuf.ngclient import FetcherInterface

CHUNK_BYTES = 64 << 10


class DirectoryFetcher(FetcherInterface):
    """Serves ``file://`` URLs from inside one directory, and nothing outside it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory.resolve()

    def url_for(self, relative: str) -> str:
        """The base URL of a subdirectory, as the Updater wants it (with a trailing slash)."""
        return (self.directory / relative).as_uri() + "/"

    def _fetch(self, url: str) -> Iterator[bytes]:
        parsed = urlparse(url)
        if parsed.scheme != "file":
            raise DownloadError(f"{url}: a directory fetcher reads file:// URLs only")
        path = Path(url2pathname(parsed.path)).resolve()
        if not path.is_relative_to(self.directory):
            raise DownloadError(f"{url}: outside the repository {self.directory}")
        if not path.is_file():
            # The Updater looks for the next root version until one is missing: "not found" is
            # how a repository says there is none, so it must be the HTTP 404 it expects.
            raise DownloadHTTPError(f"{path}: not found", 404)
        return _chunks(path)


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk
