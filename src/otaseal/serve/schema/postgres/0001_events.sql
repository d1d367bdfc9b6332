-- Device reports (POST statsUrl, and one "check" per update check) and the device facts
-- derived from them. The same tables as sqlite/0001_events.sql.

CREATE TABLE events (
    event_id         text   NOT NULL PRIMARY KEY,  -- idempotency key (otaseal.serve.events)
    app              text   NOT NULL,
    device_id        text   NOT NULL,
    action           text   NOT NULL,
    version_name     text   NOT NULL,  -- as the device sent it ("<version>:<file>" kept)
    release          text   NOT NULL,  -- the release it is counted under
    old_version_name text   NOT NULL DEFAULT '',
    platform         text   NOT NULL DEFAULT '',
    channel          text   NOT NULL DEFAULT '',
    version_build    text   NOT NULL DEFAULT '',
    timestamp_ms     bigint,           -- the device's clock, NULL when it sent none
    received_ms      bigint NOT NULL,  -- the server's clock (retention)
    at_ms            bigint NOT NULL   -- when it happened, for time windows
);

CREATE INDEX events_window ON events (at_ms, app);
CREATE INDEX events_received ON events (received_ms);

-- Versions a device reported update_fail for: never offered to it again.
CREATE TABLE device_failures (
    app         text   NOT NULL,
    device_id   text   NOT NULL,
    version     text   NOT NULL,
    reported_ms bigint NOT NULL,
    PRIMARY KEY (app, device_id, version)
);

-- A device's self-assigned channel (channelUrl POST).
CREATE TABLE device_channels (
    app        text   NOT NULL,
    device_id  text   NOT NULL,
    channel    text   NOT NULL,
    updated_ms bigint NOT NULL,
    PRIMARY KEY (app, device_id)
);
