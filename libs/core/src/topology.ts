// The one place that knows topic names, the order of the stages and who reads what.
// Services ask here; nothing else spells a topic name.

export const TOPICS = {
  submitted: 'mail.outbound.submitted',
  classified: 'mail.outbound.classified',
  counted: 'mail.outbound.counted',
  dnsChecked: 'mail.outbound.dns-checked',
  verified: 'mail.outbound.verified',
  routed: 'mail.outbound.routed',
  ndrSurges: 'mail.ndr.surges',
  senderRestrictions: 'mail.sender.restrictions',
  /** Every restriction and release, kept whole: the audit trail that the compacted table above forgets. */
  restrictionAudit: 'mail.sender.restriction-audit',
} as const;

export type TopicName = keyof typeof TOPICS;

export interface StageTopology {
  /** The service folder name: consumer group id, metric label, log name. */
  readonly service: string;
  readonly input: TopicName;
  readonly outputs: readonly TopicName[];
}

/** The enrichment chain, in pipeline order. */
export const STAGES: readonly StageTopology[] = [
  { service: 'spam-classifier', input: 'submitted', outputs: ['classified'] },
  {
    service: 'limit-counter',
    input: 'classified',
    outputs: ['counted', 'senderRestrictions', 'restrictionAudit'],
  },
  { service: 'dns-checker', input: 'counted', outputs: ['dnsChecked'] },
  { service: 'auth-verifier', input: 'dnsChecked', outputs: ['verified'] },
  { service: 'pool-router', input: 'verified', outputs: ['routed'] },
  { service: 'ndr-surge-detector', input: 'routed', outputs: ['ndrSurges'] },
  // Not a stage of the chain: it keeps every assignment for the message trace (PostgreSQL).
  { service: 'trace-writer', input: 'routed', outputs: [] },
];

/** The services a message passes before its pool assignment, in order: the chain up to pool-router. */
export const DECISION_CHAIN: readonly string[] = STAGES.slice(
  0,
  STAGES.findIndex((s) => s.outputs.includes('routed')) + 1,
).map((s) => s.service);

/** Topics whose latest record per key is all that matters. */
const COMPACTED: ReadonlySet<TopicName> = new Set(['senderRestrictions']);

export function stageOf(service: string): StageTopology {
  const stage = STAGES.find((s) => s.service === service);
  if (!stage) throw new Error(`unknown stage "${service}"`);
  return stage;
}

export function topicName(topic: TopicName, namespace = ''): string {
  return `${namespace}${TOPICS[topic]}`;
}

export function deadLetterTopic(topic: string): string {
  return `${topic}.dlq`;
}

export function groupId(service: string, namespace = ''): string {
  return `${namespace}${service}`;
}

export interface TopicSpec {
  readonly topic: string;
  readonly partitions: number;
  readonly compacted: boolean;
}

/** Every topic the pipeline needs (with the dead-letter topic of every stage input). */
export function allTopics(namespace: string, partitions: number): TopicSpec[] {
  const specs: TopicSpec[] = [];
  for (const key of Object.keys(TOPICS) as TopicName[]) {
    specs.push({ topic: topicName(key, namespace), partitions, compacted: COMPACTED.has(key) });
  }
  // Stages reading one topic share its dead-letter topic (the headers say which stage).
  for (const input of new Set(STAGES.map((s) => s.input))) {
    specs.push({ topic: deadLetterTopic(topicName(input, namespace)), partitions, compacted: false });
  }
  return specs;
}

export interface WiredStage {
  readonly service: string;
  /** Full name of the input topic. */
  readonly input: string;
  /** Full names of the output topics, by topology name. */
  readonly outputs: Readonly<Partial<Record<TopicName, string>>>;
  /** The topics the stage creates at start-up when missing. */
  readonly topics: readonly TopicSpec[];
}

/** A stage's topics, namespaced: what a service's index.ts hands to the runtime. */
export function wireStage(service: string, namespace: string, partitions: number): WiredStage {
  const stage = stageOf(service);
  const outputs: Partial<Record<TopicName, string>> = {};
  for (const output of stage.outputs) outputs[output] = topicName(output, namespace);
  const topics = [stage.input, ...stage.outputs].map((key) => ({
    topic: topicName(key, namespace),
    partitions,
    compacted: COMPACTED.has(key),
  }));
  return { service, input: topicName(stage.input, namespace), outputs, topics };
}
