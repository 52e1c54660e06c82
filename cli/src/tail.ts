// `mailpools tail`: pool assignments as they are routed, one line each, read_committed from the
// end of the routed topic: what the MTAs are told right now.
import { parseArgs } from 'node:util';
import { loadRuntimeConfig, MailpoolsError, topicName } from '@mailpools/core';
import { POOLS, ROUTING_RULES } from '@mailpools/policy';
import { type PoolAssignment, toJsonForm } from '@mailpools/schemas';
import { followTopic } from '@mailpools/stream';

export const TAIL_USAGE = `usage: mailpools tail [--pool NORMAL|HIGH_RISK|RELAY|BLOCKED] [--tenant <id>] [--rule <rule>] [--json]
  Assignments as they are routed, one line each: event time, tenant, sender domain, pool, the
  rule that decided (none: good mail), latency (decided minus event time); read_committed from
  the end of the routed topic, until Ctrl-C. --json prints each assignment's JSON form instead.`;

const BLOCKED = 'BLOCKED';

function usageError(message: string): MailpoolsError {
  return new MailpoolsError('MAILPOOLS_ERR_USAGE', message, { hint: TAIL_USAGE });
}

/** 12 ms, 3.4 s, 5 min, 14 d: a latency a person reads at a glance. */
export function humanDuration(ms: number): string {
  if (ms < 1_000) return `${Math.max(0, Math.round(ms))} ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)} min`;
  if (ms < 86_400_000) return `${(ms / 3_600_000).toFixed(1)} h`;
  return `${Math.round(ms / 86_400_000)} d`;
}

const POOL_COLOURS: Record<string, string> = { NORMAL: '32', HIGH_RISK: '33', RELAY: '36', BLOCKED: '31' };

/** One assignment as one line; coloured by pool when `colour`. */
export function tailLine(a: PoolAssignment, colour: boolean): string {
  const rule = a.trace.find((t) => t.matched)?.rule ?? 'none';
  const domain = (a.sender || a.fromHeader).split('@').pop() || '<>';
  const pool = a.pool.padEnd(9);
  const time = new Date(a.eventTime)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d{3}Z$/, 'Z');
  return [
    time,
    a.tenantId.padEnd(12),
    domain.padEnd(24),
    colour ? `\u001b[${POOL_COLOURS[a.pool] ?? '0'}m${pool}\u001b[0m` : pool,
    rule.padEnd(16),
    humanDuration(a.decidedAt - a.eventTime),
  ].join('  ');
}

export async function runTail(argv: string[], log: (line: string) => void = console.log): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      pool: { type: 'string' },
      tenant: { type: 'string' },
      rule: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const pools = [...POOLS, BLOCKED] as string[];
  if (values.pool !== undefined && !pools.includes(values.pool))
    throw usageError(`--pool must be one of ${pools.join(', ')}, got "${values.pool}".`);
  const rules = [...ROUTING_RULES, 'none'] as string[];
  if (values.rule !== undefined && !rules.includes(values.rule))
    throw usageError(`--rule must be one of ${rules.join(', ')}, got "${values.rule}".`);
  const config = loadRuntimeConfig();
  const topic = topicName('routed', config.namespace);
  const colour = process.stdout.isTTY === true && !process.env.NO_COLOR;
  const follower = await followTopic<PoolAssignment>(config, {
    topic,
    schema: 'PoolAssignment',
    onRecord(assignment) {
      const rule = assignment.trace.find((t) => t.matched)?.rule ?? 'none';
      if (values.pool !== undefined && assignment.pool !== values.pool) return;
      if (values.tenant !== undefined && assignment.tenantId !== values.tenant) return;
      if (values.rule !== undefined && rule !== values.rule) return;
      log(
        values.json ? JSON.stringify(toJsonForm('PoolAssignment', assignment)) : tailLine(assignment, colour),
      );
    },
    onPoison: (error, at) =>
      console.error(`skipped a record at ${at.partition}/${at.offset}: ${error.message}`),
  });
  await follower.ready;
  console.error(`following ${topic} from its end (Ctrl-C stops)`);
  if (!values.json && process.stdout.isTTY)
    log(
      [
        'event time (UTC)    ',
        'tenant      ',
        'sender domain           ',
        'pool     ',
        'rule            ',
        'latency',
      ].join('  '),
    );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await follower.stop();
  return 0;
}
