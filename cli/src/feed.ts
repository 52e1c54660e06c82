// `mailpools feed`: produce OutboundMessage events from JSON lines (the JSON form), .eml files
// or mbox files, at an optional rate, with a progress bar.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  loadRuntimeConfig,
  MailpoolsError,
  progressBar,
  TOPICS,
  type TopicName,
  topicName,
} from '@mailpools/core';
import { fromJsonForm, type Origin, type OutboundMessage } from '@mailpools/schemas';
import { createEventProducer } from '@mailpools/stream';
import { TRACE_SETTINGS } from '@mailpools/trace-writer/settings';
import { type EnvelopeFlags, eventFromRaw, hasDate, looksLikeMbox, splitMbox } from './eml.ts';

export const FEED_USAGE = `usage: mailpools feed <file|dir>... [options]
  Produces one OutboundMessage per JSON line (*.jsonl, *.json: the JSON form in docs/cli.md),
  per .eml file, or per message of an mbox file; directories are read recursively.
  --topic <name>             topology topic (default: submitted)
  --tenant <id>              tenant of .eml/mbox messages (default: default)
  --origin <origin>          CLIENT_SUBMISSION | ON_PREMISES_CONNECTOR | FORWARDED | RELAYED | SYSTEM_NDR
  --submitter <address>      authenticated submitter (default: the envelope sender)
  --sender <address>         envelope sender (default: Return-Path, else From)
  --to <a,b,...>             recipients (default: To and Cc)
  --internal-domains <d,...> recipients in these domains are INTERNAL
  --client-ip <ip>           arrival IP (default 127.0.0.1)   --helo <name> (default localhost)
  --time <iso>               event time of every input (default: the Date header, else now;
                             a JSON line's own eventTime)
  --now                      stamp each event with the time it is sent, whatever it says
  --rate <n>                 at most n events per second
  --dry-run                  parse and validate only; print the JSON form of the first event`;

const ORIGINS: readonly Origin[] = [
  'CLIENT_SUBMISSION',
  'ON_PREMISES_CONNECTOR',
  'FORWARDED',
  'RELAYED',
  'SYSTEM_NDR',
];

/** The options that say how a raw message was submitted (feed and route share them). */
export const ENVELOPE_OPTIONS = {
  tenant: { type: 'string', default: 'default' },
  origin: { type: 'string', default: 'CLIENT_SUBMISSION' },
  submitter: { type: 'string' },
  sender: { type: 'string' },
  to: { type: 'string' },
  'internal-domains': { type: 'string', default: '' },
  'client-ip': { type: 'string', default: '127.0.0.1' },
  helo: { type: 'string', default: 'localhost' },
  time: { type: 'string' },
  now: { type: 'boolean', default: false },
} as const;

interface EnvelopeValues {
  tenant: string;
  origin: string;
  submitter?: string | undefined;
  sender?: string | undefined;
  to?: string | undefined;
  'internal-domains': string;
  'client-ip': string;
  helo: string;
  time?: string | undefined;
  now?: boolean | undefined;
}

export function envelopeFlags(
  values: EnvelopeValues,
  maxRawBytes: number,
  usageError: (message: string) => MailpoolsError,
): EnvelopeFlags {
  if (!ORIGINS.includes(values.origin as Origin)) throw usageError(`Unknown origin "${values.origin}".`);
  if (values.now && values.time !== undefined) throw usageError('Give --time or --now, not both.');
  const eventTime = values.now ? Date.now() : values.time === undefined ? undefined : Date.parse(values.time);
  if (eventTime !== undefined && Number.isNaN(eventTime))
    throw usageError(`--time must be an ISO-8601 time, got "${values.time}".`);
  return {
    tenantId: values.tenant,
    origin: values.origin as Origin,
    internalDomains: values['internal-domains']
      .split(',')
      .map((d) => d.trim().toLowerCase())
      .filter(Boolean),
    clientIp: values['client-ip'],
    helo: values.helo,
    maxRawBytes,
    ...(values.submitter === undefined ? {} : { submitter: values.submitter }),
    ...(values.sender === undefined ? {} : { sender: values.sender }),
    ...(values.to === undefined
      ? {}
      : { recipients: values.to.split(',').map((a) => a.trim().toLowerCase()) }),
    ...(eventTime === undefined ? {} : { eventTime, eventTimeFrom: values.now ? '--now' : '--time' }),
  };
}

function usageError(message: string): MailpoolsError {
  return new MailpoolsError('MAILPOOLS_ERR_USAGE', message, { hint: FEED_USAGE });
}

function filesUnder(path: string): string[] {
  let stats: ReturnType<typeof statSync>;
  try {
    stats = statSync(path);
  } catch {
    throw new MailpoolsError('MAILPOOLS_ERR_FEED_INPUT', `No such file or directory: ${path}.`, {
      hint: 'Give a file or directory that exists.',
    });
  }
  if (!stats.isDirectory()) return [path];
  return readdirSync(path)
    .filter((name) => !name.startsWith('.'))
    .sort()
    .flatMap((name) => filesUnder(join(path, name)));
}

/** An event read from an input, and where its event time came from, in words. */
export interface ReadEvent {
  readonly event: OutboundMessage;
  readonly timeFrom: string;
}

function fromRaw(raw: Buffer, flags: EnvelopeFlags): ReadEvent {
  const event = eventFromRaw(raw, flags);
  const timeFrom =
    flags.eventTimeFrom ?? (hasDate(raw) ? 'its Date header' : 'now (no readable Date header)');
  return { event, timeFrom };
}

/** Reads every input into events; throws one error listing every bad line or file. */
export function readEvents(paths: readonly string[], flags: EnvelopeFlags): ReadEvent[] {
  const events: ReadEvent[] = [];
  const problems: string[] = [];
  for (const file of paths.flatMap(filesUnder)) {
    const content = readFileSync(file);
    const extension = extname(file).toLowerCase();
    if (extension === '.jsonl' || extension === '.json' || extension === '.ndjson') {
      const lines = content.toString('utf8').split('\n');
      for (const [index, line] of lines.entries()) {
        if (line.trim() === '') continue;
        try {
          const json = JSON.parse(line) as Record<string, unknown>;
          if (json.rawSize === undefined && typeof json.raw === 'string')
            json.rawSize = Buffer.byteLength(json.raw);
          const event = fromJsonForm<OutboundMessage>('OutboundMessage', json);
          events.push(
            flags.eventTime === undefined
              ? { event, timeFrom: 'its eventTime field' }
              : {
                  event: { ...event, eventTime: flags.eventTime },
                  timeFrom: flags.eventTimeFrom ?? '--time',
                },
          );
        } catch (error) {
          problems.push(`${file}:${index + 1}: ${(error as Error).message}`);
        }
      }
    } else if (looksLikeMbox(content)) {
      for (const raw of splitMbox(content)) events.push(fromRaw(raw, flags));
    } else {
      events.push(fromRaw(content, flags));
    }
  }
  if (problems.length > 0) {
    const shown = problems.slice(0, 10).join('\n  ');
    throw new MailpoolsError(
      'MAILPOOLS_ERR_FEED_INPUT',
      `${problems.length} input line(s) are not valid events; nothing was produced:\n  ${shown}`,
      {
        hint: 'Fix the lines named above (see the JSON form in docs/cli.md) and feed again.',
      },
    );
  }
  return events;
}

export async function runFeed(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      topic: { type: 'string', default: 'submitted' },
      ...ENVELOPE_OPTIONS,
      rate: { type: 'string' },
      'dry-run': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(FEED_USAGE);
    return 0;
  }
  if (positionals.length === 0) throw usageError('Name at least one file or directory to feed.');
  if (!(values.topic in TOPICS))
    throw usageError(`Unknown topic "${values.topic}"; one of: ${Object.keys(TOPICS).join(', ')}.`);
  const rate = values.rate === undefined ? undefined : Number(values.rate);
  if (rate !== undefined && !(rate > 0))
    throw usageError(`--rate must be a positive number, got "${values.rate}".`);
  const config = loadRuntimeConfig();
  const flags = envelopeFlags(values, config.maxRawBytes, usageError);
  const read = readEvents(positionals, flags);
  const events = read.map((r) => r.event);
  reportEventTimes(read);
  if (values['dry-run']) {
    const { toJsonForm } = await import('@mailpools/schemas');
    console.log(`${events.length} valid event(s)`);
    if (events[0]) console.log(JSON.stringify(toJsonForm('OutboundMessage', events[0]), null, 2));
    return 0;
  }
  const topic = topicName(values.topic as TopicName, config.namespace);
  const producer = await createEventProducer(config);
  const progress = progressBar(`feeding ${topic}`, events.length);
  const started = Date.now();
  try {
    await producer.ensureTopics([{ topic, partitions: config.partitions, compacted: false }]);
    const chunk = rate === undefined ? 500 : Math.max(1, Math.min(500, Math.floor(rate / 10)));
    for (let sent = 0; sent < events.length; ) {
      const slice = events.slice(sent, sent + chunk);
      // --now means the time each event leaves, so a slow --rate does not age the last ones.
      const stamp = values.now ? Date.now() : undefined;
      await producer.send(
        topic,
        'OutboundMessage',
        slice.map((event) => ({
          key: event.messageId,
          value: stamp === undefined ? event : { ...event, eventTime: stamp },
        })),
      );
      sent += slice.length;
      progress.update(sent);
      if (rate !== undefined) {
        const ahead = (sent / rate) * 1000 - (Date.now() - started);
        if (ahead > 0) await new Promise((r) => setTimeout(r, ahead));
      }
    }
    progress.finish(events.length);
  } finally {
    await producer.close();
  }
  console.log(
    `produced ${events.length} event(s) to ${topic} in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
  return 0;
}

const DAY = 86_400_000;
const SHOWN = 10;

/**
 * On stderr: the event time each input got and why (the first few, then a count by reason), and
 * a warning for those the message trace will not show: older than its retention, or ahead of now.
 */
function reportEventTimes(read: readonly ReadEvent[]): void {
  const now = Date.now();
  const retentionDays = TRACE_SETTINGS.integer(process.env, 'MAILPOOLS_TRACE_RETENTION_DAYS');
  const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
  for (const { event, timeFrom } of read.slice(0, SHOWN))
    console.error(`${event.messageId}: event time ${iso(event.eventTime)}, from ${timeFrom}`);
  if (read.length > SHOWN) {
    const byReason = new Map<string, number>();
    for (const { timeFrom } of read) byReason.set(timeFrom, (byReason.get(timeFrom) ?? 0) + 1);
    console.error(
      `event times of all ${read.length}: ${[...byReason].map(([why, n]) => `${n} from ${why}`).join(', ')}`,
    );
  }
  const old = read.filter((r) => r.event.eventTime < now - retentionDays * DAY);
  const ahead = read.filter((r) => r.event.eventTime > now + 5 * 60_000);
  if (old.length > 0)
    console.error(
      `warning: ${old.length} event(s) are older than the trace's ${retentionDays} days (e.g. ${old[0]?.event.messageId}, ${iso(old[0]?.event.eventTime ?? 0)}): \`mailpools trace\` will not show them, and limits count them in their own past. --now stamps the current time.`,
    );
  if (ahead.length > 0)
    console.error(
      `warning: ${ahead.length} event(s) are in the future (e.g. ${ahead[0]?.event.messageId}, ${iso(ahead[0]?.event.eventTime ?? 0)}). --now stamps the current time.`,
    );
}
