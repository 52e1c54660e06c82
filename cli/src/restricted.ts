// `mailpools restricted`: the senders limit-counter restricted, and their release by an admin.
// Redis holds the restrictions (what limit-counter checks); a release is published first, to
// the compacted table and to the audit topic, and only then lifted, so no release goes unaudited.
import { parseArgs } from 'node:util';
import { loadRuntimeConfig, MailpoolsError, type RuntimeConfig, wireStage, withRedis } from '@mailpools/core';
import { createLimitStore, limitsPrefix, type RestrictionEntry } from '@mailpools/limit-counter/store';
import type { SenderRestriction } from '@mailpools/schemas';
import { createEventProducer } from '@mailpools/stream';

export const RESTRICTED_USAGE = `usage: mailpools restricted list [--tenant <id>] [--all] [--json]
       mailpools restricted release <sender> --by <admin> [--tenant <id>]
  list      senders restricted now (--all: with those whose day is over but no mail has come since)
  release   lifts a restriction; published to mail.sender.restrictions and the audit topic with --by`;

function usageError(message: string): MailpoolsError {
  return new MailpoolsError('MAILPOOLS_ERR_USAGE', message, { hint: RESTRICTED_USAGE });
}

const iso = (ms: number | null) => (ms === null ? 'until released' : new Date(ms).toISOString());

function withStore<T>(
  config: RuntimeConfig,
  work: (store: ReturnType<typeof createLimitStore>) => Promise<T>,
) {
  return withRedis(config.redisUrl, (redis) =>
    work(
      createLimitStore(redis, {
        prefix: limitsPrefix(config.namespace),
        graceMs: 0,
        dedupTtlSeconds: 3600,
        maxDeferMinutes: 1,
      }),
    ),
  );
}

export async function runRestricted(argv: string[], now: () => number = Date.now): Promise<number> {
  const [action, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      tenant: { type: 'string' },
      by: { type: 'string' },
      all: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  const config = loadRuntimeConfig();
  if (action === 'list') {
    const entries = await withStore(config, (store) => store.restrictions());
    const shown = entries.filter(
      (e) =>
        (!values.tenant || e.tenantId === values.tenant) &&
        (values.all || e.until === null || e.until > now()),
    );
    if (values.json) {
      for (const entry of shown) console.log(JSON.stringify(entry));
      return 0;
    }
    if (shown.length === 0) {
      console.log('no restricted senders');
      return 0;
    }
    console.log(['tenant', 'sender', 'action', 'limit', 'count/threshold', 'since', 'until'].join('\t'));
    for (const e of shown)
      console.log(
        [e.tenantId, e.sender, e.action, e.limit, `${e.count}/${e.threshold}`, iso(e.at), iso(e.until)].join(
          '\t',
        ),
      );
    return 0;
  }
  if (action === 'release') {
    const sender = positionals[0]?.toLowerCase();
    if (!sender || positionals.length > 1) throw usageError('release takes exactly one sender address.');
    if (!values.by) throw usageError('release needs --by <admin>: every release is audited.');
    const by = values.by;
    return withStore(config, async (store) => {
      const matches = (await store.restrictions()).filter(
        (e) => e.sender === sender && (!values.tenant || e.tenantId === values.tenant),
      );
      if (matches.length === 0)
        throw new MailpoolsError(
          'MAILPOOLS_ERR_NOT_RESTRICTED',
          `${sender} is not restricted${values.tenant ? ` in ${values.tenant}` : ''}.`,
          {
            hint: 'See `mailpools restricted list`.',
          },
        );
      if (matches.length > 1)
        throw usageError(
          `${sender} is restricted in ${matches.length} tenants (${matches.map((m) => m.tenantId).join(', ')}); say which with --tenant.`,
        );
      const entry = matches[0] as RestrictionEntry;
      await publishRelease(config, entry, by, now());
      await store.release(entry.tenantId, entry.sender);
      console.log(
        `released ${entry.sender} in ${entry.tenantId} (was ${entry.action} for ${entry.limit}), by ${by}`,
      );
      return 0;
    });
  }
  throw usageError(action ? `unknown action "${action}".` : 'say list or release.');
}

async function publishRelease(
  config: RuntimeConfig,
  entry: RestrictionEntry,
  by: string,
  at: number,
): Promise<void> {
  const { outputs, topics } = wireStage('limit-counter', config.namespace, config.partitions);
  const release: SenderRestriction = {
    tenantId: entry.tenantId,
    sender: entry.sender,
    restricted: false,
    action: entry.action,
    limit: 'release',
    count: entry.count,
    threshold: entry.threshold,
    until: null,
    at,
    by,
  };
  const producer = await createEventProducer(config);
  try {
    await producer.ensureTopics(topics);
    const record = [{ key: `${entry.tenantId}/${entry.sender}`, value: release }];
    await producer.send(outputs.senderRestrictions as string, 'SenderRestriction', record);
    await producer.send(outputs.restrictionAudit as string, 'SenderRestriction', record);
  } finally {
    await producer.close();
  }
}
