// npm run docs:tour — records the README's five-minute tour in pseudo-terminals against the local
// stack (started if KAFKA_BROKERS is unset) and writes what a person saw into docs/tour.md:
// `mailpools doctor`, `start`, `tail`, `feed`, `trace`, `top`. Each command's screen is kept as text.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toJsonForm } from '@mailpools/schemas';
import { servicesFile, useLocalStack } from '@mailpools/stack';
import { freshNamespace, plainText, runCommand, sampleEvent } from '@mailpools/testkit';

const release = await useLocalStack();
const env = {
  MAILPOOLS_NAMESPACE: freshNamespace(),
  MAILPOOLS_HTTP_PORT: '0',
  LOG_LEVEL: 'info',
  NO_COLOR: '1',
};
const screens: [string, string][] = [];
const keep = (command: string, text: string, lines = 40) =>
  screens.push([
    command,
    plainText(text)
      .split('\n')
      .filter((l) => l.trim() !== '')
      .slice(0, lines)
      .join('\n'),
  ]);
/** Runs `mailpools <args>` in a pseudo-terminal to its end and keeps its screen. */
async function shown(args: string[], lines = 40): Promise<string> {
  const run = runCommand(args, env, { terminal: true });
  await run.exited();
  keep(`npx mailpools ${args.join(' ')}`, run.output(), lines);
  return run.output();
}

await shown(['doctor']);
const start = runCommand(['start'], env, { terminal: true });
try {
  await start.waitFor(/running; Ctrl-C stops everything/, 180_000);
  for (const { metrics } of JSON.parse(readFileSync(servicesFile(env.MAILPOOLS_NAMESPACE), 'utf8')) as {
    metrics: string;
  }[])
    for (let ready = false; !ready; await new Promise((r) => setTimeout(r, 250)))
      ready = await fetch(metrics.replace('/metrics', '/readyz')).then(
        (r) => r.status === 200,
        () => false,
      );
  keep('npm start', start.output(), 30);

  const tail = runCommand(['tail'], env, { terminal: true });
  await tail.waitFor(/following/, 60_000);
  await shown([
    'feed',
    'test/fixtures/feed/report.eml',
    'test/fixtures/feed/two.mbox',
    '--tenant',
    'contoso',
    '--now',
  ]);
  // A message dated a month back, as a saved .eml often is: feed says the trace will not show it.
  const monthAgo = `${new Date(Date.now() - 30 * 86_400_000).toISOString().slice(0, 10)}T09:00:00Z`;
  await shown(
    ['feed', 'test/fixtures/feed/report.eml', '--tenant', 'contoso', '--time', monthAgo, '--dry-run'],
    3,
  );
  await tail.waitFor(/contoso.*\n.*contoso.*\n.*contoso/, 60_000);
  await new Promise((r) => setTimeout(r, 1_000));
  await tail.stop();
  keep('npx mailpools tail', tail.output());

  for (let i = 0; ; i++) {
    const trace = runCommand(['trace'], env, { terminal: true });
    await trace.exited();
    if (/tenant contoso/.test(trace.output()) || i === 60) {
      keep('npx mailpools trace', trace.output(), 45);
      break;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  await shown(['trace', '--tenant', 'fabrikam']);

  // top while a steady stream flows: 20 messages a second for half a minute.
  const stream = join(mkdtempSync(join(tmpdir(), 'mailpools-tour-')), 'stream.jsonl');
  writeFileSync(
    stream,
    Array.from({ length: 600 }, (_, i) =>
      JSON.stringify(
        toJsonForm('OutboundMessage', { ...sampleEvent(`tour-${i}`, 800, Date.now()), tenantId: 'contoso' }),
      ),
    ).join('\n'),
  );
  const busy = runCommand(['feed', stream, '--now', '--rate', '20'], env);
  await new Promise((r) => setTimeout(r, 12_000));
  await shown(['top', '--once', '--interval', '5']);
  await busy.exited();
} finally {
  await start.stop();
  await release();
}

const page = [
  '# The five-minute tour, as a terminal showed it',
  '',
  '<!-- Recorded by `npm run docs:tour` (docs/record-tour.ts): each command in a pseudo-terminal',
  'against the local stack, colour off. Times, ids and ports change from run to run. -->',
  '',
  "The [README](../README.md)'s tour, command by command: `npm start` in one terminal, the rest in",
  'others. Everything below is what the commands printed. The fixtures send from `contoso.example`,',
  'a reserved name with no A or MX record, so the router sends them to the high-risk pool under',
  '`no-a-no-mx` — as it would any sender domain that cannot receive its bounces. The resolver of',
  'the machine it was recorded on loses about 1 % of UDP queries; each lost one costs the DNS',
  "timeout (`MAILPOOLS_DNS_TIMEOUT_MS`, 1 s), which is what dns-checker's and auth-verifier's batch",
  'p99 show in `top`.',
  '',
  ...screens.flatMap(([command, text]) => [`## \`${command}\``, '', '```', text, '```', '']),
].join('\n');
writeFileSync(new URL('./tour.md', import.meta.url), page);
console.error('wrote docs/tour.md');
console.log(JSON.stringify({ screens: screens.length }));
