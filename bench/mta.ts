// npm run bench:mta — Haraka in front of the whole pipeline (every stage its own process), one run
// on the local stack. Messages are submitted over SMTP with AUTH at steady offered rates (50, 100,
// 200 a second by default, BENCH_MTA_RATES), each for BENCH_MTA_SECONDS. For each rate: how long
// a submission waited for its 250 (submission to assignment, as the submitting client sees it),
// end to end to the recording destination, how many were deferred for want of a decision, and
// the MTA process's CPU per message; and, for comparison, the client library alone at the lowest
// rate (the pipeline's share of the wait). Last line: one JSON object of the figures.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSubmitter, eventFromSubmission, kafkaTransport } from '@mailpools/client';
import { DECISION_CHAIN, freePort, loadRuntimeConfig, progressBar } from '@mailpools/core';
import { startHaraka, startRecordingDestination, useLocalStack, writeHarakaInstance } from '@mailpools/stack';
import { type ServiceProcess, scrapeMetric, startService, startTestDnsServer } from '@mailpools/testkit';
import nodemailer, { type Transporter } from 'nodemailer';

const RATES = (process.env.BENCH_MTA_RATES ?? '50,100,200').split(',').map(Number);
const SECONDS = Number(process.env.BENCH_MTA_SECONDS ?? 15);
const WARM_UP = 200;
const USERS = 20;
const SERVICES = DECISION_CHAIN;
const POOL_IPS = { NORMAL: '127.0.0.2', HIGH_RISK: '127.0.0.3', RELAY: '127.0.0.4' };
const BODY =
  'Hi Bob,\r\n\r\nI had a look at the build failure from last night. The test in the parser module times out because the fixture file moved; I pushed a fix to the branch, can you review it when you have a minute?\r\n\r\nThanks,\r\nAlice\r\n';

const releaseStack = await useLocalStack();
const namespace = `benchmta${randomUUID().slice(0, 6)}.`;
const dir = mkdtempSync(join(tmpdir(), 'mailpools-bench-mta-'));
const destination = await startRecordingDestination();
const sentAt = new Map<string, number>();
const endToEnd: number[] = [];
const dns = await startTestDnsServer({
  zones: {
    'bench.test': [
      { type: 'A', data: '192.0.2.1' },
      { type: 'MX', data: { preference: 10, exchange: 'mx.bench.test' } },
      { type: 'TXT', data: 'v=spf1 ip4:127.0.0.0/8 -all' },
    ],
    'mx.bench.test': [{ type: 'A', data: destination.host }],
    'elsewhere.test': [{ type: 'MX', data: { preference: 10, exchange: 'mx.bench.test' } }],
  },
});
const policyFile = join(dir, 'policy.json');
writeFileSync(
  policyFile,
  JSON.stringify({
    version: 'bench-mta-1',
    defaults: {
      routing: {
        pools: Object.fromEntries(Object.entries(POOL_IPS).map(([pool, ip]) => [pool, { ips: [{ ip }] }])),
      },
    },
    tenants: {
      bench: {
        directory: { acceptedDomains: ['bench.test'], licenses: 1_000_000 },
        limits: {
          messageRatePerMinute: 100_000,
          defaultPolicy: { externalPerHour: 10_000, internalPerHour: 10_000, perDay: 10_000 },
        },
      },
    },
  }),
);
const env: Record<string, string> = {
  MAILPOOLS_NAMESPACE: namespace,
  MAILPOOLS_PARTITIONS: '3',
  MAILPOOLS_POLICY_FILE: policyFile,
  MAILPOOLS_DNS_SERVERS: `${dns.host}:${dns.port}`,
  LOG_LEVEL: 'warn',
};
const services: ServiceProcess[] = [];
const transports: Transporter[] = [];
let haraka: Awaited<ReturnType<typeof startHaraka>> | undefined;

interface PhaseResult {
  offered_per_s: number;
  accepted_per_s: number;
  submit_p50_ms: number;
  submit_p99_ms: number;
  end_to_end_p50_ms: number;
  end_to_end_p99_ms: number;
  deferred: number;
  mta_cpu_us_per_msg: number;
}

const quantile = (values: number[], q: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length === 0
    ? Number.NaN
    : (sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number);
};

try {
  for (const name of SERVICES) services.push(await startService(name, env));
  const smtpPort = await freePort();
  const metricsPort = await freePort();
  const instance = {
    dir: join(dir, 'haraka'),
    smtpPort,
    users: Object.fromEntries(Array.from({ length: USERS }, (_, i) => [`user${i}@bench.test`, 'bench'])),
    deliveryPort: destination.port,
    metricsPort,
  };
  writeHarakaInstance(instance);
  // BENCH_MTA_PROFILE=<dir>: a CPU profile of the MTA process, written when it stops.
  const profile = process.env.BENCH_MTA_PROFILE;
  haraka = await startHaraka(
    instance,
    profile ? { ...env, NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${profile}` } : env,
  );
  for (let i = 0; i < USERS; i++)
    transports.push(
      nodemailer.createTransport({
        host: '127.0.0.1',
        port: smtpPort,
        secure: false,
        ignoreTLS: true,
        pool: true,
        maxConnections: 8,
        maxMessages: Number.POSITIVE_INFINITY,
        auth: { user: `user${i}@bench.test`, pass: 'bench' },
      }),
    );
  let seen = 0;
  const onDelivery = () => {
    for (; seen < destination.deliveries.length; seen++) {
      const delivery = destination.deliveries[seen];
      const at = delivery ? sentAt.get(delivery.subject) : undefined;
      if (delivery && at !== undefined) endToEnd.push(delivery.receivedAt - at);
    }
  };

  const send = async (i: number, tag: string): Promise<{ ms: number; deferred: boolean }> => {
    const user = `user${i % USERS}@bench.test`;
    const subject = `${tag} ${i}`;
    const raw = Buffer.from(
      `From: ${user}\r\nTo: r${i}@elsewhere.test\r\nSubject: ${subject}\r\nDate: ${new Date().toUTCString()}\r\nMessage-ID: <${tag}.${i}@bench.test>\r\n\r\n${BODY}`,
    );
    const started = performance.now();
    sentAt.set(subject, Date.now());
    try {
      await (transports[i % USERS] as Transporter).sendMail({
        envelope: { from: user, to: [`r${i}@elsewhere.test`] },
        raw,
      });
      return { ms: performance.now() - started, deferred: false };
    } catch (error) {
      if ((error as { responseCode?: number }).responseCode === undefined) throw error;
      return { ms: performance.now() - started, deferred: true };
    }
  };

  const phase = async (rate: number, count: number, tag: string) => {
    const submits: number[] = [];
    let deferred = 0;
    const first = endToEnd.length;
    const cpuBefore = await scrapeMetric(metricsPort, 'process_cpu_seconds_total');
    const started = performance.now();
    const pending: Promise<void>[] = [];
    const bar = progressBar(`${tag}: ${rate} msg/s`, count);
    for (let i = 0; i < count; i++) {
      const due = started + (i / rate) * 1000;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      pending.push(
        send(i, tag).then((r) => {
          submits.push(r.ms);
          if (r.deferred) deferred++;
          bar.update(submits.length);
        }),
      );
    }
    await Promise.all(pending);
    const elapsed = (performance.now() - started) / 1000;
    const deadline = Date.now() + 60_000;
    while (endToEnd.length - first < count - deferred && Date.now() < deadline) {
      onDelivery();
      await new Promise((r) => setTimeout(r, 100));
    }
    bar.finish(submits.length);
    const cpuAfter = await scrapeMetric(metricsPort, 'process_cpu_seconds_total');
    const arrived = endToEnd.slice(first);
    return {
      offered_per_s: rate,
      accepted_per_s: Math.round((count - deferred) / elapsed),
      submit_p50_ms: Math.round(quantile(submits, 0.5) * 10) / 10,
      submit_p99_ms: Math.round(quantile(submits, 0.99) * 10) / 10,
      end_to_end_p50_ms: Math.round(quantile(arrived, 0.5)),
      end_to_end_p99_ms: Math.round(quantile(arrived, 0.99)),
      deferred,
      mta_cpu_us_per_msg: Math.round(((cpuAfter - cpuBefore) * 1e6) / count),
    } satisfies PhaseResult;
  };

  await phase(50, WARM_UP, 'warm-up');
  // The same pipeline through the client library alone (no SMTP, no Haraka), at the lowest rate:
  // the part of the submission latency that is the pipeline's.
  const api = await createSubmitter({
    transport: await kafkaTransport(loadRuntimeConfig({ ...process.env, ...env })),
  });
  const apiRate = RATES[0] ?? 50;
  const apiWaits: number[] = [];
  const apiStarted = performance.now();
  const apiPending: Promise<void>[] = [];
  for (let i = 0; i < apiRate * SECONDS; i++) {
    const wait = apiStarted + (i / apiRate) * 1000 - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const user = `user${i % USERS}@bench.test`;
    const raw = Buffer.from(
      `From: ${user}\r\nSubject: api ${i}\r\nMessage-ID: <api.${i}@bench.test>\r\n\r\n${BODY}`,
    );
    const event = eventFromSubmission(
      {
        tenantId: 'bench',
        origin: 'CLIENT_SUBMISSION',
        submitter: user,
        envelopeSender: user,
        recipients: [`a${i}@elsewhere.test`],
        clientIp: '127.0.0.1',
        helo: 'bench',
        raw,
        acceptedAt: Date.now(),
      },
      { internalDomains: ['bench.test'], maxRawBytes: 262_144 },
    );
    const t0 = performance.now();
    apiPending.push(api.submit(event).then(() => void apiWaits.push(performance.now() - t0)));
  }
  await Promise.all(apiPending);
  await api.close();
  process.stderr.write(
    `client library alone at ${apiRate}/s: p50 ${quantile(apiWaits, 0.5).toFixed(0)} ms, p99 ${quantile(apiWaits, 0.99).toFixed(0)} ms\n`,
  );
  const results: PhaseResult[] = [];
  for (const rate of RATES) {
    const result = await phase(rate, rate * SECONDS, `rate${rate}`);
    results.push(result);
    process.stderr.write(`${JSON.stringify(result)}\n`);
  }
  const held = results.filter((r) => r.deferred === 0 && r.accepted_per_s >= 0.95 * r.offered_per_s);
  const figures: Record<string, number | string> = {
    machine: `${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB`,
    seconds_per_rate: SECONDS,
    highest_rate_held_msgs_per_s: Math.max(0, ...held.map((r) => r.offered_per_s)),
    [`api_at_${apiRate}_p50_ms`]: Math.round(quantile(apiWaits, 0.5)),
    [`api_at_${apiRate}_p99_ms`]: Math.round(quantile(apiWaits, 0.99)),
  };
  for (const r of results)
    for (const [key, value] of Object.entries(r))
      if (key !== 'offered_per_s') figures[`at_${r.offered_per_s}_${key}`] = value;
  console.log(JSON.stringify(figures));
} finally {
  for (const transport of transports) transport.close();
  await haraka?.stop();
  for (const service of services) await service.stop();
  await destination.close();
  await dns.close();
  await releaseStack();
}
