-- The audit trail: who signed in, who was refused, what was issued, who changed what.
-- Written in batches off the request path; kept for events.retention_days.
CREATE TABLE events (
    id BIGSERIAL PRIMARY KEY,
    time BIGINT NOT NULL,
    type TEXT NOT NULL,
    client_id TEXT,
    user_id TEXT,
    address TEXT,
    request_id TEXT,
    detail TEXT NOT NULL
);
CREATE INDEX events_time ON events (time);
