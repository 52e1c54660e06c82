// npm run train:spam — rebuilds model/spam-model.bin from the training split (the "-1" groups)
// deterministically: the same data and seed give the same bytes and the same version.
import { progressBar } from '@mailpools/core';
import { DEFAULT_EXTRACT, DEFAULT_MODEL_PATH } from '../src/classify.ts';
import { loadCorpus, signalsOf, TRAIN_GROUPS } from '../src/corpus.ts';
import { extractFeatures } from '../src/features.ts';
import { DEFAULT_TRAIN, saveModel, train, vectorise } from '../src/model.ts';

const started = performance.now();
const messages = loadCorpus().filter((m) => TRAIN_GROUPS.includes(m.group));
const reading = progressBar('features', messages.length);
const examples = [];
for (const [i, message] of messages.entries()) {
  const features = await extractFeatures(message.raw, signalsOf(message.raw), DEFAULT_EXTRACT);
  examples.push({ x: vectorise(features.counts), spam: message.spam });
  reading.update(i + 1);
}
reading.finish(messages.length);
const training = progressBar('training', DEFAULT_TRAIN.stackFolds + 1);
const model = train(examples, { ...DEFAULT_TRAIN, onProgress: (done) => training.update(done) });
training.finish(DEFAULT_TRAIN.stackFolds + 1);
const path = process.argv[2] ?? DEFAULT_MODEL_PATH;
saveModel(model, path);
const spam = examples.filter((e) => e.spam).length;
console.log(
  `trained ${model.version} on ${examples.length} messages (${spam} spam, ${examples.length - spam} ham) in ${((performance.now() - started) / 1000).toFixed(1)} s → ${path}`,
);
console.log(
  JSON.stringify({
    model_version: model.version,
    examples: examples.length,
    seconds: Number(((performance.now() - started) / 1000).toFixed(1)),
  }),
);
