// The message trace: every PoolAssignment with its decision trace in PostgreSQL, in a schema of
// the deployment's namespace, partitioned by day of event time; versioned migrations; batched,
// idempotent writes; day partitions dropped after the retention period; and the queries that
// `mailpools trace` and the HTTP API answer.
import { readdirSync, readFileSync } from 'node:fs';
import { MailpoolsError } from '@mailpools/core';
import type { PoolAssignment } from '@mailpools/schemas';
import pg from 'pg';

const DAY = 86_400_000;
const MIGRATIONS = new URL('../migrations/', import.meta.url);

/** The PostgreSQL schema of a namespace: `mailpools` for none, `mailpools_<namespace>` otherwise. */
export function schemaOf(namespace: string): string {
  const suffix = namespace
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '');
  return suffix ? `mailpools_${suffix}` : 'mailpools';
}

function databaseError(error: unknown, doing: string): MailpoolsError {
  const message = (error as Error).message;
  return new MailpoolsError(
    'MAILPOOLS_ERR_DATABASE_UNAVAILABLE',
    `PostgreSQL failed while ${doing}: ${message}.`,
    {
      hint: 'Check DATABASE_URL and that PostgreSQL is up; the writer pauses and retries meanwhile.',
      cause: error,
    },
  );
}

export interface TraceStore {
  readonly schema: string;
  /** Applies the migrations not applied yet (one process at a time, under an advisory lock). */
  migrate(): Promise<number[]>;
  /** Stores a batch; returns how many rows were new (a replay adds none). */
  write(assignments: readonly PoolAssignment[]): Promise<number>;
  /** Drops the day partitions wholly older than `retentionDays` before `now` (event time). */
  expire(now: number, retentionDays: number): Promise<string[]>;
  find(query: TraceQuery): Promise<TraceRow[]>;
  close(): Promise<void>;
}

/** Creates the database named in the URL when it does not exist yet (connecting to `postgres`). */
async function ensureDatabase(url: string): Promise<void> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.slice(1)) || 'postgres';
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (exists.rowCount === 0)
      await client
        .query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`)
        .catch((error: { code?: string }) => {
          // Created meanwhile by another replica: PostgreSQL says so as 42P04, or as a unique
          // violation on pg_database when both CREATE DATABASE statements ran at once.
          if (error.code !== '42P04' && error.code !== '23505') throw error;
        });
  } finally {
    await client.end();
  }
}

export async function openTraceStore(url: string, namespace: string): Promise<TraceStore> {
  const schema = schemaOf(namespace);
  try {
    await ensureDatabase(url);
  } catch (error) {
    throw databaseError(error, 'creating the database');
  }
  const pool = new pg.Pool({ connectionString: url, max: 4, options: `-c search_path="${schema}"` });
  pool.on('error', () => undefined); // an idle client's error surfaces on the next query
  const partitions = new Set<string>();

  async function ensurePartitions(client: pg.PoolClient, days: Iterable<number>): Promise<void> {
    for (const day of days) {
      const name = `assignments_${new Date(day).toISOString().slice(0, 10).replace(/-/g, '')}`;
      if (partitions.has(name)) continue;
      // Replicas may create the same day at once: one at a time.
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`${schema}.${name}`]);
      await client.query(
        `CREATE TABLE IF NOT EXISTS "${name}" PARTITION OF assignments FOR VALUES FROM ('${new Date(day).toISOString()}') TO ('${new Date(day + DAY).toISOString()}')`,
      );
      partitions.add(name);
    }
  }

  return {
    schema,
    async migrate() {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`${schema}.migrations`]);
        await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
        await client.query(`SET LOCAL search_path TO "${schema}"`);
        await client.query(
          'CREATE TABLE IF NOT EXISTS trace_migrations (version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())',
        );
        const done = new Set(
          (await client.query('SELECT version FROM trace_migrations')).rows.map((r) => r.version as number),
        );
        const applied: number[] = [];
        for (const file of readdirSync(MIGRATIONS)
          .filter((f) => /^\d+_.*\.sql$/.test(f))
          .sort()) {
          const version = Number(file.split('_')[0]);
          if (done.has(version)) continue;
          await client.query(readFileSync(new URL(file, MIGRATIONS), 'utf8'));
          await client.query('INSERT INTO trace_migrations (version, name) VALUES ($1, $2)', [version, file]);
          applied.push(version);
        }
        await client.query('COMMIT');
        return applied;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw databaseError(error, 'migrating');
      } finally {
        client.release();
      }
    },

    async write(assignments) {
      if (assignments.length === 0) return 0;
      const client = await pool.connect().catch((error: unknown) => {
        throw databaseError(error, 'connecting');
      });
      try {
        await client.query('BEGIN');
        await ensurePartitions(client, new Set(assignments.map((a) => Math.floor(a.eventTime / DAY) * DAY)));
        const column = <T>(pick: (a: PoolAssignment) => T) => assignments.map(pick);
        const result = await client.query(
          `INSERT INTO assignments (message_id, tenant_id, event_time, decided_at, pool, pool_name, source_ip, submitter,
             sender, from_header, recipients, reasons, trace, policy_version, smtp_reply, not_before, rewritten_sender, ndr)
           SELECT m, t, to_timestamp(e / 1000.0), to_timestamp(d / 1000.0), p, pn, ip, sub, snd, frm,
             ARRAY(SELECT jsonb_array_elements_text(r)), ARRAY(SELECT jsonb_array_elements_text(rs)), tr, pv, smtp,
             to_timestamp(nb / 1000.0), rw, ndr
           FROM unnest($1::text[], $2::text[], $3::float8[], $4::float8[], $5::text[], $6::text[], $7::text[], $8::text[],
             $9::text[], $10::text[], $11::jsonb[], $12::jsonb[], $13::jsonb[], $14::text[], $15::text[], $16::float8[],
             $17::text[], $18::jsonb[])
             AS x(m, t, e, d, p, pn, ip, sub, snd, frm, r, rs, tr, pv, smtp, nb, rw, ndr)
           ON CONFLICT DO NOTHING`,
          [
            column((a) => a.messageId),
            column((a) => a.tenantId),
            column((a) => a.eventTime),
            column((a) => a.decidedAt),
            column((a) => a.pool),
            column((a) => a.poolName),
            column((a) => a.sourceIp),
            column((a) => a.submitter),
            column((a) => a.sender.toLowerCase()),
            column((a) => a.fromHeader),
            column((a) => JSON.stringify(a.recipients.map((r) => r.toLowerCase()))),
            column((a) => JSON.stringify(a.reasons)),
            column((a) => JSON.stringify(a.trace)),
            column((a) => a.policyVersion),
            column((a) => a.smtpReply),
            column((a) => a.notBefore),
            column((a) => a.rewrittenSender),
            column((a) => (a.ndr ? JSON.stringify(a.ndr) : null)),
          ],
        );
        await client.query('COMMIT');
        return result.rowCount ?? 0;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        partitions.clear(); // a rolled-back CREATE TABLE did not happen
        throw databaseError(error, 'writing assignments');
      } finally {
        client.release();
      }
    },

    async expire(now, retentionDays) {
      const cutoff = new Date(Math.floor(now / DAY) * DAY - retentionDays * DAY)
        .toISOString()
        .slice(0, 10)
        .replace(/-/g, '');
      const result = await pool
        .query(
          `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
           JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace n ON n.oid = p.relnamespace
           WHERE p.relname = 'assignments' AND n.nspname = $1`,
          [schema],
        )
        .catch((error: unknown) => {
          throw databaseError(error, 'listing partitions');
        });
      const dropped: string[] = [];
      for (const { name } of result.rows as { name: string }[]) {
        if (name.slice('assignments_'.length) >= cutoff) continue;
        await pool.query(`DROP TABLE IF EXISTS "${schema}"."${name}"`);
        partitions.delete(name);
        dropped.push(name);
      }
      return dropped;
    },

    find: (query) => findAssignments(pool, query),
    close: () => pool.end(),
  };
}

export interface TraceQuery {
  readonly messageId?: string | undefined;
  readonly sender?: string | undefined;
  readonly recipient?: string | undefined;
  readonly tenantId?: string | undefined;
  readonly pool?: string | undefined;
  /** Epoch ms; default: 10 days before `until`. */
  readonly since?: number | undefined;
  /** Epoch ms; default: now. */
  readonly until?: number | undefined;
  readonly limit?: number | undefined;
}

export interface TraceRow {
  readonly messageId: string;
  readonly tenantId: string;
  readonly eventTime: string;
  readonly decidedAt: string;
  readonly pool: string;
  readonly poolName: string;
  readonly sourceIp: string | null;
  readonly submitter: string;
  readonly sender: string;
  readonly fromHeader: string;
  readonly recipients: string[];
  readonly reasons: string[];
  readonly trace: { rule: string; matched: boolean; inputs: Record<string, string> }[];
  readonly policyVersion: string;
  readonly smtpReply: string | null;
  readonly notBefore: string | null;
  readonly rewrittenSender: string | null;
}

const POOLS = ['NORMAL', 'HIGH_RISK', 'RELAY', 'BLOCKED'];

function badQuery(message: string): MailpoolsError {
  return new MailpoolsError('MAILPOOLS_ERR_TRACE_QUERY', message, {
    hint: 'Give a message id, or at least one of sender, recipient, tenant, pool; times as ISO-8601; limit from 1 to 1000.',
  });
}

/** Validates a query; throws MAILPOOLS_ERR_TRACE_QUERY with what is wrong. */
export function checkQuery(
  query: TraceQuery,
): Required<Pick<TraceQuery, 'since' | 'until' | 'limit'>> & TraceQuery {
  // No filter at all is a query too: the latest assignments, newest first.
  const { messageId, sender, recipient, tenantId, pool } = query;
  for (const [name, value] of Object.entries({ messageId, sender, recipient, tenantId }))
    if (value !== undefined && (value.length > 998 || [...value].some((c) => c.charCodeAt(0) < 0x20)))
      throw badQuery(`${name} is not a plausible value (control characters, or over 998 characters).`);
  if (pool !== undefined && !POOLS.includes(pool))
    throw badQuery(`pool must be one of ${POOLS.join(', ')}, got "${pool}".`);
  const until = query.until ?? Date.now();
  const since = query.since ?? until - 10 * DAY;
  if (!Number.isFinite(until) || !Number.isFinite(since) || since > until)
    throw badQuery('since must be a time before until.');
  const limit = query.limit ?? 100;
  if (!Number.isInteger(limit) || limit < 1 || limit > 1_000)
    throw badQuery(`limit must be from 1 to 1000, got ${limit}.`);
  return { ...query, since, until, limit };
}

async function findAssignments(pool: pg.Pool, query: TraceQuery): Promise<TraceRow[]> {
  const q = checkQuery(query);
  const where: string[] = [
    'event_time >= to_timestamp($1 / 1000.0)',
    'event_time <= to_timestamp($2 / 1000.0)',
  ];
  const values: unknown[] = [q.since, q.until];
  const add = (clause: string, value: unknown) => {
    values.push(value);
    where.push(clause.replace('?', `$${values.length}`));
  };
  if (q.messageId) add('message_id = ?', q.messageId);
  if (q.sender) add('sender = ?', q.sender.toLowerCase());
  if (q.recipient) add('recipients @> ARRAY[?]::text[]', q.recipient.toLowerCase());
  if (q.tenantId) add('tenant_id = ?', q.tenantId);
  if (q.pool) add('pool = ?', q.pool);
  values.push(q.limit);
  const result = await pool
    .query(
      `SELECT message_id AS "messageId", tenant_id AS "tenantId", event_time AS "eventTime", decided_at AS "decidedAt",
         pool, pool_name AS "poolName", source_ip AS "sourceIp", submitter, sender, from_header AS "fromHeader",
         recipients, reasons, trace, policy_version AS "policyVersion", smtp_reply AS "smtpReply",
         not_before AS "notBefore", rewritten_sender AS "rewrittenSender"
       FROM assignments WHERE ${where.join(' AND ')} ORDER BY event_time DESC LIMIT $${values.length}`,
      values,
    )
    .catch((error: unknown) => {
      throw databaseError(error, 'querying the trace');
    });
  return result.rows.map((row) => ({
    ...row,
    eventTime: (row.eventTime as Date).toISOString(),
    decidedAt: (row.decidedAt as Date).toISOString(),
    notBefore: row.notBefore ? (row.notBefore as Date).toISOString() : null,
  })) as TraceRow[];
}
