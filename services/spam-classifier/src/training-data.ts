// The messages the model learns from and is judged on, as one list: the SpamAssassin public
// corpus (its "-1" groups train, its "-2" groups evaluate) and the project's modern outbound set
// (`train/` may train, `holdout/` never does). Training and evaluation read the same list.
import { progressBar } from '@mailpools/core';
import { DEFAULT_EXTRACT } from './classify.ts';
import { EVAL_GROUPS, loadCorpus, signalsOf, TRAIN_GROUPS } from './corpus.ts';
import { extractFeatures, type OutboundSignals } from './features.ts';
import { type Example, vectorise } from './model.ts';
import { loadModernCorpus } from './modern.ts';

export type Source = 'corpus' | 'modern';

export interface LabelledMessage {
  readonly id: string;
  readonly source: Source;
  /** Whether training may see it: the corpus's "-1" groups and the modern `train/` split. */
  readonly trains: boolean;
  readonly spam: boolean;
  /** Who wrote a modern message (t1…t4, h1…h4); the corpus group otherwise. */
  readonly writer: string;
  readonly kind: string;
  readonly raw: Buffer;
  readonly signals: OutboundSignals;
}

/**
 * A modern message counts this many times a corpus message in training: there are about three
 * corpus messages for each modern one, and the modern ones are the mail the service judges.
 * Chosen by leave-one-writer-out cross-validation over the modern train/ split (1, 3 and 6
 * tried: 6 ranked best), never on the holdout.
 */
export const MODERN_WEIGHT = 6;

export function loadLabelledMessages(): LabelledMessage[] {
  const corpus = loadCorpus()
    .filter((m) => TRAIN_GROUPS.includes(m.group) || EVAL_GROUPS.includes(m.group))
    .map((m) => ({
      id: m.id,
      source: 'corpus' as const,
      trains: TRAIN_GROUPS.includes(m.group),
      spam: m.spam,
      writer: m.group,
      kind: m.group,
      raw: m.raw,
      signals: signalsOf(m.raw),
    }));
  const modern = loadModernCorpus().map((m) => ({
    id: m.id,
    source: 'modern' as const,
    trains: m.split === 'train',
    spam: m.spam,
    writer: m.writer,
    kind: m.kind,
    raw: m.raw,
    signals: m.signals,
  }));
  return [...corpus, ...modern];
}

export type LabelledExample = Example & { readonly message: LabelledMessage };

/** Features of every message, as the service computes them, with a progress bar. */
export async function featurise(
  messages: readonly LabelledMessage[],
  modernWeight = MODERN_WEIGHT,
): Promise<LabelledExample[]> {
  const bar = progressBar('features', messages.length);
  const examples: LabelledExample[] = [];
  for (const [i, message] of messages.entries()) {
    const features = await extractFeatures(message.raw, message.signals, DEFAULT_EXTRACT);
    const modern = message.source === 'modern';
    examples.push({
      x: vectorise(features.counts),
      spam: message.spam,
      weight: modern ? modernWeight : 1,
      calibrate: modern,
      message,
    });
    bar.update(i + 1);
  }
  bar.finish(messages.length);
  return examples;
}
