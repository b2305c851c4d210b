"""The edge agent: A/B installs with health checks and rollback, signed commands, telemetry
through a durable outbox, and a local inference endpoint (docs/agent.md).

Importing this package is cheap on purpose: a device runs it for months in tens of megabytes,
so nothing here pulls in pandas, polars, pyarrow, scikit-learn or onnxruntime.
"""

#: The environment the agent runs with on a device (`edgewise agent run` sets each variable the
#: environment does not): the core's allocator (mimalloc) then commits its arena as it is used
#: rather than up front, and OpenBLAS starts no idle threads. Together they keep an idle agent
#: about 7 MB smaller (BENCHMARKS.md); neither changes a result.
DEVICE_ENVIRONMENT = {"MIMALLOC_ARENA_EAGER_COMMIT": "0", "OPENBLAS_NUM_THREADS": "1"}
