// What the limit counters must hold after a stream of events, computed offline from the events
// themselves: the reference the replica test and the chaos run compare Redis against.
import type { OutboundMessage } from '@mailpools/schemas';
import type { SenderUsage } from './store.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** Sums over each window ending at the latest event time seen there. */
export function offlineLimitCounts(events: readonly OutboundMessage[]) {
  const bySender = new Map<string, OutboundMessage[]>();
  const byTenant = new Map<string, OutboundMessage[]>();
  const perMinute = new Map<string, number>();
  for (const e of events) {
    const key = `${e.tenantId}/${e.submitter}`;
    bySender.set(key, [...(bySender.get(key) ?? []), e]);
    byTenant.set(e.tenantId, [...(byTenant.get(e.tenantId) ?? []), e]);
    const minute = `${key}:${Math.floor(e.eventTime / 60_000)}`;
    perMinute.set(minute, (perMinute.get(minute) ?? 0) + 1);
  }
  const scopeCount = (e: OutboundMessage, scope: string) =>
    e.recipients.filter((r) => r.scope === scope).length;
  const senders = new Map<
    string,
    { at: number; recipients24h: number; external1h: number; internal1h: number }
  >();
  for (const [key, list] of bySender) {
    const at = Math.max(...list.map((e) => e.eventTime));
    const inWindow = (e: OutboundMessage, width: number) => e.eventTime > at - width && e.eventTime <= at;
    senders.set(key, {
      at,
      recipients24h: list.filter((e) => inWindow(e, DAY)).reduce((n, e) => n + e.recipients.length, 0),
      external1h: list.filter((e) => inWindow(e, HOUR)).reduce((n, e) => n + scopeCount(e, 'EXTERNAL'), 0),
      internal1h: list.filter((e) => inWindow(e, HOUR)).reduce((n, e) => n + scopeCount(e, 'INTERNAL'), 0),
    });
  }
  const tenants = new Map<string, number>();
  for (const [tenant, list] of byTenant) {
    // The tenant's window ends at its latest event that counted toward it (an ordinary one with external recipients).
    const counted = list.filter((e) => e.messageClass === 'NORMAL' && scopeCount(e, 'EXTERNAL') > 0);
    const at = Math.max(...counted.map((e) => e.eventTime));
    tenants.set(
      tenant,
      counted.filter((e) => e.eventTime > at - DAY).reduce((n, e) => n + scopeCount(e, 'EXTERNAL'), 0),
    );
  }
  return { senders, tenants, perMinute };
}

/**
 * Every counter that differs from the offline sums, as "what: got ≠ want" lines (empty when all
 * match). `usage` is the limit store's usage(tenantId, sender).
 */
export async function limitCounterMismatches(
  events: readonly OutboundMessage[],
  usage: (tenantId: string, sender: string) => Promise<SenderUsage>,
): Promise<string[]> {
  const expected = offlineLimitCounts(events);
  const mismatches: string[] = [];
  const differs = (what: string, got: unknown, want: unknown) => {
    if (JSON.stringify(got) !== JSON.stringify(want))
      mismatches.push(`${what}: ${JSON.stringify(got)} ≠ ${JSON.stringify(want)}`);
  };
  const usages = new Map<string, SenderUsage>();
  for (const [key, want] of expected.senders) {
    const [tenantId, sender] = key.split('/') as [string, string];
    const got = await usage(tenantId, sender);
    usages.set(key, got);
    const { at, recipients24h, external1h, internal1h } = got;
    differs(key, { at, recipients24h, external1h, internal1h }, want);
    differs(`${tenantId} external recipients`, got.tenantExternal24h, expected.tenants.get(tenantId));
  }
  for (const [key, count] of expected.perMinute) {
    const colon = key.lastIndexOf(':');
    const got = usages.get(key.slice(0, colon));
    differs(`${key} messages`, got?.messagesPerMinute[Number(key.slice(colon + 1))], count);
  }
  return mismatches;
}
