// npm run eval:spam — quality of the committed model on the later "-2" groups, beside
// SpamAssassin 4 (its Bayes trained on the same "-1" split) on the same messages, plus 10-fold
// stratified cross-validation over the whole corpus. Last line: one JSON object.

import { progressBar } from '@mailpools/core';
import { DEFAULT_POLICY } from '@mailpools/policy';
import { scoreWithSpamAssassin, spamAssassinVersion } from '../eval/spamassassin.ts';
import { DEFAULT_EXTRACT, DEFAULT_MODEL_PATH } from '../src/classify.ts';
import { type CorpusMessage, EVAL_GROUPS, loadCorpus, signalsOf, TRAIN_GROUPS } from '../src/corpus.ts';
import { extractFeatures } from '../src/features.ts';
import { type Quality, quality } from '../src/metrics.ts';
import {
  DEFAULT_TRAIN,
  type Example,
  loadModel,
  score,
  stratifiedFolds,
  train,
  vectorise,
} from '../src/model.ts';

const threshold = DEFAULT_POLICY.defaults.spam.spamAt;
const corpus = loadCorpus();
const reading = progressBar('features', corpus.length);
const examples: (Example & { message: CorpusMessage })[] = [];
for (const [i, message] of corpus.entries()) {
  const features = await extractFeatures(message.raw, signalsOf(message.raw), DEFAULT_EXTRACT);
  examples.push({ x: vectorise(features.counts), spam: message.spam, message });
  reading.update(i + 1);
}
reading.finish(corpus.length);

const trainSet = examples.filter((e) => TRAIN_GROUPS.includes(e.message.group));
const evalSet = examples.filter((e) => EVAL_GROUPS.includes(e.message.group));
const model = loadModel(DEFAULT_MODEL_PATH);
const ours = quality(
  evalSet.map((e) => {
    const s = score(model, e.x);
    return { spam: e.spam, score: s, predicted: s >= threshold };
  }),
);

let spamAssassin: Quality | undefined;
const saVersion = spamAssassinVersion();
if (saVersion) {
  const scoring = progressBar('SpamAssassin', evalSet.length);
  const results = await scoreWithSpamAssassin(
    trainSet.map((e) => ({ text: e.message.raw, spam: e.spam })),
    evalSet.map((e) => ({ text: e.message.raw })),
    { onProgress: (done) => scoring.update(done) },
  );
  scoring.finish(evalSet.length);
  spamAssassin = quality(
    results.map((r, i) => ({ spam: evalSet[i]?.spam ?? false, score: r.score, predicted: r.isSpam })),
  );
} else {
  console.error('SpamAssassin is not installed (apt-get install spamassassin): its column is left out.');
}

const folds = stratifiedFolds(examples, 10, DEFAULT_TRAIN.seed);
const crossValidation = progressBar('10-fold CV', 10);
const pooled: { spam: boolean; score: number; predicted: boolean }[] = [];
for (let k = 0; k < 10; k++) {
  const foldModel = train(
    examples.filter((_, i) => folds[i] !== k),
    DEFAULT_TRAIN,
  );
  examples.forEach((e, i) => {
    if (folds[i] !== k) return;
    const s = score(foldModel, e.x);
    pooled.push({ spam: e.spam, score: s, predicted: s >= threshold });
  });
  crossValidation.update(k + 1);
}
crossValidation.finish(10);
const cv = quality(pooled);

const row = (name: string, q: Quality) =>
  `| ${name} | ${q.precision.toFixed(4)} | ${q.recall.toFixed(4)} | ${q.f1.toFixed(4)} | ${(q.fpr * 100).toFixed(2)} % | ${q.rocAuc.toFixed(4)} | ${q.n} |`;
console.log('');
console.log(
  `evaluation set: ${EVAL_GROUPS.join(' + ')}; training set: ${TRAIN_GROUPS.join(' + ')}; threshold ${threshold}`,
);
console.log('| classifier | precision | recall | F1 | false-positive rate | ROC AUC | messages |');
console.log('|---|---:|---:|---:|---:|---:|---:|');
console.log(row(`mailpools ${model.version}`, ours));
if (spamAssassin)
  console.log(row(`SpamAssassin ${saVersion} (local tests, Bayes on the training split)`, spamAssassin));
console.log(row('mailpools, 10-fold stratified CV over the whole corpus', cv));
const round = (v: number) => Number(v.toFixed(4));
console.log(
  JSON.stringify({
    model_version: model.version,
    threshold,
    precision: round(ours.precision),
    recall: round(ours.recall),
    f1: round(ours.f1),
    fpr: round(ours.fpr),
    roc_auc: round(ours.rocAuc),
    spamassassin_precision: spamAssassin ? round(spamAssassin.precision) : null,
    spamassassin_recall: spamAssassin ? round(spamAssassin.recall) : null,
    spamassassin_f1: spamAssassin ? round(spamAssassin.f1) : null,
    spamassassin_fpr: spamAssassin ? round(spamAssassin.fpr) : null,
    spamassassin_roc_auc: spamAssassin ? round(spamAssassin.rocAuc) : null,
    cv_f1: round(cv.f1),
    cv_fpr: round(cv.fpr),
    cv_roc_auc: round(cv.rocAuc),
  }),
);
