// The mta section: what the platform's MTA does while it waits for a message's pool.
import { oneOf, type Reader } from './reader.ts';

export const TIMEOUT_ACTIONS = ['defer', 'high-risk'] as const;
export type TimeoutAction = (typeof TIMEOUT_ACTIONS)[number];

export interface MtaPolicy {
  /** How long a submission waits for its assignment before `onTimeout` decides. */
  readonly decisionTimeoutMs: number;
  /**
   * No assignment in time: `defer` answers the submitter with `deferReply` (a 4xx: it retries,
   * nothing unjudged leaves); `high-risk` sends the message through the high-risk pool unjudged.
   * Neither ever sends unjudged mail through the normal pool.
   */
  readonly onTimeout: TimeoutAction;
  readonly deferReply: string;
}

export const MTA_DEFAULTS: MtaPolicy = {
  decisionTimeoutMs: 15_000,
  onTimeout: 'defer',
  deferReply: '451 4.7.500 Server busy, the route of this message is not decided yet; please try again later',
};

export function mtaSection(raw: unknown, base: MtaPolicy, at: Reader): MtaPolicy {
  if (raw === undefined) return base;
  const given = at.object(raw, ['decisionTimeoutMs', 'onTimeout', 'deferReply']);
  let deferReply = base.deferReply;
  if (given.deferReply !== undefined) {
    deferReply = at.at('deferReply').text(given.deferReply);
    if (!/^4\d\d [245]\.\d{1,3}\.\d{1,3} \S/.test(deferReply))
      throw at
        .at('deferReply')
        .error(
          `must be a temporary SMTP reply with an enhanced status code, like "${MTA_DEFAULTS.deferReply}"`,
        );
  }
  return {
    decisionTimeoutMs:
      given.decisionTimeoutMs === undefined
        ? base.decisionTimeoutMs
        : at.at('decisionTimeoutMs').number(given.decisionTimeoutMs, 100, 600_000, true),
    onTimeout:
      given.onTimeout === undefined
        ? base.onTimeout
        : oneOf(at.at('onTimeout'), given.onTimeout, TIMEOUT_ACTIONS),
    deferReply,
  };
}
