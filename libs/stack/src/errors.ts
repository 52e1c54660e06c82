// Every failure of the stack is a StackError: a stable code, one sentence, what to do about it, and the
// log to read when a process is involved. The CLI prints these fields as they are.

import { MailpoolsError } from '@mailpools/core';
import type { PartName } from './process.ts';

export type StackErrorCode =
  | 'MAILPOOLS_ERR_STACK_USAGE'
  | 'MAILPOOLS_ERR_STACK_BAD_CONFIG'
  | 'MAILPOOLS_ERR_STACK_MISSING_TOOL'
  | 'MAILPOOLS_ERR_STACK_PORT_IN_USE'
  | 'MAILPOOLS_ERR_STACK_FETCH_FAILED'
  | 'MAILPOOLS_ERR_STACK_FORMAT_FAILED'
  | 'MAILPOOLS_ERR_STACK_PROCESS_EXITED'
  | 'MAILPOOLS_ERR_STACK_NOT_READY'
  | 'MAILPOOLS_ERR_STACK_REDIS_UNREACHABLE'
  | 'MAILPOOLS_ERR_STACK_POSTGRES_UNREACHABLE'
  | 'MAILPOOLS_ERR_STACK_POSTGRES_ROOT'
  | 'MAILPOOLS_ERR_STACK_POSTGRES_INIT'
  | 'MAILPOOLS_ERR_STACK_STOP_FAILED'
  | 'MAILPOOLS_ERR_STACK_INTERNAL';

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
