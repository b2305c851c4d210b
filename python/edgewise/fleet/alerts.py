"""Alert rules over the fleet's telemetry, devices and events, and their evaluation.

Each rule looks at a window of recent data and names the subjects whose condition holds:

- ``drift``: a bundle version's merged inputs over the window against its reference profile;
  fires when the worst PSI of a column passes `psi`, or (with `verdict`) when the drift
  report's own verdict says the data drifted.
- ``error_rate``: a bundle version's failed requests over the window above `max_percent`.
- ``latency_p99``: a bundle version's p99 latency (from the merged histogram) above `max_ms`.
- ``devices_offline``: devices offline for longer than `after`, more than `max_count` of them
  or more than `max_fraction` of the fleet.
- ``failed_installs``: more than `max_count` install.failed events of a bundle version within
  the window.

`AlertEvaluator.evaluate` fires an alert for each (rule, subject) whose condition holds, at most
one firing alert per pair (the store deduplicates by key), and resolves a firing alert when its
condition no longer holds. Notifiers hear of an alert when it fires and when it resolves, not
on every evaluation.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..exceptions import EdgewiseError
from .alert_rules import RULES, AlertRules
from .collector import Collector, latency_quantile
from .references import worst_metrics
from .store import Alert, Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Finding:
    """A condition that holds now: what the alert is about, and the numbers behind it."""

    subject: str
    detail: dict[str, Any]


class Notifier(Protocol):
    def notify(self, alert: Alert) -> None:
        """Tell someone that `alert` fired or resolved (`alert.state` says which)."""


Check = Callable[[float], list[Finding]]


class AlertEvaluator:
    """Evaluates the rules against the store and the collector; see the module's docstring."""

    def __init__(
        self,
        store: Store,
        rules: AlertRules,
        collector: Collector,
        notifiers: Sequence[Notifier] = (),
    ) -> None:
        self.store = store
        self.rules = rules
        self.collector = collector
        self.notifiers = list(notifiers)

    def checks(self) -> dict[str, Check]:
        """The enabled rules by name."""
        checks: tuple[Check, ...] = (
            self._drift,
            self._error_rate,
            self._latency,
            self._offline,
            self._failed_installs,
        )
        every = dict(zip(RULES, checks, strict=True))
        return {name: check for name, check in every.items() if getattr(self.rules, name).enabled}

    def evaluate(self, now: float) -> list[Alert]:
        """Fire and resolve alerts as of `now`; the alerts that changed state (fired or
        resolved) in this evaluation. A rule that fails is logged and its alerts left as they
        are; the others go on. The alerts of a rule that is turned off are resolved."""
        firing = self.store.alerts("firing")
        changed = []
        checks = self.checks()
        for rule in RULES:  # a rule turned off resolves what it had fired
            check = checks.get(rule)
            try:
                findings = [] if check is None else check(now)
            except (EdgewiseError, OSError):
                log.exception("alert rule %s could not be evaluated", rule)
                continue
            holding = set()
            for finding in findings:
                key = dedup_key(rule, finding.subject)
                holding.add(key)
                alert, new = self.store.fire_alert(rule, finding.subject, key, finding.detail, now)
                if new:
                    changed.append(alert)
            for alert in firing:
                if alert.rule == rule and alert.dedup_key not in holding:
                    resolved = self.store.resolve_alert(alert.dedup_key, now)
                    if resolved is not None:
                        changed.append(resolved)
        for alert in changed:
            self._notify(alert)
        return changed

    def _notify(self, alert: Alert) -> None:
        for notifier in self.notifiers:
            try:
                notifier.notify(alert)
            except Exception:  # a notifier's failure must not stop the others or evaluation
                log.exception("notifier %r failed on alert %s", notifier, alert.dedup_key)

    # -- the rules ---------------------------------------------------------------------------

    def _drift(self, now: float) -> list[Finding]:
        rule = self.rules.drift
        findings = []
        for bundle in self.store.telemetry_bundles(now - rule.window):
            report = self.collector.drift(bundle, since=now - rule.window)
            if report is None:
                continue
            psi = worst_metrics(report).get("psi", 0.0)
            # A column's own verdict (an effect size over its threshold) is enough: one key
            # input that moved matters even when most columns did not.
            if psi > rule.psi or (rule.verdict and report.drifted_columns):
                findings.append(
                    Finding(
                        _bundle(bundle),
                        {
                            "psi": psi,
                            "threshold": rule.psi,
                            "drifted": report.drifted,
                            "drifted_columns": [c.name for c in report.drifted_columns],
                            "rows": report.current["rows"],
                            "window_seconds": rule.window,
                        },
                    )
                )
        return findings

    def _sums(self, window: float, now: float) -> list[tuple[tuple[str, int], dict[str, Any]]]:
        """Each bundle version's requests, errors and latency histogram over the window."""
        out = []
        for bundle in self.store.telemetry_bundles(now - window):
            totals: dict[str, Any] = {"requests": 0.0, "errors": 0.0, "latency": Counter()}
            for a in self.store.aggregates(bundle, since=now - window):
                totals["requests"] += a.requests
                totals["errors"] += a.errors
                totals["latency"].update(a.latency)
            out.append((bundle, totals))
        return out

    def _error_rate(self, now: float) -> list[Finding]:
        rule = self.rules.error_rate
        findings = []
        for bundle, totals in self._sums(rule.window, now):
            requests = totals["requests"]
            if requests < max(rule.min_requests, 1):
                continue
            percent = 100.0 * totals["errors"] / requests
            if percent > rule.max_percent:
                detail = {"error_percent": round(percent, 3), "threshold": rule.max_percent}
                findings.append(Finding(_bundle(bundle), {**detail, "requests": requests}))
        return findings

    def _latency(self, now: float) -> list[Finding]:
        rule = self.rules.latency_p99
        findings = []
        for bundle, totals in self._sums(rule.window, now):
            if totals["requests"] < max(rule.min_requests, 1):
                continue
            p99 = latency_quantile(dict(totals["latency"]), 0.99)
            if p99 is not None and p99 > rule.max_ms:
                detail = {"p99_ms": p99, "threshold": rule.max_ms, "requests": totals["requests"]}
                findings.append(Finding(_bundle(bundle), detail))
        return findings

    def _offline(self, now: float) -> list[Finding]:
        rule = self.rules.devices_offline
        devices = self.store.devices()
        gone = sorted(
            d.id
            for d in devices
            if not d.online and (d.last_seen is None or d.last_seen < now - rule.after)
        )
        if not devices or not gone:
            return []
        fraction = len(gone) / len(devices)
        over_count = rule.max_count is not None and len(gone) > rule.max_count
        over_fraction = rule.max_fraction is not None and fraction > rule.max_fraction
        if not (over_count or over_fraction):
            return []
        detail = {
            "offline": len(gone),
            "devices": len(devices),
            "fraction": round(fraction, 4),
            "offline_for_seconds": rule.after,
            "examples": gone[:20],
        }
        return [Finding("fleet", detail)]

    def _failed_installs(self, now: float) -> list[Finding]:
        rule = self.rules.failed_installs
        failures: dict[str, list[str]] = {}
        for event in self.store.events_since("install.failed", now - rule.window):
            name, version = event.detail.get("bundle"), event.detail.get("version")
            subject = f"{name}:{version}" if name is not None else "unknown bundle"
            failures.setdefault(subject, []).append(event.device_id)
        return [
            Finding(
                subject,
                {
                    "failed": len(devices),
                    "threshold": rule.max_count,
                    "window_seconds": rule.window,
                    "devices": sorted(set(devices))[:20],
                },
            )
            for subject, devices in sorted(failures.items())
            if len(devices) > rule.max_count
        ]


def dedup_key(rule: str, subject: str) -> str:
    return f"{rule}:{subject}"


def _bundle(bundle: tuple[str, int]) -> str:
    return f"{bundle[0]}:{bundle[1]}"
