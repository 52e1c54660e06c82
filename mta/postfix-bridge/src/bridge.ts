// The bridge between Postfix and the pipeline (postfix-config.ts draws the whole loop):
//
// - the before-queue proxy: Postfix's submission smtpd hands it each SMTP session
//   (smtpd_proxy_filter), so the reply it gives at end of DATA is what the client sees: blocked →
//   the assignment's 5xx; no decision in time → the tenant's 4xx; otherwise it re-injects the
//   message into the Postfix listener of its source IP (MAIL FROM = the SRS address where due)
//   and answers with that listener's 250 — the message is in Postfix's queue before the client
//   hears it is accepted;
// - the requeue port: what Postfix's own queue hands back. A throttled message (held there with
//   its route) is answered 4xx until its not-before time, so Postfix keeps it and retries, then
//   re-injected; a message never judged (Postfix's own bounces) is judged like a submission.
import {
  ARRIVAL_HEADER,
  actionFor,
  authenticatedSender,
  DecisionDeferred,
  domainOf,
  identify,
  MESSAGE_ID_HEADER,
  readAll,
  readHeaders,
  sentMemory,
  sourceProblem,
  splitReply,
  startMtaSide,
  tenantOfDomain,
  withHeader,
  withoutHeaders,
} from '@mailpools/client';
import { createLogger, type Logger } from '@mailpools/core';
import type { Policy } from '@mailpools/policy';
import type { PoolAssignment } from '@mailpools/schemas';
import { startHealthServer } from '@mailpools/stream';
import nodemailer from 'nodemailer';
import { Counter } from 'prom-client';
import { SMTPServer, type SMTPServerSession } from 'smtp-server';
import { type Routes, routeFor, routesOf } from './routes.ts';
import { startSaslServer } from './sasl.ts';
import { type BridgeSettings, readUsers } from './settings.ts';

/** The route of a held (throttled) message, on the copy in Postfix's queue; the bridge's own. */
export const ROUTE_HEADER = 'X-Mailpools-Route';

export interface Bridge {
  readonly routes: () => Routes;
  close(): Promise<void>;
}

/** An SMTP reply to give instead of 250. */
function reply(text: string): Error {
  const { code, text: rest } = splitReply(text);
  return Object.assign(new Error(rest), { responseCode: code });
}

function parseRoute(value: string | undefined): { ip: string; helo: string; notBefore: number } | null {
  if (!value) return null;
  const fields = new Map(
    value.split(';').map((part) => {
      const eq = part.indexOf('=');
      return [part.slice(0, eq).trim(), part.slice(eq + 1).trim()] as const;
    }),
  );
  return {
    ip: fields.get('ip') ?? '',
    helo: fields.get('helo') ?? '',
    notBefore: Number(fields.get('not-before') ?? 0),
  };
}

export async function startBridge(
  settings: BridgeSettings,
  env: Readonly<Record<string, string | undefined>> = process.env,
  logger: Logger = createLogger('postfix-bridge', env.LOG_LEVEL ?? 'info'),
): Promise<Bridge> {
  const side = await startMtaSide(env, logger);
  const { config, policy, registry, judge } = side;
  const routes = () => routesOf(policy(), settings.injectBasePort);
  const outcomes = new Counter({
    name: 'mailpools_mta_submissions_total',
    help: 'Messages the bridge answered, by what became of them (queued, held, refused, deferred).',
    labelNames: ['outcome', 'pool'],
    registers: [registry],
  });
  const closers: (() => Promise<void>)[] = [];
  const users = readUsers(settings.usersFile);
  if (settings.saslPort > 0) {
    const sasl = await startSaslServer({ host: settings.host, port: settings.saslPort, users: () => users });
    closers.push(() => sasl.close());
  }
  // The tenant of a bounce is the tenant of the message it reports on, when the bridge routed it.
  const sentBy = sentMemory<string>();

  const inject = async (port: number, from: string, to: readonly string[], raw: Buffer) => {
    const transport = nodemailer.createTransport({
      host: settings.host,
      port,
      secure: false,
      ignoreTLS: true,
      name: 'postfix-bridge.mailpools',
    });
    try {
      await transport.sendMail({ envelope: { from, to: [...to] }, raw });
    } finally {
      transport.close();
    }
  };

  /** Hands a judged message to Postfix: its source IP's listener, or the hold listener until its time. */
  const deliver = async (assignment: PoolAssignment, from: string, to: readonly string[], raw: Buffer) => {
    const current = routes();
    const sender = assignment.rewrittenSender ?? from;
    const stamped = withHeader(
      withoutHeaders(raw, [MESSAGE_ID_HEADER, ROUTE_HEADER]),
      MESSAGE_ID_HEADER,
      assignment.messageId,
    );
    if (assignment.notBefore !== null && assignment.notBefore > Date.now()) {
      const route = `ip=${assignment.sourceIp ?? ''}; helo=${assignment.heloName ?? ''}; not-before=${assignment.notBefore}`;
      await inject(current.holdPort, sender, to, withHeader(stamped, ROUTE_HEADER, route));
      return 'held';
    }
    const port = assignment.sourceIp
      ? routeFor(current, assignment.sourceIp, assignment.heloName)?.port
      : current.defaultPort;
    if (port === undefined) {
      logger.error(
        { ip: assignment.sourceIp, helo: assignment.heloName },
        'the routing policy names a source IP the Postfix configuration has no listener for: write it again (writePostfixInstance) and `postfix reload`',
      );
      throw reply('451 4.3.5 The outbound route of this message is not configured yet');
    }
    await inject(port, sender, to, stamped);
    return 'queued';
  };

  const sessionFacts = (session: SMTPServerSession) => ({
    ip: session.remoteAddress.replace(/^::ffff:/, ''),
    helo: String(session.xForward.get('HELO') || session.hostNameAppearsAs || ''),
    // As given: a local part's case is its owner's (the event lower-cases what it compares).
    sender: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
    recipients: session.envelope.rcptTo.map((r) => r.address),
  });

  /** An SMTP listener for Postfix to talk to (XFORWARD tells who the client was). */
  const listener = (
    onData: (
      stream: NodeJS.ReadableStream,
      session: SMTPServerSession,
      done: (error?: Error) => void,
    ) => void,
  ) =>
    new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      useXForward: true,
      logger: false,
      size: 64 * 1024 * 1024,
      onData,
    });

  const proxy = listener((stream, session, callback) => {
    void (async () => {
      const raw = await readAll(stream);
      const facts = sessionFacts(session);
      const headers = readHeaders(raw);
      const who = identify(
        {
          ...facts,
          authUser: authenticatedSender(raw),
          arrivalHeader: headers.get(ARRIVAL_HEADER.toLowerCase()) ?? '',
        },
        settings,
        policy(),
      );
      if (!who.ok) {
        outcomes.inc({ outcome: 'refused', pool: 'none' });
        throw reply(who.reply);
      }
      const clean = withoutHeaders(raw, [ARRIVAL_HEADER, MESSAGE_ID_HEADER, ROUTE_HEADER]);
      const decision = await judge({
        tenantId: who.tenantId,
        origin: who.origin,
        submitter: who.submitter,
        envelopeSender: facts.sender,
        recipients: facts.recipients,
        clientIp: who.clientIp,
        helo: who.helo,
        connector: who.connector,
        raw: clean,
        acceptedAt: Date.now(),
      });
      if (decision instanceof DecisionDeferred) {
        outcomes.inc({ outcome: 'deferred', pool: 'none' });
        logger.warn({ tenant: who.tenantId, reason: decision.message }, 'no pool in time: deferred');
        throw reply(decision.smtpReply);
      }
      const action = actionFor(decision);
      if (action.kind === 'refuse') {
        outcomes.inc({ outcome: 'refused', pool: 'BLOCKED' });
        throw reply(`${action.code} ${action.reply}`);
      }
      const problem = sourceProblem(decision);
      if (problem) {
        logger.error({ pool: decision.pool }, problem);
        outcomes.inc({ outcome: 'deferred', pool: decision.pool });
        throw reply('451 4.3.5 The outbound pool for this message is not configured');
      }
      sentBy.remember(decision.messageId, who.tenantId);
      outcomes.inc({
        outcome: await deliver(decision, facts.sender, facts.recipients, clean),
        pool: decision.pool,
      });
    })().then(
      () => callback(),
      (error: Error & { responseCode?: number }) => {
        if (error.responseCode === undefined)
          logger.error({ err: error }, 'a submission failed in the bridge');
        callback(
          error.responseCode === undefined
            ? reply('451 4.3.0 The outbound route could not be decided; please try again later')
            : error,
        );
      },
    );
  });

  const requeue = listener((stream, session, callback) => {
    void (async () => {
      const raw = await readAll(stream);
      const facts = sessionFacts(session);
      const headers = readHeaders(raw);
      const held = parseRoute(headers.get(ROUTE_HEADER.toLowerCase()));
      if (held) {
        if (held.notBefore > Date.now())
          throw reply(`450 4.7.0 Throttled until ${new Date(held.notBefore).toISOString()}`);
        const current = routes();
        const port = held.ip ? routeFor(current, held.ip, held.helo || null)?.port : current.defaultPort;
        if (port === undefined)
          throw reply('451 4.3.5 The outbound route of this message is not configured yet');
        await inject(port, facts.sender, facts.recipients, withoutHeaders(raw, [ROUTE_HEADER]));
        outcomes.inc({ outcome: 'released', pool: 'none' });
        return;
      }
      // Never judged: a bounce Postfix made, or mail from pickup. Judge it now.
      const current: Policy = policy();
      const tenantId =
        sentBy.ofBounce(raw) ??
        tenantOfDomain(current, domainOf(facts.sender || facts.recipients[0] || '')) ??
        (settings.defaultTenant || undefined);
      if (!tenantId) throw reply('451 4.7.1 This message belongs to no tenant yet');
      const decision = await judge({
        tenantId,
        origin: facts.sender ? 'RELAYED' : 'SYSTEM_NDR',
        submitter: facts.sender,
        envelopeSender: facts.sender,
        recipients: facts.recipients,
        clientIp: '127.0.0.1',
        helo: '',
        raw,
        acceptedAt: Date.now(),
      });
      if (decision instanceof DecisionDeferred) throw reply(decision.smtpReply);
      if (decision.pool === 'BLOCKED') {
        logger.warn({ tenant: tenantId }, 'a message the MTA made itself was blocked: not sent');
        outcomes.inc({ outcome: 'refused', pool: 'BLOCKED' });
        return;
      }
      outcomes.inc({
        outcome: await deliver(decision, facts.sender, facts.recipients, raw),
        pool: decision.pool,
      });
    })().then(
      () => callback(),
      (error: Error & { responseCode?: number }) =>
        callback(
          error.responseCode === undefined ? reply('451 4.3.0 Not routed yet; try again later') : error,
        ),
    );
  });

  const listen = (server: SMTPServer, port: number) =>
    new Promise<void>((resolve, reject) => {
      server.server.once('error', reject);
      server.listen(port, settings.host, () => resolve());
    });
  await listen(proxy, settings.proxyPort);
  await listen(requeue, settings.requeuePort);
  closers.push(
    () => new Promise((resolve) => proxy.close(() => resolve())),
    () => new Promise((resolve) => requeue.close(() => resolve())),
  );
  const health = await startHealthServer({
    host: config.httpHost,
    port: config.httpPort,
    registry,
    isReady: () => true,
  });
  logger.info(
    {
      proxy: settings.proxyPort,
      requeue: settings.requeuePort,
      metrics: health.port,
    },
    'bridge ready',
  );
  return {
    routes,
    async close() {
      for (const close of closers) await close();
      await side.close();
      await health.close();
    },
  };
}
