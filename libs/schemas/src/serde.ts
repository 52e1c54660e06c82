// Confluent wire format (magic byte 0, 4-byte schema id, Avro body) through the schema registry.
// Writers register the schema under its full record name (RecordNameStrategy) with BACKWARD
// compatibility; readers resolve whatever writer schema the id names into their own schema,
// so a stage on a newer schema reads records written with an older one.
import registryPackage from '@kafkajs/confluent-schema-registry';
import { MailpoolsError } from '@mailpools/core';
import type avro from 'avsc';
import { fullNameOf, type RecordName, schemaOf, typeOf } from './catalog.ts';

const { SchemaRegistry, SchemaType, COMPATIBILITY } = registryPackage;

export interface SerdeOptions {
  registryUrl: string;
  /** Basic-auth credentials, when the registry asks for them. */
  auth?: { readonly username: string; readonly password: string } | undefined;
  /** Extra registry request attempts on network failure, before the caller's own retry loop. */
  retries?: number;
}

type ReaderResolver = { reader: avro.Type; resolver: avro.Resolver };

export class Serde {
  readonly #registry: InstanceType<typeof SchemaRegistry>;
  readonly #ids = new Map<RecordName, Promise<number>>();
  readonly #resolvers = new Map<string, Promise<ReaderResolver>>();

  constructor({ registryUrl, auth, retries = 2 }: SerdeOptions) {
    this.#registry = new SchemaRegistry({
      host: registryUrl,
      ...(auth ? { auth: { username: auth.username, password: auth.password } } : {}),
      retry: { retries, initialRetryTimeInSecs: 0.1 },
    });
  }

  /** Registers the schema (idempotent) and returns its registry id; cached per process. */
  register(name: RecordName): Promise<number> {
    let id = this.#ids.get(name);
    if (!id) {
      id = this.#registry
        .register(
          { type: SchemaType.AVRO, schema: JSON.stringify(schemaOf(name)) },
          { subject: fullNameOf(name), compatibility: COMPATIBILITY.BACKWARD },
        )
        .then((r) => r.id)
        .catch((error: unknown) => {
          this.#ids.delete(name);
          throw registryError(error, `registering ${fullNameOf(name)}`);
        });
      this.#ids.set(name, id);
    }
    return id;
  }

  async encode<T>(name: RecordName, value: T): Promise<Buffer> {
    const id = await this.register(name);
    return encodeWith(id, name, value);
  }

  async decode<T>(name: RecordName, bytes: Buffer | null): Promise<T> {
    if (!bytes || bytes.length < 5 || bytes[0] !== 0) {
      throw new MailpoolsError(
        'MAILPOOLS_ERR_NOT_WIRE_FORMAT',
        'The record is not in the Confluent wire format (magic byte 0 and a schema id).',
        {
          hint: 'Produce records with the mailpools producer library or `mailpools feed`.',
        },
      );
    }
    const id = bytes.readInt32BE(1);
    const { reader, resolver } = await this.#readerFor(name, id);
    try {
      return reader.fromBuffer(bytes.subarray(5), resolver) as T;
    } catch (error) {
      throw new MailpoolsError(
        'MAILPOOLS_ERR_DECODE_FAILED',
        `The record body does not decode with schema id ${id}: ${(error as Error).message}.`,
        {
          hint: 'The record is truncated or corrupt; fix its producer.',
          cause: error,
        },
      );
    }
  }

  #readerFor(name: RecordName, id: number): Promise<ReaderResolver> {
    const key = `${name}:${id}`;
    let entry = this.#resolvers.get(key);
    if (!entry) {
      entry = this.#resolve(name, id);
      entry.catch(() => this.#resolvers.delete(key)); // retry lookups that failed
      this.#resolvers.set(key, entry);
    }
    return entry;
  }

  async #resolve(name: RecordName, id: number): Promise<ReaderResolver> {
    let writer: avro.Type;
    try {
      writer = (await this.#registry.getSchema(id)) as unknown as avro.Type;
    } catch (error) {
      throw registryError(error, `fetching schema id ${id}`);
    }
    const reader = typeOf(name);
    const expected = fullNameOf(name);
    const aliases = (schemaOf(name) as { aliases?: string[] }).aliases ?? [];
    if (writer.name !== expected && !aliases.includes(writer.name ?? '')) {
      throw new MailpoolsError(
        'MAILPOOLS_ERR_UNEXPECTED_SCHEMA',
        `Schema id ${id} is ${writer.name ?? 'an unnamed type'}, expected ${expected}.`,
        {
          hint: 'A record of another type was written to this topic; check the producer.',
        },
      );
    }
    try {
      return { reader, resolver: reader.createResolver(writer) };
    } catch (error) {
      throw new MailpoolsError(
        'MAILPOOLS_ERR_INCOMPATIBLE_SCHEMA',
        `Schema id ${id} cannot be read as the current ${expected}: ${(error as Error).message}.`,
        {
          hint: 'Schemas must evolve BACKWARD compatibly: add fields with defaults, never remove one without a default.',
          cause: error,
        },
      );
    }
  }
}

/** Reused for every encode: avsc's own scratch buffer is 1 KiB, so events of 2 KB were written twice. */
let scratch = Buffer.allocUnsafe(1024 * 1024);

/** Encodes with a known schema id; throws a non-retriable error when the value does not fit the schema. */
export function encodeWith(id: number, name: RecordName, value: unknown): Buffer {
  const type = typeOf(name);
  let end: number;
  try {
    end = type.encode(value, scratch, 5);
    if (end < 0) {
      scratch = Buffer.allocUnsafe(Math.max(scratch.length * 2, -end + 5));
      end = type.encode(value, scratch, 5);
    }
  } catch (error) {
    // Validation is only run to explain a failure: the hot path pays for one write.
    const paths: string[] = [];
    type.isValid(value, { errorHook: (path) => paths.push(path.join('.')) });
    throw new MailpoolsError(
      'MAILPOOLS_ERR_INVALID_RECORD',
      `The ${name} record does not match its schema at: ${paths.join(', ') || (error as Error).message}.`,
      {
        hint: 'Check the field types against schemas/*.avsc.',
        cause: error,
      },
    );
  }
  const bytes = Buffer.allocUnsafe(end);
  scratch.copy(bytes, 0, 0, end);
  bytes[0] = 0;
  bytes.writeInt32BE(id, 1);
  return bytes;
}

function registryError(error: unknown, doing: string): MailpoolsError {
  const status = (error as { status?: number }).status;
  if (status === 404) {
    return new MailpoolsError(
      'MAILPOOLS_ERR_UNKNOWN_SCHEMA_ID',
      `The schema registry does not know the schema (${doing}).`,
      {
        hint: 'The record was written against another registry, or the registry lost its schemas; the record cannot be read.',
        cause: error,
      },
    );
  }
  if (status === 401 || status === 403) {
    // Every record needs the registry: a config mistake, not a poison record. The partition waits.
    return new MailpoolsError(
      'MAILPOOLS_ERR_REGISTRY_UNAUTHORISED',
      `The schema registry refused this client's credentials (${doing}).`,
      {
        hint: 'Set SCHEMA_REGISTRY_USERNAME and SCHEMA_REGISTRY_PASSWORD to an account of the registry; the work is retried meanwhile.',
        cause: error,
      },
    );
  }
  if (status === 409 || status === 422) {
    return new MailpoolsError(
      'MAILPOOLS_ERR_INCOMPATIBLE_SCHEMA',
      `The schema registry refused the schema (${doing}): ${(error as Error).message}.`,
      {
        hint: 'Schemas must evolve BACKWARD compatibly: add fields with defaults.',
        cause: error,
      },
    );
  }
  return new MailpoolsError(
    'MAILPOOLS_ERR_REGISTRY_UNAVAILABLE',
    `The schema registry did not answer (${doing}): ${(error as Error).message}.`,
    {
      hint: 'Check SCHEMA_REGISTRY_URL and that the registry is running; the work is retried.',
      cause: error,
    },
  );
}
