// The JSON form of a record, for humans (feed files, CLI output): plain JSON objects; optional
// fields are the value or null; timestamps are ISO-8601 strings; bytes are a UTF-8 string, or
// { "base64": "…" } when they are not valid UTF-8. Missing fields that have a default get it.
import { MailpoolsError } from '@mailpools/core';
import { type RecordName, schemaOf, typeOf } from './catalog.ts';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Direction = 'toJson' | 'fromJson';

const utf8 = new TextDecoder('utf-8', { fatal: true });

function namedTypes(schema: unknown, into = new Map<string, unknown>()): Map<string, unknown> {
  if (Array.isArray(schema)) for (const s of schema) namedTypes(s, into);
  else if (schema && typeof schema === 'object') {
    const s = schema as {
      name?: string;
      type?: unknown;
      fields?: { type: unknown }[];
      items?: unknown;
      values?: unknown;
    };
    if (s.name && (s.type === 'record' || s.type === 'enum' || s.type === 'fixed')) into.set(s.name, s);
    for (const f of s.fields ?? []) namedTypes(f.type, into);
    if (s.items) namedTypes(s.items, into);
    if (s.values) namedTypes(s.values, into);
  }
  return into;
}

function convert(
  schema: unknown,
  value: unknown,
  named: Map<string, unknown>,
  direction: Direction,
  path: string,
): unknown {
  if (typeof schema === 'string') {
    const known = named.get(schema.split('.').pop() as string);
    if (known) return convert(known, value, named, direction, path);
    if (schema === 'bytes') return convertBytes(value, direction, path);
    return value;
  }
  if (Array.isArray(schema)) {
    if (value === null || value === undefined) return null;
    const branch = schema.find((s) => s !== 'null');
    return convert(branch, value, named, direction, path);
  }
  const s = schema as {
    type: unknown;
    logicalType?: string;
    fields?: { name: string; type: unknown; default?: unknown }[];
    items?: unknown;
    values?: unknown;
  };
  if (s.logicalType === 'timestamp-millis') return convertTimestamp(value, direction, path);
  switch (s.type) {
    case 'record': {
      if (!value || typeof value !== 'object' || Array.isArray(value)) return value; // validation names it
      const input = value as Record<string, unknown>;
      const output: Record<string, unknown> = {};
      for (const field of s.fields ?? []) {
        let fieldValue = input[field.name];
        if (fieldValue === undefined && direction === 'fromJson' && 'default' in field)
          fieldValue = structuredClone(field.default);
        if (fieldValue === undefined) continue;
        output[field.name] = convert(field.type, fieldValue, named, direction, `${path}.${field.name}`);
      }
      return output;
    }
    case 'array':
      return Array.isArray(value)
        ? value.map((v, i) => convert(s.items, v, named, direction, `${path}[${i}]`))
        : value;
    case 'map': {
      if (!value || typeof value !== 'object') return value;
      const output: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value))
        output[k] = convert(s.values, v, named, direction, `${path}.${k}`);
      return output;
    }
    default:
      return convert(s.type, value, named, direction, path);
  }
}

function convertTimestamp(value: unknown, direction: Direction, path: string): unknown {
  if (direction === 'toJson') return typeof value === 'number' ? new Date(value).toISOString() : value;
  if (typeof value === 'number') return value;
  const ms = typeof value === 'string' ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(ms)) throw invalid(`${path} must be an ISO-8601 time or epoch milliseconds`);
  return ms;
}

function convertBytes(value: unknown, direction: Direction, path: string): unknown {
  if (direction === 'toJson') {
    if (!Buffer.isBuffer(value)) return value;
    try {
      return utf8.decode(value);
    } catch {
      return { base64: value.toString('base64') };
    }
  }
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  if (value && typeof value === 'object' && typeof (value as { base64?: unknown }).base64 === 'string') {
    return Buffer.from((value as { base64: string }).base64, 'base64');
  }
  throw invalid(`${path} must be a string or { "base64": "…" }`);
}

function invalid(problem: string): MailpoolsError {
  return new MailpoolsError('MAILPOOLS_ERR_INVALID_RECORD', `${problem}.`, {
    hint: 'See the JSON form of the records in docs/cli.md.',
  });
}

const namedCache = new Map<RecordName, Map<string, unknown>>();
function namedOf(name: RecordName): Map<string, unknown> {
  let named = namedCache.get(name);
  if (!named) {
    named = namedTypes(schemaOf(name));
    namedCache.set(name, named);
  }
  return named;
}

export function toJsonForm(name: RecordName, record: unknown): Json {
  return convert(schemaOf(name), record, namedOf(name), 'toJson', name) as Json;
}

/** Parses the JSON form into a record, filling defaults; throws naming every field that is wrong. */
export function fromJsonForm<T>(name: RecordName, json: unknown): T {
  const record = convert(schemaOf(name), json, namedOf(name), 'fromJson', name);
  const paths: string[] = [];
  if (!typeOf(name).isValid(record, { errorHook: (p) => paths.push(p.join('.')) })) {
    throw invalid(`The ${name} has missing or wrong fields: ${paths.join(', ')}`);
  }
  return record as T;
}
