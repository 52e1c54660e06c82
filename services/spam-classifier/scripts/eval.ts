// npm run eval:spam — the committed model on the two sets it never learnt from: the corpus's
// "-2" groups and the modern set's holdout/ split (written by other writers than train/), beside
// SpamAssassin 4 on the same messages (its Bayes trained on the corpus's training split, and its
// rules alone); leave-one-writer-out cross-validation over the modern train/ split; and an
// ablation table (each feature family removed in turn, the model retrained). Last line: one JSON
// object. `--no-spamassassin` skips SpamAssassin; `--errors` lists the holdout's mistakes.
import { DEFAULT_POLICY } from '@mailpools/policy';
import { scoreWithSpamAssassin, spamAssassinVersion } from '../eval/spamassassin.ts';
import { DEFAULT_MODEL_PATH } from '../src/classify.ts';
import { type Quality, quality } from '../src/metrics.ts';
import { explain, loadModel, type SpamModel, score, train, type Vector } from '../src/model.ts';
import { featurise, type LabelledExample, loadLabelledMessages } from '../src/training-data.ts';

const threshold = DEFAULT_POLICY.defaults.spam.spamAt;
const flags = new Set(process.argv.slice(2));
const examples = await featurise(loadLabelledMessages());
const trainSet = examples.filter((e) => e.message.trains);
const corpusTest = examples.filter((e) => e.message.source === 'corpus' && !e.message.trains);
const modernTest = examples.filter((e) => e.message.source === 'modern' && !e.message.trains);
const model = loadModel(DEFAULT_MODEL_PATH);
const fresh = train(trainSet);
if (fresh.version !== model.version)
  console.error(
    `warning: the committed model is ${model.version}, but training now gives ${fresh.version}: run npm run train:spam`,
  );

interface Scored {
  spam: boolean;
  score: number;
  predicted: boolean;
}

const judge = (m: SpamModel, set: readonly LabelledExample[]): Scored[] =>
  set.map((e) => {
    const s = score(m, e.x);
    return { spam: e.spam, score: s, predicted: s >= threshold };
  });

interface Figures extends Quality {
  hamJudgedSpam: number;
  ham: number;
  spamJudgedSpam: number;
  spam: number;
  /** Recall at the score above which 1 % of the ham lies: the ranking, whatever the threshold. */
  recallAt1PercentFpr: number;
}

function figures(results: readonly Scored[]): Figures {
  const hamScores = results
    .filter((r) => !r.spam)
    .map((r) => r.score)
    .sort((a, b) => b - a);
  const cut = hamScores[Math.floor(0.01 * hamScores.length)] ?? 1;
  const spam = results.filter((r) => r.spam);
  return {
    ...quality(results),
    hamJudgedSpam: results.filter((r) => !r.spam && r.predicted).length,
    ham: hamScores.length,
    spamJudgedSpam: spam.filter((r) => r.predicted).length,
    spam: spam.length,
    recallAt1PercentFpr: spam.length === 0 ? 0 : spam.filter((r) => r.score > cut).length / spam.length,
  };
}

const ours = { corpus: figures(judge(model, corpusTest)), modern: figures(judge(model, modernTest)) };

// Leave one writer out: each modern train/ writer's messages judged by a model that learnt
// from the corpus and the other writers.
const writers = [
  ...new Set(trainSet.filter((e) => e.message.source === 'modern').map((e) => e.message.writer)),
].sort();
const pooled: Scored[] = [];
for (const writer of writers) {
  const held = trainSet.filter((e) => e.message.source === 'modern' && e.message.writer === writer);
  const foldModel = train(trainSet.filter((e) => !held.includes(e)));
  pooled.push(...judge(foldModel, held));
  console.error(`leave-one-writer-out: ${writer} done`);
}
const crossWriter = figures(pooled);

// Ablation: a family of features removed from every message, the model trained again.
const FAMILIES: readonly [string, RegExp][] = [
  ['body words and pairs (w:, b:)', /^(w|b):/],
  ['subject (s:, subj:)', /^(s|subj):/],
  ['requests and lures (lex:)', /^lex:/],
  ['link facts (url:)', /^url:/],
  ['attachments (att:)', /^att:/],
  ['HTML facts (html:)', /^html:/],
  ['sender and Reply-To (from:, fromname:, replyto:)', /^(from|fromname|replyto):/],
  ['quoted history (quoted:)', /^quoted:/],
  ['money, phone, crypto, shouting, short text (ev:, text:)', /^(ev|text):/],
  ['conjunctions (meta:)', /^meta:/],
  ['addressing (rcpt:, bcc-only)', /^(rcpt|bcc-only)/],
];

function without(x: Vector, family: RegExp): Vector {
  const keep = x.names.flatMap((name, i) => (family.test(name) ? [] : [i]));
  const norm = Math.sqrt(keep.reduce((sum, i) => sum + (x.values[i] as number) ** 2, 0)) || 1;
  return {
    indices: Uint32Array.from(keep, (i) => x.indices[i] as number),
    values: Float32Array.from(keep, (i) => (x.values[i] as number) / norm),
    names: keep.map((i) => x.names[i] as string),
  };
}

const ablation: { family: string; corpus: Figures; modern: Figures }[] = [];
for (const [family, pattern] of FAMILIES) {
  const strip = (set: readonly LabelledExample[]) => set.map((e) => ({ ...e, x: without(e.x, pattern) }));
  const ablated = train(strip(trainSet));
  ablation.push({
    family,
    corpus: figures(judge(ablated, strip(corpusTest))),
    modern: figures(judge(ablated, strip(modernTest))),
  });
  console.error(`ablation: ${family} done`);
}

// SpamAssassin on the same messages: Bayes trained on the corpus's training split ("as the
// baseline has always been"), and its rules alone.
const saVersion = flags.has('--no-spamassassin') ? null : spamAssassinVersion();
const sa: Record<string, Figures> = {};
if (saVersion) {
  const corpusTrain = trainSet.filter((e) => e.message.source === 'corpus');
  const both = [...corpusTest, ...modernTest];
  // One Bayes training, then both sets in one run; the results are split again by position.
  for (const [name, learn] of [
    ['bayes', corpusTrain],
    ['rules', []],
  ] as const) {
    console.error(`SpamAssassin ${name}: ${both.length} messages`);
    const results = await scoreWithSpamAssassin(
      learn.map((e) => ({ text: e.message.raw, spam: e.spam })),
      both.map((e) => ({ text: e.message.raw })),
    );
    const scored = results.map((r, i) => ({
      spam: both[i]?.spam ?? false,
      score: r.score,
      predicted: r.isSpam,
    }));
    sa[`${name}:corpus`] = figures(scored.slice(0, corpusTest.length));
    sa[`${name}:modern`] = figures(scored.slice(corpusTest.length));
  }
} else if (!flags.has('--no-spamassassin')) {
  console.error('SpamAssassin is not installed (apt-get install spamassassin): its rows are left out.');
}

const pct = (v: number) => `${(v * 100).toFixed(1)} %`;
const row = (name: string, q: Figures) =>
  `| ${name} | ${q.hamJudgedSpam} of ${q.ham} (${pct(q.fpr)}) | ${q.spamJudgedSpam} of ${q.spam} (${pct(q.recall)}) | ${q.precision.toFixed(4)} | ${q.f1.toFixed(4)} | ${q.rocAuc.toFixed(4)} | ${pct(q.recallAt1PercentFpr)} |`;
const header =
  '| classifier | ham judged spam | spam judged spam | precision | F1 | ROC AUC | spam caught at 1 % ham |\n|---|---:|---:|---:|---:|---:|---:|';
console.log(`\nthreshold spamAt = ${threshold}; model ${model.version}\n`);
console.log(
  'corpus split (the model learnt from the "-1" groups and modern train/; judged: the "-2" groups)',
);
console.log(header);
console.log(row('mailpools', ours.corpus));
const saRow = (key: string, label: string) => {
  const q = sa[key];
  if (q) console.log(row(`SpamAssassin ${saVersion}, ${label}`, q));
};
saRow('bayes:corpus', 'local tests, Bayes trained on the corpus training split');
saRow('rules:corpus', 'local tests, rules only');
console.log(`\nmodern holdout/ (never trains; ${ours.modern.ham} ham, ${ours.modern.spam} spam)`);
console.log(header);
console.log(row('mailpools', ours.modern));
saRow('bayes:modern', 'local tests, Bayes trained on the corpus training split');
saRow('rules:modern', 'local tests, rules only');
console.log(row(`mailpools, leave-one-writer-out over modern train/ (${writers.join(', ')})`, crossWriter));
console.log('\nablation: each family removed, the model trained again');
console.log(
  '| removed | corpus F1 | corpus ROC AUC | modern ham judged spam | modern spam judged spam | modern ROC AUC |',
);
console.log('|---|---:|---:|---:|---:|---:|');
console.log(
  `| (nothing) | ${ours.corpus.f1.toFixed(4)} | ${ours.corpus.rocAuc.toFixed(4)} | ${pct(ours.modern.fpr)} | ${pct(ours.modern.recall)} | ${ours.modern.rocAuc.toFixed(4)} |`,
);
for (const a of ablation)
  console.log(
    `| ${a.family} | ${a.corpus.f1.toFixed(4)} | ${a.corpus.rocAuc.toFixed(4)} | ${pct(a.modern.fpr)} | ${pct(a.modern.recall)} | ${a.modern.rocAuc.toFixed(4)} |`,
  );

if (flags.has('--errors')) {
  console.log('\nholdout mistakes');
  for (const e of modernTest) {
    const s = score(model, e.x);
    if (s >= threshold === e.spam) continue;
    const top = explain(model, e.x, 4).map((c) => `${c.feature} ${c.weight > 0 ? '+' : ''}${c.weight}`);
    console.log(
      `${e.spam ? 'missed spam' : 'ham judged spam'} ${s.toFixed(3)} ${e.message.id}  ${top.join(', ')}`,
    );
  }
}

const r4 = (v: number) => Number(v.toFixed(4));
console.log(
  JSON.stringify({
    model_version: model.version,
    threshold,
    corpus_precision: r4(ours.corpus.precision),
    corpus_recall: r4(ours.corpus.recall),
    corpus_f1: r4(ours.corpus.f1),
    corpus_fpr: r4(ours.corpus.fpr),
    corpus_roc_auc: r4(ours.corpus.rocAuc),
    modern_precision: r4(ours.modern.precision),
    modern_recall: r4(ours.modern.recall),
    modern_f1: r4(ours.modern.f1),
    modern_fpr: r4(ours.modern.fpr),
    modern_roc_auc: r4(ours.modern.rocAuc),
    modern_recall_at_1pct_fpr: r4(ours.modern.recallAt1PercentFpr),
    cross_writer_fpr: r4(crossWriter.fpr),
    cross_writer_recall: r4(crossWriter.recall),
    cross_writer_roc_auc: r4(crossWriter.rocAuc),
    cross_writer_recall_at_1pct_fpr: r4(crossWriter.recallAt1PercentFpr),
    spamassassin_version: saVersion,
    ...Object.fromEntries(
      Object.entries(sa).flatMap(([key, q]) => {
        const [variant, set] = key.split(':');
        const prefix = `spamassassin_${variant}_${set}`;
        return [
          [`${prefix}_fpr`, r4(q.fpr)],
          [`${prefix}_recall`, r4(q.recall)],
          [`${prefix}_f1`, r4(q.f1)],
          [`${prefix}_roc_auc`, r4(q.rocAuc)],
        ];
      }),
    ),
  }),
);
