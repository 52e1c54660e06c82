// npm run bench:spam — messages/s on one core scoring the corpus through the service's own
// classify() (MIME parsing, features, model), and the p99 per message. Last line: one JSON object.
import { DEFAULT_POLICY } from '@mailpools/policy';
import { type OutboundMessage, unenriched } from '@mailpools/schemas';
import { classify, DEFAULT_EXTRACT, DEFAULT_MODEL_PATH } from '../src/classify.ts';
import { loadCorpus, signalsOf } from '../src/corpus.ts';
import { loadModel } from '../src/model.ts';

const deps = { model: loadModel(DEFAULT_MODEL_PATH), policy: () => DEFAULT_POLICY, extract: DEFAULT_EXTRACT };
const events: OutboundMessage[] = loadCorpus().map((m, i) => {
  const signals = signalsOf(m.raw);
  return {
    messageId: `bench-${i}`,
    tenantId: 'bench',
    eventTime: 0,
    submitter: 'a@example.com',
    envelopeSender: 'a@example.com',
    fromHeader: 'a@example.com',
    recipients: signals.recipientAddresses.map((address) => ({ address, scope: 'EXTERNAL' as const })),
    clientIp: '127.0.0.1',
    helo: 'localhost',
    connector: null,
    origin: 'CLIENT_SUBMISSION',
    messageClass: 'NORMAL',
    dsn: null,
    raw: m.raw,
    rawTruncated: false,
    rawSize: m.raw.length,
    ...unenriched(),
  };
});
for (const event of events.slice(0, 500)) await classify(event, deps); // warm up the JIT
const times: number[] = [];
const started = performance.now();
for (let pass = 0; pass < 2; pass++) {
  for (const event of events) {
    const t0 = performance.now();
    await classify(event, deps);
    times.push(performance.now() - t0);
  }
}
const seconds = (performance.now() - started) / 1000;
times.sort((a, b) => a - b);
const pct = (p: number) => times[Math.min(times.length - 1, Math.floor(p * times.length))] ?? 0;
const rate = times.length / seconds;
const bytes = events.reduce((sum, e) => sum + e.raw.length, 0) / events.length;
console.log(
  `scored ${times.length} corpus messages (mean ${Math.round(bytes)} bytes) on one core in ${seconds.toFixed(1)} s`,
);
console.log(
  `| messages/s per core | p50 ms | p99 ms | max ms |\n|---:|---:|---:|---:|\n| ${Math.round(rate)} | ${pct(0.5).toFixed(3)} | ${pct(0.99).toFixed(3)} | ${(times[times.length - 1] ?? 0).toFixed(3)} |`,
);
console.log(
  JSON.stringify({
    messages_per_s_per_core: Math.round(rate),
    p50_ms: Number(pct(0.5).toFixed(3)),
    p99_ms: Number(pct(0.99).toFixed(3)),
    max_ms: Number((times[times.length - 1] ?? 0).toFixed(3)),
    messages: times.length,
  }),
);
