// One error type for the whole project, in the style of Fastify's FST_ERR_* and kafkajs's
// `retriable` flag: a stable code for machines, a sentence and a hint for humans, and whether
// trying again later can succeed (a transient failure) or never will (a poison record, bad config).
// The code is a key of the catalogue (error-codes.ts), which decides retriability and gives the
// default hint; the place that throws gives the sentence and, where it knows better, the hint.
import { ERROR_CODES, type ErrorCode } from './error-codes.ts';

export interface MailpoolsErrorOptions {
  /** What to do, when the place that throws knows better than the catalogue's hint. */
  hint?: string;
  cause?: unknown;
}

export class MailpoolsError extends Error {
  readonly code: ErrorCode;
  readonly hint: string;
  readonly retriable: boolean;

  constructor(code: ErrorCode, message: string, options: MailpoolsErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'MailpoolsError';
    this.code = code;
    this.hint = options.hint ?? ERROR_CODES[code].hint;
    this.retriable = ERROR_CODES[code].retriable;
  }

  /** One line a person can act on: code, sentence, what to do. */
  describe(): string {
    return this.hint ? `${this.code}: ${this.message} ${this.hint}` : `${this.code}: ${this.message}`;
  }
}

export function isMailpoolsError(error: unknown): error is MailpoolsError {
  return error instanceof MailpoolsError;
}

/** Treat anything thrown as an error with a code; unknown errors are not retriable. */
export function asMailpoolsError(
  error: unknown,
  fallbackCode: ErrorCode = 'MAILPOOLS_ERR_INTERNAL',
): MailpoolsError {
  if (error instanceof MailpoolsError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new MailpoolsError(fallbackCode, message, { cause: error });
}
