"""The edge agent: A/B installs with health checks and rollback, signed commands, telemetry
through a durable outbox, and a local inference endpoint (docs/agent.md).

Importing this package is cheap on purpose: a device runs it for months in tens of megabytes,
so nothing here pulls in pandas, polars, pyarrow, scikit-learn or onnxruntime.
"""
