// An operator at a terminal, against the real stack: `mailpools start` in a pseudo-terminal
// (readable, coloured lines), `feed` saying which event time each message got, `tail` showing a
// fed message's line within seconds, `top` showing the pools' rates move while events are fed,
// `trace` with no filter, and `doctor` naming a taken port and a directory the postgres user
// cannot enter — each run as a person would: in a terminal, plainly, and with --json.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { toJsonForm } from '@mailpools/schemas';
import { servicesFile } from '@mailpools/stack';
import {
  freePort,
  hasColour,
  plainText,
  type RunningCommand,
  runCommand,
  sampleEvent,
  testConfig,
} from '@mailpools/testkit';

const config = testConfig();
const env = { MAILPOOLS_NAMESPACE: config.namespace, MAILPOOLS_HTTP_PORT: '0', LOG_LEVEL: 'info' };
const dir = mkdtempSync(join(tmpdir(), 'mailpools-terminal-'));
let pipeline: RunningCommand;

/** `count` events of one tenant, stamped now, as a JSON-lines file `mailpools feed` reads. */
function eventsFile(name: string, tenantId: string, count: number): string {
  const path = join(dir, `${name}.jsonl`);
  const lines = Array.from({ length: count }, (_, i) =>
    JSON.stringify(
      toJsonForm('OutboundMessage', { ...sampleEvent(`${name}-${i}`, 300, Date.now()), tenantId }),
    ),
  );
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

before(async () => {
  pipeline = runCommand(['start'], env, { terminal: true });
  await pipeline.waitFor(/running; Ctrl-C stops everything/, 180_000);
  const services = JSON.parse(readFileSync(servicesFile(config.namespace), 'utf8')) as { metrics: string }[];
  for (const { metrics } of services)
    for (let ready = false; !ready; await new Promise((r) => setTimeout(r, 250)))
      ready = await fetch(metrics.replace('/metrics', '/readyz')).then(
        (r) => r.status === 200,
        () => false,
      );
});

after(async () => {
  assert.equal(await pipeline.stop(), 0, 'Ctrl-C stops the pipeline cleanly');
  rmSync(dir, { recursive: true, force: true });
});

test('start in a terminal: readable, coloured lines, one per event, and no JSON', () => {
  const seen = pipeline.output();
  assert.ok(hasColour(seen), 'coloured');
  const lines = plainText(seen)
    .split('\n')
    .filter((l) => l.trim() !== '');
  assert.ok(!lines.some((l) => l.startsWith('{"level"')), 'no JSON lines on a terminal');
  assert.ok(
    lines.some((l) => /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: pool-router: /.test(l)),
    'a pino-pretty line per event',
  );
  assert.ok(!lines.some((l) => /^\[[\d:.]+\] (ERROR|FATAL):/.test(l)), 'a healthy start logs no error');
});

test('tail shows a fed message within seconds: in a terminal, plainly and as JSON', {
  timeout: 120_000,
}, async () => {
  const tenant = `tail-${Date.now()}`;
  const inTerminal = runCommand(['tail', '--tenant', tenant], env, { terminal: true });
  const plain = runCommand(['tail', '--tenant', tenant], env);
  const json = runCommand(['tail', '--tenant', tenant, '--json'], env);
  try {
    for (const c of [inTerminal, plain, json]) await c.waitFor(/following .*mail\.outbound\.routed/, 60_000);
    const fed = runCommand(['feed', eventsFile('tail', tenant, 1)], env);
    assert.equal(await fed.exited(), 0, fed.output());
    const fedAt = Date.now();
    const line = new RegExp(`${tenant} +contoso\\.example +(NORMAL|HIGH_RISK) +\\S+ +\\d`);
    await inTerminal.waitFor(line, 30_000);
    const seconds = (Date.now() - fedAt) / 1000;
    assert.ok(seconds < 30, `within seconds (${seconds.toFixed(1)} s)`);
    assert.ok(hasColour(inTerminal.output()), 'the pool is coloured on a terminal');
    assert.match(
      plainText(inTerminal.output()),
      /event time \(UTC\) +tenant +sender domain +pool +rule +latency/,
    );
    await plain.waitFor(line, 30_000);
    assert.ok(!hasColour(plain.output()), 'no colour through a pipe');
    await json.waitFor(/"messageId":"tail-0"/, 30_000);
    const record = JSON.parse(
      json
        .output()
        .split('\n')
        .find((l) => l.startsWith('{')) as string,
    );
    assert.equal(record.tenantId, tenant);
  } finally {
    for (const c of [inTerminal, plain, json]) assert.equal(await c.stop(), 0);
  }
});

test('top shows the pools’ rates moving while events are fed', { timeout: 180_000 }, async () => {
  const tenant = `top-${Date.now()}`;
  const live = runCommand(['top', '--interval', '1'], env, { terminal: true });
  const feeding = runCommand(['feed', eventsFile('top', tenant, 1200), '--now', '--rate', '40'], env);
  try {
    await live.waitFor(/pool +per s +share/, 30_000);
    // On the terminal: a refresh shows NORMAL (or HIGH_RISK) above zero once routing is under way.
    // (the whole view: up to its last line, so a half-drawn refresh does not count)
    await live.waitFor(
      /(NORMAL|HIGH_RISK) +([1-9]\d*\.\d|0\.[1-9])[\s\S]*stage +records\/s +lag +batch p99 ms +ready[\s\S]*end to end/,
      60_000,
    );
    assert.ok(live.output().includes(`${String.fromCharCode(27)}[2J`), 'redrawn in place');
    // The same numbers as JSON, through a pipe, while the feed still runs.
    const json = runCommand(['top', '--once', '--json', '--interval', '3'], env);
    assert.equal(await json.exited(), 0, json.output());
    const view = JSON.parse(json.output().trim().split('\n').pop() as string) as {
      poolsPerSecond: Record<string, number>;
      stages: Record<string, { recordsPerSecond: number }>;
    };
    const routed = Object.values(view.poolsPerSecond).reduce((s, v) => s + v, 0);
    assert.ok(routed > 1, `assignments per second while feeding: ${routed}`);
    assert.ok((view.stages['spam-classifier']?.recordsPerSecond ?? 0) > 1, 'the stages move too');
  } finally {
    assert.equal(await live.stop(), 0);
    await feeding.stop();
  }
});

test('feed says where each event time came from, warns when the trace will not show it; trace without a filter shows the latest', {
  timeout: 120_000,
}, async () => {
  const month = new Date(Date.now() - 30 * 86_400_000);
  const oldMail = join(dir, 'old.eml');
  writeFileSync(
    oldMail,
    readFileSync('test/fixtures/feed/report.eml', 'utf8').replace(
      /^Date: .*$/m,
      `Date: ${month.toUTCString()}`,
    ),
  );
  const old = runCommand(['feed', oldMail, '--tenant', 'old-mail', '--dry-run'], env);
  assert.equal(await old.exited(), 0);
  const stamped = `${month.toISOString().slice(0, 19)}Z`;
  assert.match(old.output(), new RegExp(`event time ${stamped}, from its Date header`));
  assert.match(
    old.output(),
    /warning: 1 event\(s\) are older than the trace's 10 days .* --now stamps the current time/,
  );
  const now = runCommand(['feed', 'test/fixtures/feed/report.eml', '--tenant', 'now-mail', '--now'], env);
  assert.equal(await now.exited(), 0, now.output());
  assert.match(now.output(), /event time \S+, from --now/);
  assert.doesNotMatch(now.output(), /warning/);

  for (let i = 0; ; i++) {
    const run = runCommand(['trace'], { ...env, DATABASE_URL: config.databaseUrl });
    if ((await run.exited()) === 0 && /tenant now-mail/.test(run.output())) {
      assert.match(run.output(), /the latest \d+ assignments, newest first/);
      break;
    }
    assert.ok(i < 60, `the fed message reaches the trace:\n${run.output()}`);
    await new Promise((r) => setTimeout(r, 500));
  }
  const none = runCommand(['trace', '--tenant', 'nobody-here'], { ...env, DATABASE_URL: config.databaseUrl });
  assert.equal(await none.exited(), 0);
  assert.match(none.output(), /no matching assignments: event time \S+ to \S+, tenant=nobody-here\./);
  assert.match(none.output(), /Widen it with --since/);
});

test('doctor names a taken port and a directory the postgres user cannot enter; exit 1; --json is the same', {
  timeout: 120_000,
}, async () => {
  const taken = createServer();
  const port = await freePort();
  await new Promise<void>((resolve) => taken.listen(port, '127.0.0.1', resolve));
  const secret = mkdtempSync(join(tmpdir(), 'mailpools-private-')); // 0700: root only
  const doctorEnv = {
    ...env,
    MAILPOOLS_STACK_DIR: join(dir, 'stack'),
    MAILPOOLS_KAFKA_PORT: String(port),
    MAILPOOLS_POSTGRES_DATA_DIR: join(secret, 'postgres'),
    DATABASE_URL: undefined, // the stack's own PostgreSQL, whose data directory is checked
  };
  try {
    const inTerminal = runCommand(['doctor'], doctorEnv, { terminal: true });
    assert.equal(await inTerminal.exited(), 1);
    const text = plainText(inTerminal.output());
    assert.match(
      text,
      new RegExp(
        `FAIL +port ${port} +taken .*\\n.*→ stop what listens there, or set MAILPOOLS_KAFKA_PORT to a free port`,
      ),
    );
    if (process.getuid?.() === 0)
      assert.match(
        text,
        new RegExp(`FAIL +postgres data directory +the postgres user .* cannot enter ${secret}`),
      );
    assert.match(text, / ok +node +Node 24/);
    assert.ok(hasColour(inTerminal.output()));
    const json = runCommand(['doctor', '--json'], doctorEnv);
    assert.equal(await json.exited(), 1);
    const report = JSON.parse(json.output()) as {
      ok: boolean;
      checks: { name: string; ok: boolean; fix?: string }[];
    };
    assert.equal(report.ok, false);
    assert.ok(
      report.checks.some(
        (c) => c.name === `port ${port}` && !c.ok && c.fix?.includes('MAILPOOLS_KAFKA_PORT'),
      ),
    );
  } finally {
    taken.close();
    rmSync(secret, { recursive: true, force: true });
  }
});
