// `mailpools route` and `mailpools srs reverse`: the router's decision for a message computed
// here — spam, DNS and authentication evaluated locally by the services' own code, nothing
// produced or counted — with its whole trace; and the reversal of an SRS address.
import { parseArgs } from 'node:util';
import { AUTH_SETTINGS } from '@mailpools/auth-verifier/settings';
import { enrich as verifyAuth } from '@mailpools/auth-verifier/verify';
import {
  type Logger,
  loadRuntimeConfig,
  MailpoolsError,
  type RuntimeConfig,
  withRedis,
} from '@mailpools/core';
import { cacheLimitsFromEnv, nodeStyleResolve, Resolver, transportFromEnv } from '@mailpools/dns';
import { enrich as checkDns } from '@mailpools/dns-checker/check';
import { loadPolicy, tenantPolicy } from '@mailpools/policy';
import { route } from '@mailpools/pool-router/route';
import { srsKeyPrefix, srsReverse } from '@mailpools/pool-router/srs';
import { type OutboundMessage, toJsonForm } from '@mailpools/schemas';
import { classifierDepsFromEnv, classify } from '@mailpools/spam-classifier/classify';
import { ENVELOPE_OPTIONS, envelopeFlags, readEvents } from './feed.ts';

export const ROUTE_USAGE = `usage: mailpools route <file.eml|event.json|mbox>... [feed's envelope options] [--json]
  The pool each message would get and why, with every rule's inputs. Enrichments the input lacks
  are computed here (spam model, DNS, SPF/DKIM/DMARC/ARC); limits are not: a dry run counts nothing.
usage: mailpools srs reverse <address> [--tenant <id>] [--at <iso time>]
  Verifies an SRS address (hash and age) and prints the original sender; forged, expired or
  unknown addresses are refused with a code.`;

function usageError(message: string): MailpoolsError {
  return new MailpoolsError('MAILPOOLS_ERR_USAGE', message, { hint: ROUTE_USAGE });
}

async function enrichLocally(event: OutboundMessage, config: RuntimeConfig): Promise<OutboundMessage> {
  const policy = loadPolicy();
  const resolver = new Resolver({ ...transportFromEnv(process.env), ...cacheLimitsFromEnv(process.env) });
  let enriched = event;
  // A dry run: the content alone, no submitter profile read or written.
  if (!enriched.spam)
    enriched = {
      ...enriched,
      spam: await classify(
        enriched,
        classifierDepsFromEnv(process.env, () => policy),
      ),
    };
  if (!enriched.dns) enriched = await checkDns(enriched, resolver);
  if (!enriched.auth)
    enriched = await verifyAuth(enriched, {
      resolve: nodeStyleResolve(resolver),
      policy: () => policy,
      maxBytes: config.maxRawBytes,
      timeoutMs: 10_000,
      mta: AUTH_SETTINGS.text(process.env, 'MAILPOOLS_AUTH_MTA'),
    });
  return enriched;
}

export async function runRoute(argv: string[], log: Logger['info'] = console.log): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { ...ENVELOPE_OPTIONS, json: { type: 'boolean', default: false } },
  });
  if (positionals.length === 0) throw usageError('Name the message or event file(s) to route.');
  const config = loadRuntimeConfig();
  const policy = loadPolicy();
  for (const { event } of readEvents(positionals, envelopeFlags(values, config.maxRawBytes, usageError))) {
    const enriched = await enrichLocally(event, config);
    const { assignment } = route(enriched, policy, Date.now());
    if (values.json) {
      log(JSON.stringify(toJsonForm('PoolAssignment', assignment)));
      continue;
    }
    log(
      `message ${assignment.messageId} (tenant ${assignment.tenantId}, policy ${assignment.policyVersion})`,
    );
    log(
      `  pool      ${assignment.pool} — ${assignment.poolName}${assignment.sourceIp ? ` via ${assignment.sourceIp}` : ''}`,
    );
    for (const reason of assignment.reasons) log(`  reason    ${reason}`);
    if (assignment.smtpReply) log(`  reply     ${assignment.smtpReply}`);
    if (assignment.rewrittenSender) log(`  srs       ${assignment.rewrittenSender}`);
    log(
      `  limits    ${enriched.limits ? enriched.limits.decision : 'not evaluated (a dry run counts nothing)'}`,
    );
    for (const step of assignment.trace) {
      const inputs = Object.entries(step.inputs)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ');
      log(`  ${step.matched ? 'MATCH' : 'no   '}     ${step.rule.padEnd(16)} ${inputs}`);
    }
  }
  return 0;
}

export async function runSrs(argv: string[], now: () => number = Date.now): Promise<number> {
  const [action, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: { tenant: { type: 'string', default: '' }, at: { type: 'string' } },
  });
  if (action !== 'reverse' || positionals.length !== 1) throw usageError('say: srs reverse <address>.');
  const at = values.at === undefined ? now() : Date.parse(values.at);
  if (Number.isNaN(at)) throw usageError(`--at must be an ISO-8601 time, got "${values.at}".`);
  const { srs } = tenantPolicy(loadPolicy(), values.tenant).routing;
  if (!srs.secret)
    throw new MailpoolsError(
      'MAILPOOLS_ERR_SRS_NOT_CONFIGURED',
      'The policy has no SRS secret: nothing was rewritten.',
      {
        hint: 'Set routing.srs.secret in MAILPOOLS_POLICY_FILE.',
      },
    );
  const config = loadRuntimeConfig();
  // Only the short (bounces) form needs Redis, where the router kept its original.
  const lookup = (key: string) =>
    withRedis(
      config.redisUrl,
      async (redis) => (await redis.get(`${srsKeyPrefix(config.namespace)}${key}`)) ?? undefined,
    );
  const result = await srsReverse(positionals[0] as string, at, srs, lookup);
  if (!result.ok)
    throw new MailpoolsError(result.code, result.reason, {
      hint: 'Refuse the bounce: it was not caused by mail this platform forwarded.',
    });
  console.log(result.original);
  return 0;
}
