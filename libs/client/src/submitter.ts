// The platform's side of the pipeline: an MTA submits each message and waits for its pool.
// One reader of the routed topic per process serves every waiter (a map by message id), never a
// consumer per message. In-flight submissions are bounded (back-pressure: a full submitter makes
// the next submission wait for a slot, within its deadline). When no assignment comes in time the
// tenant's mta policy decides — by default a temporary failure, so unjudged mail never leaves
// through the normal pool. An assignment that arrives after its waiter gave up is counted and
// dropped: the MTA's retry of the same message gets the same id and waits again.
import { MailpoolsError, type RuntimeConfig, topicName } from '@mailpools/core';
import { chooseSourceIp, DEFAULT_POLICY, type Policy, tenantPolicy } from '@mailpools/policy';
import type { OutboundMessage, PoolAssignment } from '@mailpools/schemas';
import { createEventProducer, followTopic } from '@mailpools/stream';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** How the submitter reaches the pipeline; the real one is Kafka (`kafkaTransport`). */
export interface SubmitTransport {
  /** Produces the events; resolves once the broker acknowledged them all. */
  produce(events: readonly OutboundMessage[]): Promise<void>;
  /** Reads assignments as they commit; resolves once it reads from the topic's end. */
  follow(onAssignment: (assignment: PoolAssignment) => void): Promise<{ stop(): Promise<void> }>;
}

export interface SubmitterOptions {
  readonly transport: SubmitTransport;
  /** The tenant policy (its mta section sets the timeout and what it does); reloaded by the caller. */
  readonly policy?: () => Policy;
  /** Submissions waiting for their assignment at most; more wait for a slot. */
  readonly maxInFlight?: number;
  readonly registry?: Registry;
  /** How long an id that timed out is remembered, to count its late assignment. */
  readonly rememberTimedOutMs?: number;
  readonly now?: () => number;
}

/** The message got no assignment in time and the tenant's policy defers it: answer `smtpReply`. */
export class DecisionDeferred extends MailpoolsError {
  readonly smtpReply: string;
  constructor(message: string, smtpReply: string, cause?: unknown) {
    super('MAILPOOLS_ERR_DECISION_TIMEOUT', message, { cause });
    this.smtpReply = smtpReply;
  }
}

export interface Submitter {
  /**
   * Produces the event and resolves with its assignment. No assignment within the tenant's
   * `mta.decisionTimeoutMs` (or `timeoutMs`): rejects with `DecisionDeferred` under `defer`,
   * resolves with an unjudged high-risk assignment under `high-risk`.
   */
  submit(event: OutboundMessage, options?: { timeoutMs?: number }): Promise<PoolAssignment>;
  /** Submissions waiting for an assignment now. */
  waiting(): number;
  close(): Promise<void>;
}

interface Waiter {
  resolve(assignment: PoolAssignment): void;
}

export async function createSubmitter(options: SubmitterOptions): Promise<Submitter> {
  const { transport } = options;
  const policy = options.policy ?? (() => DEFAULT_POLICY);
  const maxInFlight = options.maxInFlight ?? 2_000;
  const rememberMs = options.rememberTimedOutMs ?? 15 * 60_000;
  const now = options.now ?? Date.now;
  const metrics = submitterMetrics(options.registry);
  const waiters = new Map<string, Set<Waiter>>();
  const timedOut = new Map<string, number>(); // id → forget after; insertion order is expiry order
  const slotQueue: (() => void)[] = [];
  let inFlight = 0;
  let pending: { event: OutboundMessage; done: (error?: unknown) => void }[] = [];
  let closed = false;

  const onAssignment = (assignment: PoolAssignment) => {
    const here = waiters.get(assignment.messageId);
    if (here) {
      waiters.delete(assignment.messageId);
      for (const waiter of here) waiter.resolve(assignment);
    } else if (timedOut.delete(assignment.messageId)) {
      metrics.late.inc();
    }
  };
  const follower = await transport.follow(onAssignment);

  // Every submission of one tick goes to the broker in one request.
  const flush = () => {
    const batch = pending;
    pending = [];
    transport.produce(batch.map((p) => p.event)).then(
      () => {
        for (const p of batch) p.done();
      },
      (error: unknown) => {
        for (const p of batch) p.done(error);
      },
    );
  };
  const produce = (event: OutboundMessage) =>
    new Promise<void>((resolve, reject) => {
      if (pending.length === 0) setImmediate(flush);
      pending.push({ event, done: (error) => (error === undefined ? resolve() : reject(error)) });
    });

  const acquireSlot = (deadline: number): Promise<boolean> => {
    if (inFlight < maxInFlight) {
      inFlight++;
      return Promise.resolve(true);
    }
    metrics.queued.inc();
    return new Promise((resolve) => {
      const grant = () => {
        clearTimeout(timer);
        inFlight++;
        resolve(true);
      };
      const timer = setTimeout(
        () => {
          slotQueue.splice(slotQueue.indexOf(grant), 1);
          resolve(false);
        },
        Math.max(0, deadline - now()),
      );
      slotQueue.push(grant);
    }).finally(() => metrics.queued.dec()) as Promise<boolean>;
  };
  const releaseSlot = () => {
    inFlight--;
    slotQueue.shift()?.();
  };

  const remember = (messageId: string) => {
    const at = now();
    for (const [id, forgetAt] of timedOut) {
      if (forgetAt > at && timedOut.size < 100_000) break;
      timedOut.delete(id);
    }
    timedOut.set(messageId, at + rememberMs);
  };

  const submit = async (
    event: OutboundMessage,
    call: { timeoutMs?: number } = {},
  ): Promise<PoolAssignment> => {
    if (closed) throw new MailpoolsError('MAILPOOLS_ERR_INTERNAL', 'The submitter is closed.');
    const tenant = tenantPolicy(policy(), event.tenantId);
    const timeoutMs = call.timeoutMs ?? tenant.mta.decisionTimeoutMs;
    const started = now();
    const deadline = started + timeoutMs;
    const giveUp = (why: string, cause?: unknown): PoolAssignment => {
      remember(event.messageId);
      metrics.timeouts.inc({ action: tenant.mta.onTimeout });
      metrics.latency.observe({ outcome: 'timeout', pool: 'none' }, (now() - started) / 1000);
      if (tenant.mta.onTimeout === 'defer') throw new DecisionDeferred(why, tenant.mta.deferReply, cause);
      return unjudgedHighRisk(event, policy(), why, now());
    };
    if (!(await acquireSlot(deadline)))
      return giveUp(`${maxInFlight} submissions were already waiting for ${timeoutMs} ms (back-pressure)`);
    const waiter = { resolve: (_: PoolAssignment) => undefined } as Waiter;
    const assigned = new Promise<PoolAssignment>((resolve) => {
      waiter.resolve = resolve;
    });
    const set = waiters.get(event.messageId) ?? new Set<Waiter>();
    waiters.set(event.messageId, set);
    set.add(waiter);
    metrics.waiting.inc();
    let timer: NodeJS.Timeout | undefined;
    try {
      // The waiter is in place before the event is produced: its assignment cannot come first.
      const produced = produce(event).then(
        () => undefined,
        (error: unknown) => error,
      );
      const expired = new Promise<'expired'>((resolve) => {
        timer = setTimeout(() => resolve('expired'), Math.max(0, deadline - now()));
      });
      const failure = await Promise.race([produced, expired]);
      if (failure === 'expired')
        return giveUp(`no assignment within ${timeoutMs} ms (the event was not acknowledged)`);
      if (failure !== undefined)
        return giveUp(`the event could not be submitted: ${(failure as Error).message}`, failure);
      const outcome = await Promise.race([assigned, expired]);
      if (outcome === 'expired') return giveUp(`no assignment within ${timeoutMs} ms`);
      metrics.latency.observe({ outcome: 'assigned', pool: outcome.pool }, (now() - started) / 1000);
      return outcome;
    } finally {
      clearTimeout(timer);
      metrics.waiting.dec();
      set.delete(waiter);
      if (set.size === 0 && waiters.get(event.messageId) === set) waiters.delete(event.messageId);
      releaseSlot();
    }
  };

  return {
    submit,
    waiting: () => inFlight,
    async close() {
      closed = true;
      await follower.stop();
    },
  };
}

/** The tenant's policy sends mail without a decision through the high-risk pool, never the normal one. */
function unjudgedHighRisk(event: OutboundMessage, policy: Policy, why: string, at: number): PoolAssignment {
  const tenant = tenantPolicy(policy, event.tenantId);
  const pool = tenant.routing.pools.HIGH_RISK;
  const source = chooseSourceIp(event.messageId, pool.ips);
  return {
    messageId: event.messageId,
    tenantId: event.tenantId,
    eventTime: event.eventTime,
    pool: 'HIGH_RISK',
    poolName: pool.name,
    sourceIp: source?.ip ?? null,
    heloName: source ? (source.helo ?? pool.helo) : null,
    reasons: [`unjudged: ${why}; the tenant's mta.onTimeout sends such mail through the high-risk pool`],
    trace: [],
    policyVersion: policy.version,
    smtpReply: null,
    notBefore: null,
    rewrittenSender: null,
    isNdr: false,
    decidedAt: at,
    submitter: event.submitter,
    sender: event.envelopeSender,
    fromHeader: event.fromHeader,
    recipients: event.recipients.map((r) => r.address),
    ndr: null,
  };
}

function submitterMetrics(registry?: Registry) {
  const registers = registry ? [registry] : [];
  return {
    waiting: new Gauge({
      name: 'mailpools_client_waiting',
      help: 'Submissions waiting for their pool assignment.',
      registers,
    }),
    queued: new Gauge({
      name: 'mailpools_client_queued',
      help: 'Submissions waiting for an in-flight slot (back-pressure).',
      registers,
    }),
    latency: new Histogram({
      name: 'mailpools_client_decision_seconds',
      help: 'From submit() to its assignment (outcome assigned) or to giving up (outcome timeout).',
      labelNames: ['outcome', 'pool'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30],
      registers,
    }),
    timeouts: new Counter({
      name: 'mailpools_client_timeouts_total',
      help: "Submissions that got no assignment in time, by what the tenant's policy did (defer, high-risk).",
      labelNames: ['action'],
      registers,
    }),
    late: new Counter({
      name: 'mailpools_client_late_assignments_total',
      help: 'Assignments that arrived after their submission had given up; ignored.',
      registers,
    }),
  };
}

/** The real transport: events to the submitted topic, assignments read from the routed topic. */
export async function kafkaTransport(config: RuntimeConfig): Promise<SubmitTransport> {
  const producer = await createEventProducer(config);
  const submitted = topicName('submitted', config.namespace);
  return {
    produce: (events) =>
      producer.send(
        submitted,
        'OutboundMessage',
        events.map((event) => ({ key: event.messageId, value: event })),
      ),
    async follow(onAssignment) {
      const follower = await followTopic<PoolAssignment>(config, {
        topic: topicName('routed', config.namespace),
        schema: 'PoolAssignment',
        onRecord: onAssignment,
      });
      await follower.ready;
      return {
        async stop() {
          await follower.stop();
          await producer.close();
        },
      };
    },
  };
}
