-- Every pool assignment with its decision trace, partitioned by the day of its event time so
-- that retention drops whole days. The primary key includes the partition key, as PostgreSQL
-- requires; a replayed assignment has the same message id and event time and is not stored twice.
CREATE TABLE assignments (
  message_id text NOT NULL,
  tenant_id text NOT NULL,
  event_time timestamptz NOT NULL,
  decided_at timestamptz NOT NULL,
  pool text NOT NULL,
  pool_name text NOT NULL,
  source_ip text,
  submitter text NOT NULL,
  sender text NOT NULL,
  from_header text NOT NULL,
  recipients text[] NOT NULL,
  reasons text[] NOT NULL,
  trace jsonb NOT NULL,
  policy_version text NOT NULL,
  smtp_reply text,
  not_before timestamptz,
  rewritten_sender text,
  ndr jsonb,
  PRIMARY KEY (message_id, event_time)
) PARTITION BY RANGE (event_time);

CREATE INDEX assignments_tenant ON assignments (tenant_id, event_time);
CREATE INDEX assignments_sender ON assignments (sender, event_time);
CREATE INDEX assignments_pool ON assignments (pool, event_time);
CREATE INDEX assignments_recipients ON assignments USING gin (recipients);
