-- The control plane's schema, one text for SQLite and PostgreSQL. `{serial}` and `{blob}` are
-- the only words that differ between them; store.py fills them in. Times are seconds since the
-- epoch (UTC), JSON documents are text, flags are 0/1 integers, so both read back the same.
-- Bump SCHEMA_VERSION in store.py with any change here.

CREATE TABLE IF NOT EXISTS schema_info (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS devices (
    id TEXT PRIMARY KEY,
    labels TEXT NOT NULL DEFAULT '{}',
    online INTEGER NOT NULL DEFAULT 0,
    last_seen DOUBLE PRECISION,
    bundle_name TEXT,
    bundle_version INTEGER,
    slots TEXT NOT NULL DEFAULT '{}',
    -- What the device's own state says (registry.py): its configured labels, under the
    -- operator's `labels`, which win; and the timestamp of the newest state applied.
    reported_labels TEXT NOT NULL DEFAULT '{}',
    state_at DOUBLE PRECISION
);

-- message_id is the id the device's outbox gave the message: a redelivery is ignored.
CREATE TABLE IF NOT EXISTS device_events (
    id {serial},
    device_id TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    message_id TEXT UNIQUE,
    at DOUBLE PRECISION NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS device_events_by_device ON device_events (device_id, at);

CREATE TABLE IF NOT EXISTS telemetry_windows (
    id {serial},
    device_id TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    message_id TEXT UNIQUE,
    bundle_name TEXT NOT NULL,
    bundle_version INTEGER NOT NULL,
    window_start DOUBLE PRECISION NOT NULL,
    window_end DOUBLE PRECISION NOT NULL,
    count INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    latency TEXT NOT NULL DEFAULT '{}',
    CHECK (window_end >= window_start)
);
CREATE INDEX IF NOT EXISTS telemetry_by_bundle
    ON telemetry_windows (bundle_name, bundle_version, window_start);

CREATE TABLE IF NOT EXISTS alerts (
    id {serial},
    rule TEXT NOT NULL,
    subject TEXT NOT NULL,
    dedup_key TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('firing', 'resolved')),
    detail TEXT NOT NULL DEFAULT '{}',
    fired_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    resolved_at DOUBLE PRECISION
);
-- At most one firing alert per dedup key; once resolved the same condition may fire again.
CREATE UNIQUE INDEX IF NOT EXISTS alerts_one_firing ON alerts (dedup_key) WHERE state = 'firing';

-- A staged rollout of one bundle to the devices a label selector picks (fleet/rollouts/).
-- `wave` is the wave in progress; `rollback` says which devices go back to their previous
-- bundle: 'wave' (the halted wave, --auto-rollback), 'all' (abort --rollback), or none.
CREATE TABLE IF NOT EXISTS rollouts (
    id {serial},
    bundle_name TEXT NOT NULL,
    bundle_version INTEGER NOT NULL,
    selector TEXT NOT NULL,
    policy TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL
        CHECK (state IN ('running', 'paused', 'halted', 'aborted', 'completed')),
    reason TEXT,
    wave INTEGER NOT NULL DEFAULT 0,
    rollback TEXT CHECK (rollback IN ('wave', 'all')),
    created_by TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);

CREATE TABLE IF NOT EXISTS rollout_waves (
    rollout_id INTEGER NOT NULL REFERENCES rollouts (id) ON DELETE CASCADE,
    wave INTEGER NOT NULL,
    size TEXT NOT NULL,
    state TEXT NOT NULL
        CHECK (state IN ('pending', 'running', 'succeeded', 'halted', 'aborted')),
    reason TEXT,
    started_at DOUBLE PRECISION,
    finished_at DOUBLE PRECISION,
    PRIMARY KEY (rollout_id, wave)
);

-- One row per device the rollout reached. `event_mark` is the last device_events id when the
-- latest command went out: only later events answer it (ids, unlike device clocks, do not
-- skew). `previous_*` is what the device ran before, the target of a rollback.
CREATE TABLE IF NOT EXISTS rollout_devices (
    rollout_id INTEGER NOT NULL REFERENCES rollouts (id) ON DELETE CASCADE,
    device_id TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    wave INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'installing', 'succeeded',
        'failed', 'skipped', 'rolling_back', 'rolled_back')),
    reason TEXT,
    updated_at DOUBLE PRECISION NOT NULL,
    sent_at DOUBLE PRECISION,
    seq BIGINT,
    event_mark BIGINT NOT NULL DEFAULT 0,
    previous_name TEXT,
    previous_version INTEGER,
    switched_at DOUBLE PRECISION,
    rollback_sent_at DOUBLE PRECISION,
    PRIMARY KEY (rollout_id, device_id),
    FOREIGN KEY (rollout_id, wave) REFERENCES rollout_waves (rollout_id, wave)
);
CREATE INDEX IF NOT EXISTS rollout_devices_by_state ON rollout_devices (rollout_id, state);

-- Append-only and hash-chained (audit.py): seq is the entry's place in the chain, so two writers
-- racing for the same place cannot both succeed.
CREATE TABLE IF NOT EXISTS audit_log (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    payload TEXT NOT NULL,
    signature TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);

-- Bearer tokens of the HTTP API, kept only as hashes (auth.py).
CREATE TABLE IF NOT EXISTS api_tokens (
    name TEXT PRIMARY KEY CHECK (name <> ''),
    role TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    token_hash TEXT NOT NULL UNIQUE,
    created_at DOUBLE PRECISION NOT NULL
);

-- Telemetry merged per bundle version and time bucket (collector.py): the counters summed, the
-- latency histogram's buckets summed, and the window profiles merged into one per role.
CREATE TABLE IF NOT EXISTS telemetry_aggregates (
    bundle_name TEXT NOT NULL,
    bundle_version INTEGER NOT NULL,
    bucket_start DOUBLE PRECISION NOT NULL,
    bucket_seconds DOUBLE PRECISION NOT NULL,
    windows INTEGER NOT NULL,
    requests DOUBLE PRECISION NOT NULL,
    rows DOUBLE PRECISION NOT NULL,
    errors DOUBLE PRECISION NOT NULL,
    latency TEXT NOT NULL DEFAULT '{}',
    corrupt_profiles INTEGER NOT NULL DEFAULT 0,
    input_profile {blob},
    output_profile {blob},
    PRIMARY KEY (bundle_name, bundle_version, bucket_start)
);
CREATE INDEX IF NOT EXISTS device_events_by_kind ON device_events (kind, at);

-- Each device's window profiles merged per bundle version and time bucket (collector.py): what
-- drift over a subset of devices (a rollout wave) is computed from. Raw window profiles are not
-- kept; telemetry_windows keeps each window's counters and message id (redelivery checks).
CREATE TABLE IF NOT EXISTS telemetry_device_profiles (
    device_id TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    bundle_name TEXT NOT NULL,
    bundle_version INTEGER NOT NULL,
    bucket_start DOUBLE PRECISION NOT NULL,
    bucket_seconds DOUBLE PRECISION NOT NULL,
    windows INTEGER NOT NULL,
    input_profile {blob},
    output_profile {blob},
    PRIMARY KEY (bundle_name, bundle_version, bucket_start, device_id)
);
