// The Avro schemas in /schemas are the single source of truth; this module loads them once.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import avro from 'avsc';
import type { Origin } from './generated.ts';

export const SCHEMAS_DIR = fileURLToPath(new URL('../../../schemas/', import.meta.url));

export const RECORD_NAMES = [
  'OutboundMessage',
  'PoolAssignment',
  'NdrSurgeAlert',
  'SenderRestriction',
] as const;
export type RecordName = (typeof RECORD_NAMES)[number];

export interface AvroRecordSchema {
  type: 'record';
  name: string;
  namespace?: string;
  fields: AvroField[];
}
export interface AvroField {
  name: string;
  type: unknown;
  default?: unknown;
  doc?: string;
}

export function readSchemaFile(name: string, dir = SCHEMAS_DIR): AvroRecordSchema {
  return JSON.parse(readFileSync(`${dir}/${name}.avsc`, 'utf8')) as AvroRecordSchema;
}

const schemas = new Map<RecordName, AvroRecordSchema>();
const types = new Map<RecordName, avro.Type>();

export function schemaOf(name: RecordName): AvroRecordSchema {
  let schema = schemas.get(name);
  if (!schema) {
    schema = readSchemaFile(name);
    schemas.set(name, schema);
  }
  return schema;
}

export function typeOf(name: RecordName): avro.Type {
  let type = types.get(name);
  if (!type) {
    type = avro.Type.forSchema(schemaOf(name) as avro.Schema);
    types.set(name, type);
  }
  return type;
}

/** Full Avro name, e.g. mailpools.OutboundMessage: also the registry subject (RecordNameStrategy). */
export function fullNameOf(name: RecordName): string {
  const schema = schemaOf(name);
  return schema.namespace ? `${schema.namespace}.${schema.name}` : schema.name;
}

/** What a stage fills in, as the platform submits a message: nothing yet. */
export function unenriched(): { spam: null; limits: null; dns: null; auth: null; hops: [] } {
  return { spam: null, limits: null, dns: null, auth: null, hops: [] };
}

/**
 * Mail the platform passes on for someone else (forwarded, relayed, or from an on-premises
 * connector): it goes to the relay pool unless the platform can vouch for its sender (MISSION.md).
 */
export function isRelayedOrigin(origin: Origin): boolean {
  return origin === 'FORWARDED' || origin === 'RELAYED' || origin === 'ON_PREMISES_CONNECTOR';
}
