// npm run train:spam — rebuilds model/spam-model.bin from everything that may train (the corpus's
// "-1" groups and the modern set's train/ split), deterministically: the same data and seed give
// the same bytes and the same version. The operating point is placed on the modern ham.
import { progressBar } from '@mailpools/core';
import { DEFAULT_MODEL_PATH } from '../src/classify.ts';
import { DEFAULT_TRAIN, saveModel, train } from '../src/model.ts';
import { featurise, loadLabelledMessages } from '../src/training-data.ts';

const started = performance.now();
const examples = await featurise(loadLabelledMessages().filter((m) => m.trains));
const training = progressBar('training', DEFAULT_TRAIN.stackFolds + 1);
const model = train(examples, { ...DEFAULT_TRAIN, onProgress: (done) => training.update(done) });
training.finish(DEFAULT_TRAIN.stackFolds + 1);
const path = process.argv[2] ?? DEFAULT_MODEL_PATH;
saveModel(model, path);
const count = (source: string, spam: boolean) =>
  examples.filter((e) => e.message.source === source && e.spam === spam).length;
const seconds = Number(((performance.now() - started) / 1000).toFixed(1));
console.log(
  `trained ${model.version} on ${examples.length} messages (corpus ${count('corpus', true)} spam + ${count('corpus', false)} ham, modern ${count('modern', true)} spam + ${count('modern', false)} ham) in ${seconds} s → ${path}`,
);
console.log(JSON.stringify({ model_version: model.version, examples: examples.length, seconds }));
