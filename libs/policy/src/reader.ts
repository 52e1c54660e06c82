// What every section's validation shares: a reader that knows the file and the path of the
// field it reads, so that a wrong field fails naming it; and freezing what was read.
import { MailpoolsError } from '@mailpools/core';

export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !(value instanceof Set)) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

/** Collects the validation context: the file and the path of the field being read. */
export class Reader {
  readonly file: string;
  readonly path: string;

  constructor(file: string, path: string) {
    this.file = file;
    this.path = path;
  }

  at(key: string | number): Reader {
    return new Reader(this.file, typeof key === 'number' ? `${this.path}[${key}]` : `${this.path}.${key}`);
  }

  error(problem: string): MailpoolsError {
    return new MailpoolsError('MAILPOOLS_ERR_POLICY_INVALID', `${this.file}: ${this.path} ${problem}.`, {
      hint: 'Fix the policy file (see docs/policy.md); the service does not start with a policy it cannot trust.',
    });
  }

  object(raw: unknown, known: readonly string[]): Record<string, unknown> {
    if (!isObject(raw)) throw this.error('must be an object');
    for (const key of Object.keys(raw))
      if (!known.includes(key))
        throw this.at(key).error(`is not a known setting (one of: ${known.join(', ')})`);
    return raw;
  }

  number(raw: unknown, min: number, max: number, integer = false): number {
    if (typeof raw !== 'number' || !(raw >= min && raw <= max) || (integer && !Number.isInteger(raw)))
      throw this.error(
        `must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}, got ${JSON.stringify(raw)}`,
      );
    return raw;
  }

  flag(raw: unknown): boolean {
    if (typeof raw !== 'boolean') throw this.error(`must be true or false, got ${JSON.stringify(raw)}`);
    return raw;
  }

  text(raw: unknown): string {
    if (typeof raw !== 'string' || raw.trim() === '') throw this.error('must be a non-empty string');
    return raw.trim();
  }

  /** A list of addresses or domains, lower-cased. */
  names(raw: unknown): string[] {
    if (!Array.isArray(raw)) throw this.error('must be a list of strings');
    return raw.map((item, i) => this.at(i).text(item).toLowerCase());
  }
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function oneOf<T extends string>(at: Reader, raw: unknown, values: readonly T[]): T {
  if (!values.includes(raw as T))
    throw at.error(`must be one of ${values.join(', ')}, got ${JSON.stringify(raw)}`);
  return raw as T;
}
