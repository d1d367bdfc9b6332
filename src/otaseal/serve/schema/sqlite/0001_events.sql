-- Device reports (POST statsUrl, and one "check" per update check) and the device facts
-- derived from them. The same tables as postgres/0001_events.sql.

CREATE TABLE events (
    event_id         TEXT    NOT NULL PRIMARY KEY,  -- idempotency key (otaseal.serve.events)
    app              TEXT    NOT NULL,
    device_id        TEXT    NOT NULL,
    action           TEXT    NOT NULL,
    version_name     TEXT    NOT NULL,  -- as the device sent it ("<version>:<file>" kept)
    release          TEXT    NOT NULL,  -- the release it is counted under
    old_version_name TEXT    NOT NULL DEFAULT '',
    platform         TEXT    NOT NULL DEFAULT '',
    channel          TEXT    NOT NULL DEFAULT '',
    version_build    TEXT    NOT NULL DEFAULT '',
    timestamp_ms     INTEGER,           -- the device's clock, NULL when it sent none
    received_ms      INTEGER NOT NULL,  -- the server's clock (retention)
    at_ms            INTEGER NOT NULL   -- when it happened, for time windows
);

CREATE INDEX events_window ON events (at_ms, app);
CREATE INDEX events_received ON events (received_ms);

-- Versions a device reported update_fail for: never offered to it again.
CREATE TABLE device_failures (
    app         TEXT    NOT NULL,
    device_id   TEXT    NOT NULL,
    version     TEXT    NOT NULL,
    reported_ms INTEGER NOT NULL,
    PRIMARY KEY (app, device_id, version)
) WITHOUT ROWID;

-- A device's self-assigned channel (channelUrl POST).
CREATE TABLE device_channels (
    app        TEXT    NOT NULL,
    device_id  TEXT    NOT NULL,
    channel    TEXT    NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (app, device_id)
) WITHOUT ROWID;
