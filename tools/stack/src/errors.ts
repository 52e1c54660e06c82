// Every failure of the stack is a StackError: a stable code, one sentence, what to do about it, and the
// log to read when a process is involved. The CLI prints these fields as they are.

import { type ErrorCode, MailpoolsError } from '@mailpools/core';
import type { PartName } from './process.ts';

/** The stack's codes: the catalogue's MAILPOOLS_ERR_STACK_* (libs/core/src/error-codes.ts). */
export type StackErrorCode = Extract<ErrorCode, `MAILPOOLS_ERR_STACK_${string}`>;

export interface StackErrorDetails {
  hint: string;
  logPath?: string;
  /** The last lines of logPath (or of a tool's output) at the time of the failure. */
  logTail?: string[];
  part?: PartName;
}

export class StackError extends MailpoolsError {
  readonly logPath: string | undefined;
  readonly logTail: string[];
  /** The part that failed, when one did. */
  part: PartName | undefined;

  constructor(code: StackErrorCode, message: string, details: StackErrorDetails) {
    super(code, message, { hint: details.hint });
    this.name = 'StackError';
    this.logPath = details.logPath;
    this.logTail = details.logTail ?? [];
    this.part = details.part;
  }
}
