"""The exceptions edgewise raises. Each subclasses `EdgewiseError` and the matching builtin."""

from __future__ import annotations


class EdgewiseError(Exception):
    """Base class of every error edgewise raises on purpose."""


class SchemaError(EdgewiseError, ValueError):
    """The data does not have the columns or types the model needs."""


class DataFileError(EdgewiseError, OSError):
    """A data file cannot be read or written: missing, truncated, corrupt or not Parquet."""


class DataError(EdgewiseError, ValueError):
    """Rows the model cannot score (nulls, unknown categories) in strict mode."""


class BundleError(EdgewiseError, ValueError):
    """A bundle is malformed, of an unknown format version, or fails its checks."""


class ModelError(EdgewiseError, ValueError):
    """A pipeline cannot be loaded, converted, or is not faithful enough after conversion."""


class UnsupportedModelError(ModelError):
    """The native engine cannot run this graph (an operator or type outside its subset)."""


class ProfileFormatError(EdgewiseError, ValueError):
    """Profile bytes are truncated, corrupt, or of a format version this edgewise cannot read."""


class ScoreRunError(EdgewiseError, RuntimeError):
    """An output directory holds a different run, so it cannot be resumed or reused."""


class TrustError(EdgewiseError, ValueError):
    """Keys, signed metadata or a bundle fail a trust check: unsigned, expired, rolled back,
    tampered, or not what the client expected."""


class MessageError(EdgewiseError, ValueError):
    """A message from the network is oversized, malformed, of an unknown protocol version, or
    fails its schema; the text names the topic and what is wrong."""


class TransferError(EdgewiseError, ValueError):
    """A bundle transfer failed: it timed out or was cancelled, or the assembled file does not
    have the length and SHA-256 that the request expected."""


class BrokerConfigError(EdgewiseError, ValueError):
    """The embedded broker's settings are unusable: password file, ACL, TLS files, address."""


class BrokerStartError(EdgewiseError, OSError):
    """The embedded broker could not start listening (port in use, address not available)."""


class OutboxFullError(EdgewiseError, RuntimeError):
    """The outbox holds as many messages as it may and none of them may be dropped (events)."""


class SelectorError(EdgewiseError, ValueError):
    """A device label selector cannot be parsed (`site=berlin,hw!=pi3`, `site in (a,b)`)."""


class StoreError(EdgewiseError, RuntimeError):
    """The control-plane store cannot be opened, has an unknown schema version, or a write fails."""


class AuditError(EdgewiseError, ValueError):
    """The audit log's hash chain or an entry's operator signature does not check out."""


class FleetApiError(EdgewiseError, RuntimeError):
    """The control plane's HTTP API refused a request or cannot be reached."""


class AgentError(EdgewiseError, RuntimeError):
    """The edge agent cannot do what it was asked: its configuration, state directory or a
    step of an install is at fault; the text says which."""


class InstallError(AgentError):
    """A bundle was not installed: it failed verification or its health check, or the slot
    could not be written. The previous model keeps serving."""


class CommandError(EdgewiseError, ValueError):
    """A fleet command was refused: unsigned, not from an operator key, for another device,
    expired, replayed or malformed."""


class ConfigError(EdgewiseError, ValueError):
    """A configuration file or environment override is missing, malformed or contradictory."""


class RolloutError(EdgewiseError, ValueError):
    """A rollout cannot be started or changed: a policy option is malformed (the text names the
    option), the bundle is unknown, or the rollout's state does not allow the action."""
