// The plugin's hooks, as functions of Haraka's connection, transaction and outbound mail objects.
// index.cjs (what Haraka loads) hands each hook here and turns the answer into Haraka's codes.
//
// - queue_outbound: the message is submitted and waits for its pool. Blocked → refused with the
//   assignment's reply; no decision in time → deferred (4xx) by the tenant's policy; otherwise
//   queued, with the assignment in the transaction's notes and the SRS sender, if any, as the
//   envelope sender of the delivery.
// - send_email (every queued delivery, bounces included): a throttled message waits until its
//   not-before time; a delivery that was never judged (a bounce Haraka generated) is judged now
//   and waits, never leaving unjudged.
// - get_mx: the recipient domain's exchangers from the project's resolver, with the assigned
//   source IP bound and the pool's HELO name, so the connection really leaves from that address.
import { createRequire } from 'node:module';
import { isIPv6 } from 'node:net';
import {
  ARRIVAL_HEADER,
  actionFor,
  DecisionDeferred,
  domainOf,
  identify,
  MESSAGE_ID_HEADER,
  readAll,
  secondsUntil,
  sentMemory,
  sourceProblem,
  splitReply,
  startMtaSide,
  tenantOfDomain,
} from '@mailpools/client';
import { createLogger, type Logger } from '@mailpools/core';
import { cacheLimitsFromEnv, Resolver, transportFromEnv } from '@mailpools/dns';
import type { Policy } from '@mailpools/policy';
import type { Origin, PoolAssignment } from '@mailpools/schemas';
import { startHealthServer } from '@mailpools/stream';
import { Counter } from 'prom-client';
import { mailExchangers } from './delivery.ts';
import type { PluginSettings } from './settings.ts';

/** Haraka's answer to a hook, by name; index.cjs maps it to Haraka's constants. */
export type HookAnswer =
  | { readonly code: 'cont' }
  | { readonly code: 'ok'; readonly mx?: unknown }
  | { readonly code: 'deny' | 'denysoft'; readonly message: string }
  | { readonly code: 'delay'; readonly seconds: number };

// The few parts of Haraka's objects this plugin touches.
interface HarakaAddress {
  readonly user: string | null;
  readonly host: string | null;
  /** A string in @haraka/email-address 3, a method in the address-rfc2821 it replaced. */
  readonly address: string | (() => string);
}

/** The address as text ('' for the null sender). */
function addressText(address: HarakaAddress | null | undefined): string {
  if (!address) return '';
  const value = typeof address.address === 'function' ? address.address() : address.address;
  return (value ?? '').toLowerCase();
}
interface HarakaHeader {
  get(name: string): string;
}
interface HarakaTransaction {
  uuid: string;
  mail_from: HarakaAddress;
  rcpt_to: HarakaAddress[];
  header: HarakaHeader;
  notes: Record<string, unknown>;
  message_stream: { get_data(callback: (data: Buffer) => void): void };
  remove_header(name: string): void;
  add_header(name: string, value: string): void;
}
interface HarakaConnection {
  remote: { ip: string };
  hello: { host: string | null };
  notes: Record<string, unknown>;
  relaying: boolean;
  transaction: HarakaTransaction;
}
interface HarakaHmail {
  todo: {
    mail_from: HarakaAddress;
    rcpt_to: HarakaAddress[];
    notes: Record<string, unknown>;
    domain: string;
  };
  data_stream(): NodeJS.ReadableStream;
}

/** What the plugin keeps in a transaction's (and so its queued deliveries') notes. */
interface Notes {
  /** The pool the message was assigned. */
  assignment?: PoolAssignment;
  /** Not judged yet (a bounce Haraka generated): how to judge it at send time. */
  judge?: { origin: Origin; tenantId: string; acceptedAt: number; clientIp: string };
}

export interface MailpoolsMta {
  connect(connection: HarakaConnection): HookAnswer;
  queueOutbound(connection: HarakaConnection): Promise<HookAnswer>;
  preSendTransEmail(connection: { transaction: HarakaTransaction }): HookAnswer;
  sendEmail(hmail: HarakaHmail): Promise<HookAnswer>;
  getMx(hmail: HarakaHmail, domain: string): Promise<HookAnswer>;
  delivered(hmail: HarakaHmail): void;
  shutdown(): Promise<void>;
}

export async function startMailpoolsMta(
  settings: PluginSettings,
  env: Readonly<Record<string, string | undefined>> = process.env,
  logger: Logger = createLogger('haraka-plugin-mailpools', env.LOG_LEVEL ?? 'info'),
): Promise<MailpoolsMta> {
  const side = await startMtaSide(env, logger, { maxInFlight: settings.maxInFlight });
  const { policy, registry, judge } = side;
  const resolver = new Resolver({ ...transportFromEnv(env), ...cacheLimitsFromEnv(env) });
  const counters = {
    outcomes: new Counter({
      name: 'mailpools_mta_submissions_total',
      help: 'Messages submitted to the MTA, by what became of them at submission (queued, refused, deferred).',
      labelNames: ['outcome', 'pool'],
      registers: [registry],
    }),
    deliveries: new Counter({
      name: 'mailpools_mta_deliveries_total',
      help: 'Deliveries that reached their destination, by pool.',
      labelNames: ['pool'],
      registers: [registry],
    }),
  };
  const health =
    settings.metricsPort > 0
      ? await startHealthServer({
          host: settings.metricsHost,
          port: settings.metricsPort,
          registry,
          isReady: () => true,
        })
      : undefined;
  // The tenant of a bounce is the tenant of the message it reports on, when this MTA sent it.
  const sentBy = sentMemory<{ tenantId: string; clientIp: string }>();

  const tenantFor = (address: string, current: Policy): string | undefined =>
    tenantOfDomain(current, domainOf(address)) ?? (settings.defaultTenant || undefined);

  return {
    connect(connection) {
      const ip = connection.remote.ip;
      if (settings.connectors.has(ip) || settings.forwarders.has(ip)) connection.relaying = true;
      return { code: 'cont' };
    },

    async queueOutbound(connection) {
      const transaction = connection.transaction;
      const ip = connection.remote.ip;
      const arrivalHeader = transaction.header.get(ARRIVAL_HEADER) ?? '';
      // Only the platform's own hosts may say where a message arrived from; nobody may stamp our id.
      transaction.remove_header(ARRIVAL_HEADER);
      transaction.remove_header(MESSAGE_ID_HEADER);
      const sender = addressText(transaction.mail_from);
      const who = identify(
        {
          ip,
          helo: connection.hello.host ?? '',
          authUser: typeof connection.notes.auth_user === 'string' ? connection.notes.auth_user : '',
          sender,
          arrivalHeader,
        },
        settings,
        policy(),
      );
      if (!who.ok) {
        counters.outcomes.inc({ outcome: 'refused', pool: 'none' });
        return { code: 'deny', message: splitReply(who.reply).text };
      }
      const raw = await new Promise<Buffer>((resolve) => transaction.message_stream.get_data(resolve));
      const decision = await judge({
        tenantId: who.tenantId,
        origin: who.origin,
        submitter: who.submitter,
        envelopeSender: sender,
        recipients: transaction.rcpt_to.map(addressText),
        clientIp: who.clientIp,
        helo: who.helo,
        connector: who.connector,
        raw,
        acceptedAt: Date.now(),
      });
      if (decision instanceof DecisionDeferred) {
        counters.outcomes.inc({ outcome: 'deferred', pool: 'none' });
        logger.warn({ tenant: who.tenantId, reason: decision.message }, 'no pool in time: deferred');
        return { code: 'denysoft', message: splitReply(decision.smtpReply).text };
      }
      const action = actionFor(decision);
      if (action.kind === 'refuse') {
        counters.outcomes.inc({ outcome: 'refused', pool: 'BLOCKED' });
        return { code: action.code >= 500 ? 'deny' : 'denysoft', message: action.reply };
      }
      const assignment = action.assignment;
      const problem = sourceProblem(assignment);
      if (problem) {
        counters.outcomes.inc({ outcome: 'deferred', pool: assignment.pool });
        logger.error({ pool: assignment.pool }, problem);
        return { code: 'denysoft', message: '4.3.5 The outbound pool for this message is not configured' };
      }
      transaction.notes.mailpools = { assignment } satisfies Notes;
      transaction.add_header(MESSAGE_ID_HEADER, assignment.messageId);
      if (assignment.rewrittenSender) transaction.mail_from = rewrittenAddress(assignment.rewrittenSender);
      sentBy.remember(assignment.messageId, { tenantId: who.tenantId, clientIp: who.clientIp });
      counters.outcomes.inc({ outcome: 'queued', pool: assignment.pool });
      return { code: 'cont' };
    },

    preSendTransEmail(connection) {
      const transaction = connection.transaction;
      const notes = transaction.notes.mailpools as Notes | undefined;
      if (notes?.assignment || transaction.mail_from.user) return { code: 'cont' };
      // A bounce Haraka made: judged at send time (send_email), like every unjudged delivery.
      transaction.notes.mailpools = {
        judge: {
          origin: 'SYSTEM_NDR',
          tenantId: '',
          acceptedAt: Date.now(),
          clientIp: '127.0.0.1',
        },
      } satisfies Notes;
      return { code: 'cont' };
    },

    async sendEmail(hmail) {
      const notes = (hmail.todo.notes.mailpools ?? {}) as Notes;
      if (notes.assignment) {
        const wait = secondsUntil(notes.assignment.notBefore, Date.now());
        return wait > 0 ? { code: 'delay', seconds: wait } : { code: 'cont' };
      }
      // Never judged: a bounce Haraka generated, or mail another plugin queued. Judge it now.
      const raw = await readAll(hmail.data_stream());
      const sender = addressText(hmail.todo.mail_from);
      const original = sentBy.ofBounce(raw);
      const recipients = hmail.todo.rcpt_to.map(addressText);
      const current = policy();
      const tenantId =
        original?.tenantId ??
        (sender ? tenantFor(sender, current) : undefined) ??
        tenantFor(recipients[0] ?? '', current);
      if (!tenantId) {
        logger.error({ domain: hmail.todo.domain }, 'an unjudged delivery belongs to no tenant; held back');
        return { code: 'delay', seconds: 300 };
      }
      const decision = await judge({
        tenantId,
        origin: notes.judge?.origin ?? (sender ? 'RELAYED' : 'SYSTEM_NDR'),
        submitter: sender,
        envelopeSender: sender,
        recipients,
        clientIp: original?.clientIp ?? notes.judge?.clientIp ?? '127.0.0.1',
        helo: '',
        raw,
        acceptedAt: notes.judge?.acceptedAt ?? Date.now(),
      });
      if (decision instanceof DecisionDeferred) {
        logger.warn({ tenant: tenantId }, 'an unjudged delivery got no pool in time: retried later');
        return { code: 'delay', seconds: 60 };
      }
      hmail.todo.notes.mailpools = { assignment: decision } satisfies Notes;
      const wait = secondsUntil(decision.notBefore, Date.now());
      return wait > 0 ? { code: 'delay', seconds: wait } : { code: 'cont' };
    },

    async getMx(hmail, domain) {
      const assignment = (hmail.todo.notes.mailpools as Notes | undefined)?.assignment;
      if (!assignment) return { code: 'denysoft', message: 'not judged by mailpools yet' };
      if (assignment.pool === 'BLOCKED') return { code: 'deny', message: assignment.smtpReply ?? 'blocked' };
      const problem = sourceProblem(assignment);
      if (problem) {
        logger.error({ pool: assignment.pool }, problem);
        return { code: 'denysoft', message: problem };
      }
      const family = assignment.sourceIp && isIPv6(assignment.sourceIp) ? 6 : 4;
      let exchangers: Awaited<ReturnType<typeof mailExchangers>>;
      try {
        exchangers = await mailExchangers(domain, (name, type) => resolver.lookup(name, type), family);
      } catch (error) {
        return { code: 'denysoft', message: `MX lookup for ${domain} failed: ${(error as Error).message}` };
      }
      if (exchangers === null) return { code: 'deny', message: `${domain} accepts no mail` };
      if (exchangers.length === 0)
        return { code: 'denysoft', message: `no IPv${family} exchanger for ${domain}` };
      return {
        code: 'ok',
        mx: exchangers.map((mx) => ({
          exchange: mx.exchange,
          priority: mx.priority,
          port: settings.deliveryPort,
          ...(assignment.sourceIp ? { bind: assignment.sourceIp } : {}),
          ...(assignment.heloName ? { bind_helo: assignment.heloName } : {}),
        })),
      };
    },

    delivered(hmail) {
      const assignment = (hmail.todo.notes.mailpools as Notes | undefined)?.assignment;
      counters.deliveries.inc({ pool: assignment?.pool ?? 'none' });
    },

    async shutdown() {
      await side.close();
      await health?.close();
    },
  };
}

function rewrittenAddress(address: string): HarakaAddress {
  // Haraka's own Address class, so the queue and the SMTP client treat it as any other sender.
  const { Address } = createRequire(import.meta.url)('@haraka/email-address') as {
    Address: new (address: string) => HarakaAddress;
  };
  return new Address(`<${address}>`);
}
