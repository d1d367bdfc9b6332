-- Each worker keeps in memory which devices have facts and reads back the rows changed since
-- its last read, about once a second (otaseal.serve.known): these make that read an index range.

CREATE INDEX device_failures_reported ON device_failures (reported_ms);
CREATE INDEX device_channels_updated ON device_channels (updated_ms);
