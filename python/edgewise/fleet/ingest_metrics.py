"""Prometheus metrics of ingest and the collector, read at each scrape: register
`IngestMetrics(ingest)` on the registry that /metrics serves."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector as PrometheusCollector

from .ingest import Ingest

_COUNTERS = {
    "received": "Device messages taken off the broker",
    "stored": "States applied, events and telemetry windows newly stored",
    "duplicates": "Events and telemetry windows that were redeliveries",
    "rejected": "Device messages dropped: they failed their checks",
    "batches": "Batches stored",
    "store_errors": "Store transactions that failed and were retried",
    "lost": "Messages given up at shutdown while the store was unavailable",
}


class IngestMetrics(PrometheusCollector):
    def __init__(self, ingest: Ingest) -> None:
        self._ingest = ingest

    def collect(self) -> Iterator[Metric]:
        counts = self._ingest.counts()
        for name, help_text in _COUNTERS.items():
            yield CounterMetricFamily(
                f"edgewise_ingest_{name}", help_text, value=getattr(counts, name)
            )
        yield GaugeMetricFamily(
            "edgewise_ingest_queue_depth",
            "Messages waiting for the ingest worker",
            value=counts.queue_depth,
        )
        telemetry = self._ingest.telemetry
        if telemetry is not None:
            yield GaugeMetricFamily(
                "edgewise_telemetry_session_connected",
                "1 while the telemetry session is connected and subscribed",
                value=int(telemetry.connected),
            )
            yield CounterMetricFamily(
                "edgewise_telemetry_session_connections",
                "Times the telemetry session connected (reconnects: this minus one)",
                value=telemetry.connections,
            )
        collector = self._ingest.collector
        yield CounterMetricFamily(
            "edgewise_collector_corrupt_profiles",
            "Telemetry profiles that could not be read or merged, skipped",
            value=collector.corrupt_profiles,
        )
        yield CounterMetricFamily(
            "edgewise_collector_unattributed_windows",
            "Telemetry windows of devices serving no bundle",
            value=collector.unattributed,
        )
