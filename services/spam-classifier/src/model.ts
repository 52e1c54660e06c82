// Logistic regression on hashed features (the hashing trick keeps the model a fixed-size array
// whatever the vocabulary), trained with AdaGrad; deterministic for a given seed and data.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { seededRandom } from '@mailpools/core';

export const HASH_BITS = 20;
const DIMS = 1 << HASH_BITS;
const MASK = DIMS - 1;
const MAGIC = 'MPSPAM1\n';

/**
 * Two linear models over the same hashed features, stacked: logistic regression (discriminative,
 * good precision) and naive Bayes (generative, good recall on unseen spam). The stacking weights
 * are fitted on out-of-fold predictions, never on the data the base models learned from.
 */
export interface SpamModel {
  readonly version: string;
  readonly lrBias: number;
  /** Logistic-regression weight per hashed feature; features never seen weigh 0. */
  readonly lrWeights: Float32Array;
  readonly nbBias: number;
  /** Naive Bayes log-likelihood ratio per hashed feature present. */
  readonly nbWeights: Float32Array;
  /** score = sigmoid(stack[0] + stack[1]·z_lr + stack[2]·clip(z_nb)/NB_SCALE) */
  readonly stack: readonly [number, number, number];
  readonly meta: Readonly<Record<string, string | number>>;
}

/** NB log-odds grow with message length; clipped and scaled they stay one vote among two. */
const NB_CLIP = 20;
const NB_SCALE = 10;

/** FNV-1a, 32 bit: fast, stable across runs and platforms. */
export function hashFeature(name: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    hash ^= name.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) & MASK;
}

export interface Vector {
  readonly indices: Uint32Array;
  readonly values: Float32Array;
  readonly names: readonly string[];
}

/** Words, word pairs and subject words: the one family whose size grows with the message. */
const isText = (name: string) => name.charCodeAt(1) === 58 && 'wbs'.includes(name[0] as string);

/**
 * Sub-linear counts (1 + ln n). The text features are L2-normalised together, so long messages do
 * not shout; every other feature (a link fact, a request, an attachment) keeps its own weight
 * scaled by EVIDENCE_SCALE, so that it counts as much in a long message as in a short one.
 */
export const EVIDENCE_SCALE = Number(process.env.EVS ?? 0.5);

export function vectorise(counts: ReadonlyMap<string, number>): Vector {
  const names = [...counts.keys()];
  const indices = new Uint32Array(names.length);
  const values = new Float32Array(names.length);
  let norm = 0;
  for (const [i, name] of names.entries()) {
    const value = 1 + Math.log(counts.get(name) ?? 1);
    indices[i] = hashFeature(name);
    values[i] = value;
    if (isText(name)) norm += value * value;
  }
  norm = Math.sqrt(norm) || 1;
  for (let i = 0; i < values.length; i++)
    values[i] = (values[i] as number) * (isText(names[i] as string) ? 1 / norm : EVIDENCE_SCALE);
  return { indices, values, names };
}

function dot(weights: Float32Array, bias: number, x: Vector): number {
  let z = bias;
  for (let i = 0; i < x.indices.length; i++)
    z += (weights[x.indices[i] as number] as number) * (x.values[i] as number);
  return z;
}

function nbLogOdds(weights: Float32Array, bias: number, x: Vector): number {
  let z = bias;
  for (let i = 0; i < x.indices.length; i++) z += weights[x.indices[i] as number] as number;
  return Math.max(-NB_CLIP, Math.min(NB_CLIP, z)) / NB_SCALE;
}

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

/** The log-odds of a score, kept finite at 0 and 1. */
export function logOdds(p: number): number {
  const q = Math.min(1 - 1e-9, Math.max(1e-9, p));
  return Math.log(q / (1 - q));
}

export function score(model: SpamModel, x: Vector): number {
  const [c, a, b] = model.stack;
  return sigmoid(
    c + a * dot(model.lrWeights, model.lrBias, x) + b * nbLogOdds(model.nbWeights, model.nbBias, x),
  );
}

/** The features that pushed the score most, with their contribution to the log-odds. */
export function explain(model: SpamModel, x: Vector, top = 5): { feature: string; weight: number }[] {
  const [, a, b] = model.stack;
  // A single pass keeping the `top` largest: sorting every feature of every message costs more.
  const best: { feature: string; weight: number }[] = [];
  for (let i = 0; i < x.names.length; i++) {
    const h = x.indices[i] as number;
    const weight =
      a * (model.lrWeights[h] as number) * (x.values[i] as number) +
      (b * (model.nbWeights[h] as number)) / NB_SCALE;
    if (best.length === top && Math.abs(weight) <= Math.abs((best[top - 1] as { weight: number }).weight))
      continue;
    let at = best.length;
    while (at > 0 && Math.abs((best[at - 1] as { weight: number }).weight) < Math.abs(weight)) at--;
    best.splice(at, 0, { feature: x.names[i] as string, weight });
    if (best.length > top) best.pop();
  }
  return best.map((c) => ({ feature: c.feature, weight: Number(c.weight.toFixed(4)) }));
}

export interface TrainOptions {
  epochs: number;
  learningRate: number;
  l2: number;
  seed: number;
  /** Naive Bayes additive smoothing. */
  nbAlpha: number;
  /** Folds for the out-of-fold predictions the stacking weights are fitted on. */
  stackFolds: number;
  /** Features seen in fewer training messages than this get no weight. */
  minDocs: number;
  /**
   * The operating point: the score 0.5 is placed where this share of the training ham, scored
   * out of fold, would be judged spam. Choosing it on training data keeps the evaluation honest.
   */
  targetFpr: number;
  onProgress?: (done: number, total: number) => void;
}

export const DEFAULT_TRAIN: TrainOptions = {
  epochs: 12,
  learningRate: 0.5,
  l2: 1e-6,
  seed: 20261123,
  nbAlpha: 0.1,
  stackFolds: 5,
  minDocs: 3,
  targetFpr: 0.005,
};

export interface Example {
  readonly x: Vector;
  readonly spam: boolean;
  /** How much this example counts in training (1 unless given). */
  readonly weight?: number;
  /**
   * The operating point is placed on these examples' ham only, when any example says so: the
   * mail whose false positives the threshold must bound.
   */
  readonly calibrate?: boolean;
}

function trainLogistic(
  examples: readonly Example[],
  options: TrainOptions,
  random: () => number,
): { weights: Float32Array; bias: number } {
  const weights = new Float32Array(DIMS);
  const gradSquares = new Float32Array(DIMS);
  let bias = 0;
  let biasGrad = 0;
  const order = examples.map((_, i) => i);
  const total = examples.reduce((sum, e) => sum + (e.weight ?? 1), 0);
  const spamShare = examples.reduce((sum, e) => sum + (e.spam ? (e.weight ?? 1) : 0), 0) / Math.max(1, total);
  const spamWeight = (1 - spamShare) / Math.max(spamShare, 1e-9); // balance the classes
  for (let epoch = 0; epoch < options.epochs; epoch++) {
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [order[i], order[j]] = [order[j] as number, order[i] as number];
    }
    for (const index of order) {
      const { x, spam, weight = 1 } = examples[index] as Example;
      const p = sigmoid(dot(weights, bias, x));
      const g = (p - (spam ? 1 : 0)) * (spam ? spamWeight : 1) * weight;
      for (let k = 0; k < x.indices.length; k++) {
        const h = x.indices[k] as number;
        const grad = g * (x.values[k] as number) + options.l2 * (weights[h] as number);
        gradSquares[h] = (gradSquares[h] as number) + grad * grad;
        weights[h] =
          (weights[h] as number) -
          (options.learningRate * grad) / Math.sqrt((gradSquares[h] as number) + 1e-8);
      }
      biasGrad += g * g;
      bias -= (options.learningRate * g) / Math.sqrt(biasGrad + 1e-8);
    }
  }
  return { weights, bias };
}

function trainBayes(examples: readonly Example[], alpha: number): { weights: Float32Array; bias: number } {
  const spamCounts = new Float64Array(DIMS);
  const hamCounts = new Float64Array(DIMS);
  let spamTotal = 0;
  let hamTotal = 0;
  let spamDocs = 0;
  let hamDocs = 0;
  const seen = new Set<number>();
  for (const { x, spam, weight = 1 } of examples) {
    for (const h of x.indices) {
      seen.add(h);
      if (spam) spamCounts[h] = (spamCounts[h] as number) + weight;
      else hamCounts[h] = (hamCounts[h] as number) + weight;
    }
    if (spam) {
      spamTotal += x.indices.length * weight;
      spamDocs += weight;
    } else {
      hamTotal += x.indices.length * weight;
      hamDocs += weight;
    }
  }
  const vocabulary = seen.size;
  const weights = new Float32Array(DIMS);
  for (const h of seen) {
    const pSpam = ((spamCounts[h] as number) + alpha) / (spamTotal + alpha * vocabulary);
    const pHam = ((hamCounts[h] as number) + alpha) / (hamTotal + alpha * vocabulary);
    weights[h] = Math.log(pSpam / pHam);
  }
  return { weights, bias: Math.log(Math.max(spamDocs, 1) / Math.max(hamDocs, 1)) };
}

/** Fits the three stacking weights by full-batch gradient descent on out-of-fold log-odds. */
function fitStack(points: readonly { lr: number; nb: number; spam: boolean }[]): [number, number, number] {
  let c = 0;
  let a = 1;
  let b = 1;
  for (let step = 0; step < 3_000; step++) {
    let gc = 0;
    let ga = 0;
    let gb = 0;
    for (const p of points) {
      const g = sigmoid(c + a * p.lr + b * p.nb) - (p.spam ? 1 : 0);
      gc += g;
      ga += g * p.lr;
      gb += g * p.nb;
    }
    const n = points.length;
    c -= (0.5 * gc) / n;
    a -= (0.5 * ga) / n;
    b -= (0.5 * gb) / n;
  }
  return [c, a, b];
}

/** Shifts the intercept so that score 0.5 sits at the out-of-fold ham quantile 1 - targetFpr. */
function placeOperatingPoint(
  stack: [number, number, number],
  points: readonly { lr: number; nb: number; spam: boolean }[],
  targetFpr: number,
): [number, number, number] {
  const [c, a, b] = stack;
  const ham = points.filter((p) => !p.spam).map((p) => c + a * p.lr + b * p.nb);
  if (ham.length === 0) return stack;
  ham.sort((x, y) => y - x);
  const allowed = Math.floor(targetFpr * ham.length); // ham that may score at or above the point
  const edge = (ham[allowed] as number) + 1e-6; // just above the first ham that must stay below
  return [c - Math.max(edge, 0), a, b]; // never move the point below the calibrated 0.5
}

/** Stratified folds: the same share of spam in each, assigned by a seeded shuffle. */
export function stratifiedFolds<T extends { spam: boolean }>(
  items: readonly T[],
  folds: number,
  seed: number,
): number[] {
  const random = seededRandom(seed);
  const fold = new Array<number>(items.length).fill(0);
  for (const label of [true, false]) {
    const indices = items.flatMap((item, i) => (item.spam === label ? [i] : []));
    for (let i = indices.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [indices[i], indices[j]] = [indices[j] as number, indices[i] as number];
    }
    indices.forEach((index, k) => {
      fold[index] = k % folds;
    });
  }
  return fold;
}

/** Keeps only features seen in at least `minDocs` training messages: one-off tokens are noise. */
function pruneRare(examples: readonly Example[], minDocs: number): Example[] {
  const docs = new Map<number, number>();
  for (const { x } of examples) for (const h of x.indices) docs.set(h, (docs.get(h) ?? 0) + 1);
  return examples.map(({ x, ...rest }) => {
    const keep = [...x.indices.keys()].filter((i) => (docs.get(x.indices[i] as number) ?? 0) >= minDocs);
    return {
      ...rest,
      x: {
        indices: Uint32Array.from(keep, (i) => x.indices[i] as number),
        values: Float32Array.from(keep, (i) => x.values[i] as number),
        names: keep.map((i) => x.names[i] as string),
      },
    };
  });
}

export function train(allExamples: readonly Example[], options: TrainOptions = DEFAULT_TRAIN): SpamModel {
  const examples = pruneRare(allExamples, options.minDocs);
  const random = seededRandom(options.seed);
  const total = options.stackFolds + 1;
  const fold = stratifiedFolds(examples, options.stackFolds, options.seed);
  const points: { lr: number; nb: number; spam: boolean; calibrate: boolean }[] = [];
  for (let k = 0; k < options.stackFolds; k++) {
    const learn = examples.filter((_, i) => fold[i] !== k);
    const lr = trainLogistic(learn, options, random);
    const nb = trainBayes(learn, options.nbAlpha);
    examples.forEach((e, i) => {
      if (fold[i] === k)
        points.push({
          lr: dot(lr.weights, lr.bias, e.x),
          nb: nbLogOdds(nb.weights, nb.bias, e.x),
          spam: e.spam,
          calibrate: e.calibrate === true,
        });
    });
    options.onProgress?.(k + 1, total);
  }
  const calibration = points.some((p) => p.calibrate) ? points.filter((p) => p.calibrate) : points;
  const stack = placeOperatingPoint(fitStack(points), calibration, options.targetFpr);
  const lr = trainLogistic(examples, options, random);
  const nb = trainBayes(examples, options.nbAlpha);
  options.onProgress?.(total, total);
  const meta = { hashBits: HASH_BITS, epochs: options.epochs, seed: options.seed, examples: examples.length };
  return {
    version: versionOf(lr.weights, nb.weights, stack),
    lrBias: lr.bias,
    lrWeights: lr.weights,
    nbBias: nb.bias,
    nbWeights: nb.weights,
    stack,
    meta,
  };
}

function versionOf(lrWeights: Float32Array, nbWeights: Float32Array, stack: readonly number[]): string {
  const hash = createHash('sha256')
    .update(new Uint8Array(lrWeights.buffer))
    .update(new Uint8Array(nbWeights.buffer))
    .update(stack.join(','))
    .digest('hex');
  return `spam-lrnb-${hash.slice(0, 12)}`;
}

function sparse(weights: Float32Array): { indices: Uint32Array; values: Float32Array } {
  const nonZero: number[] = [];
  for (let i = 0; i < weights.length; i++) if (weights[i] !== 0) nonZero.push(i);
  return {
    indices: Uint32Array.from(nonZero),
    values: Float32Array.from(nonZero, (i) => weights[i] as number),
  };
}

/** The artefact: a JSON header line, then each model's non-zero weights as (indices, values). */
export function saveModel(model: SpamModel, path: string): void {
  const lr = sparse(model.lrWeights);
  const nb = sparse(model.nbWeights);
  const header = JSON.stringify({
    version: model.version,
    lrBias: model.lrBias,
    nbBias: model.nbBias,
    stack: model.stack,
    lrCount: lr.indices.length,
    nbCount: nb.indices.length,
    ...model.meta,
  });
  const parts = [lr.indices, lr.values, nb.indices, nb.values].map((a) => Buffer.from(a.buffer));
  writeFileSync(path, Buffer.concat([Buffer.from(`${MAGIC}${header}\n`), ...parts]));
}

export function loadModel(path: string): SpamModel {
  const bytes = readFileSync(path);
  if (bytes.subarray(0, MAGIC.length).toString() !== MAGIC)
    throw new Error(`${path} is not a mailpools spam model`);
  const headerEnd = bytes.indexOf(10, MAGIC.length);
  const header = JSON.parse(bytes.subarray(MAGIC.length, headerEnd).toString()) as {
    version: string;
    lrBias: number;
    nbBias: number;
    stack: [number, number, number];
    lrCount: number;
    nbCount: number;
    hashBits: number;
  };
  if (header.hashBits !== HASH_BITS)
    throw new Error(`${path} was trained with ${header.hashBits} hash bits, this build uses ${HASH_BITS}`);
  const body = new Uint8Array(bytes.subarray(headerEnd + 1)); // a copy: typed arrays need aligned offsets
  let offset = 0;
  const take = <T extends Uint32Array | Float32Array>(
    make: (b: ArrayBuffer, o: number, n: number) => T,
    n: number,
  ): T => {
    const array = make(body.buffer as ArrayBuffer, offset, n);
    offset += n * 4;
    return array;
  };
  const dense = (count: number) => {
    const indices = take((b, o, n) => new Uint32Array(b, o, n), count);
    const values = take((b, o, n) => new Float32Array(b, o, n), count);
    const weights = new Float32Array(DIMS);
    for (let i = 0; i < count; i++) weights[indices[i] as number] = values[i] as number;
    return weights;
  };
  const lrWeights = dense(header.lrCount);
  const nbWeights = dense(header.nbCount);
  const { version, lrBias, nbBias, stack, lrCount: _l, nbCount: _n, ...meta } = header;
  return { version, lrBias, lrWeights, nbBias, nbWeights, stack, meta };
}
