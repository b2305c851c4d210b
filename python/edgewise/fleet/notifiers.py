"""Where alerts go when they fire and resolve: an MQTT topic and an HTTP webhook.

Both send the same JSON document (`alert_document`). Neither may hold up the evaluation for
long or stop it: the webhook has a timeout and a bounded number of retries, and a failure is
logged, not raised.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any

from ..transport.client import Connection
from ..transport.topics import alert_topic
from .alert_rules import AlertRules
from .alerts import Notifier
from .store import Alert

log = logging.getLogger(__name__)


def alert_document(alert: Alert) -> dict[str, Any]:
    """The alert as JSON: times as ISO 8601 (UTC)."""

    def when(at: float | None) -> str | None:
        return None if at is None else datetime.fromtimestamp(at, UTC).isoformat()

    return {
        "id": alert.id,
        "rule": alert.rule,
        "subject": alert.subject,
        "state": alert.state,
        "dedup_key": alert.dedup_key,
        "detail": alert.detail,
        "fired_at": when(alert.fired_at),
        "resolved_at": when(alert.resolved_at),
    }


class MqttNotifier:
    """Publishes each alert to ``edgewise/v1/alerts/{rule}`` at QoS 1 (not retained: a firing
    alert's current state is on the API). The control user must be allowed to write there."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def notify(self, alert: Alert) -> None:
        payload = json.dumps(alert_document(alert), sort_keys=True).encode()
        self.connection.publish(alert_topic(alert.rule), payload)


class WebhookNotifier:
    """POSTs each alert as JSON to `url`: `timeout` seconds an attempt, up to `attempts`
    attempts, waiting `backoff` seconds, then twice that, between them. A 4xx answer is not
    retried (the receiver refused the document); 5xx answers and network errors are."""

    def __init__(
        self, url: str, *, timeout: float = 5.0, attempts: int = 3, backoff: float = 0.5
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook {url!r}: must be an http:// or https:// URL")
        self.url = url
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.failures = 0  # alerts that never got through

    def notify(self, alert: Alert) -> None:
        body = json.dumps(alert_document(alert), sort_keys=True).encode()
        request = urllib.request.Request(
            self.url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        for attempt in range(self.attempts):
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    response.read()
                return
            except urllib.error.HTTPError as exc:
                problem = f"HTTP {exc.code}"
                exc.close()
                if exc.code < 500:
                    break
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                problem = str(getattr(exc, "reason", exc))
            if attempt + 1 < self.attempts:
                time.sleep(self.backoff * 2**attempt)
        self.failures += 1
        log.warning("webhook %s: alert %s not delivered: %s", self.url, alert.dedup_key, problem)

    def __repr__(self) -> str:
        return f"WebhookNotifier({self.url!r})"


def notifiers_for(rules: AlertRules, connection: Connection) -> list[Notifier]:
    """Where the service sends alerts: the MQTT topic, and the webhook when one is set."""
    found: list[Notifier] = [MqttNotifier(connection)]
    if rules.webhook is not None:
        webhook = rules.webhook
        found.append(
            WebhookNotifier(webhook.url, timeout=webhook.timeout, attempts=webhook.attempts)
        )
    return found
