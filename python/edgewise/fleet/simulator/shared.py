"""What the simulated devices of one process share: only work whose result is fixed by exact
bytes, so that sharing it cannot let a device accept anything it would refuse alone.

- **Verified TUF metadata, keyed by the exact bytes.** python-tuf's client workflow, run from
  the pinned root over one set of documents, gives the same verdict for every device that holds
  exactly those documents (a SHA-256 over all of them is the key). It runs once per distinct set
  and is re-run after `METADATA_TTL` seconds, so expiry is still noticed. What python-tuf keeps
  between runs on a real device (the versions it trusted last, so metadata cannot go back) each
  device keeps itself: `SimulatedDevice` refuses a verified set older than what it trusted.
- **The parsed pinned root**, whose operator keys check commands before any install.
- **Bundle bytes and their health check, keyed by SHA-256.** A device assembles its own chunks
  and checks the SHA-256 and length of its own bytes against the signed target; only then does
  it swap its copy for the one kept for that digest (equal digests, equal bytes), so a thousand
  devices hold one copy. The health check loads the model and scores the sample: for equal
  bytes the model and answers are equal, so it runs once per digest (its timing too: the
  ms-per-row bound is measured once, not per device).
- **The health sample as a table** to draw each device's telemetry rows from.

Not shared: each device's MQTT connection, subscriptions and retained metadata as its broker
delivered them, its command signature checks and sequence, its chunks, its hash check, its
A/B slots and its record of accepted versions.
"""

from __future__ import annotations

import io
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...exceptions import EdgewiseError, TrustError
from ...transport.messages import BundleRef

if TYPE_CHECKING:
    import pyarrow as pa
    from tuf.api.metadata import Root

    from ...agent.health import HealthReport
    from ...agent.tuf_inbox import MetadataSnapshot
    from ...bundle import Bundle
    from ...model import Model
    from ...trust import TrustClient

#: Seconds a verified set of metadata is reused before python-tuf checks it again (expiry).
METADATA_TTL = 60.0


@dataclass(frozen=True)
class VerifiedMetadata:
    client: TrustClient  # refreshed; answers lookups of the targets it verified
    root: Root  # the newest root the chain vouches for: its operator keys sign commands
    versions: dict[str, int]  # role -> version of the documents verified
    at: float


class _KeyedOnce:
    """A per-key lock, so that the first caller computes and the others wait for its result."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._locks: dict[Any, threading.Lock] = {}

    def lock(self, key: Any) -> threading.Lock:
        with self._lock:
            return self._locks.setdefault(key, threading.Lock())


class SharedTrust:
    def __init__(self, pinned_root: bytes, scratch: Path) -> None:
        from tuf.api.metadata import Metadata, Root

        self.pinned_root = pinned_root
        self.pinned = Metadata[Root].from_bytes(pinned_root).signed
        self.scratch = scratch
        self.verifications = 0  # python-tuf runs, for the summary
        self._verified: dict[bytes, VerifiedMetadata] = {}
        self._once = _KeyedOnce()

    def verify(self, snapshot: MetadataSnapshot) -> VerifiedMetadata:
        """The verdict of python-tuf on exactly these documents (a `TrustError` if refused)."""
        key = snapshot.key()
        with self._once.lock(key):
            found = self._verified.get(key)
            if found is not None and time.time() - found.at < METADATA_TTL:
                return found
            verified = self._run(snapshot)
            self._verified[key] = verified
            return verified

    def _run(self, snapshot: MetadataSnapshot) -> VerifiedMetadata:
        from ...agent.tuf_fetcher import BASE_URL, InboxFetcher
        from ...trust import TrustClient

        self.verifications += 1
        state = Path(tempfile.mkdtemp(prefix="trust-", dir=self.scratch))
        client = TrustClient(
            self.pinned_root,
            state,
            InboxFetcher(snapshot, 0.0),
            BASE_URL,
            source="the TUF metadata retained on the broker",
        )
        root = client.trusted_root()  # refreshes: the whole client workflow
        versions = {role: document.version for role, document in snapshot.documents.items()}
        return VerifiedMetadata(client, root, versions, time.time())


@dataclass(frozen=True)
class Checked:
    """One health check of one bundle's bytes: the model and report, or why it failed."""

    model: Model | None
    report: HealthReport | None
    error: EdgewiseError | None


class SharedBundles:
    def __init__(self, inputs: Path | None = None) -> None:
        #: A Parquet file of rows to score instead of each bundle's health sample.
        self.inputs = inputs
        self._bytes: dict[str, bytes] = {}
        self._checked: dict[str, Checked] = {}
        self._samples: dict[str, pa.Table] = {}
        self._lock = threading.Lock()
        self._once = _KeyedOnce()
        self.health_checks = 0

    def intern(self, data: bytes, bundle: BundleRef) -> bytes:
        """The one copy kept of `bundle`'s bytes. Call only with bytes whose SHA-256 and length
        the caller has checked against `bundle` itself."""
        if len(data) != bundle.length:
            raise TrustError(f"{bundle.name} version {bundle.version}: not its signed length")
        with self._lock:
            return self._bytes.setdefault(bundle.sha256, data)

    def health(
        self, bundle: BundleRef, verified: Bundle, check: Callable[[Bundle], tuple[Model, Any]]
    ) -> tuple[Model, HealthReport]:
        """`check` of the bundle with `bundle`'s digest, run once for all devices."""
        with self._once.lock(bundle.sha256):
            checked = self._checked.get(bundle.sha256)
            if checked is None:
                self.health_checks += 1
                try:
                    model, report = check(verified)
                    checked = Checked(model, report, None)
                except EdgewiseError as exc:
                    checked = Checked(None, None, exc)
                self._checked[bundle.sha256] = checked
        if checked.error is not None:
            raise checked.error
        assert checked.model is not None and checked.report is not None
        return checked.model, checked.report

    def model(self, bundle: BundleRef) -> Model | None:
        """The loaded model of a bundle that passed its health check here."""
        checked = self._checked.get(bundle.sha256)
        return None if checked is None else checked.model

    def sample(self, bundle: BundleRef, columns: list[str]) -> pa.Table:
        """The rows devices running `bundle` draw from: `columns` of the inputs file when there
        is one, else of the bundle's health sample (a few hundred rows: at scale their
        coarseness alone reads as drift against the training data's profile)."""
        import pyarrow.parquet as pq

        from ...bundle import Bundle

        with self._once.lock(("sample", bundle.sha256)):
            table = self._samples.get(bundle.sha256)
            if table is None:
                if self.inputs is not None:
                    table = pq.read_table(self.inputs, columns=columns)
                else:
                    parsed = Bundle.from_bytes(self._bytes[bundle.sha256], bundle.name)
                    table = pq.read_table(io.BytesIO(parsed.health)).select(columns)
                self._samples[bundle.sha256] = table
            return table
