// Schemas evolve BACKWARD compatibly: a stage on the current schema reads every record an older
// producer wrote. schemas/history/<Record>/vN.avsc keeps every released version; add one when a
// schema changes, and this test proves the current schema still reads them all.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { MailpoolsError } from '@mailpools/core';
import {
  encodeWith,
  fullNameOf,
  type OutboundMessage,
  RECORD_NAMES,
  SCHEMAS_DIR,
  Serde,
  schemaOf,
  typeOf,
} from '@mailpools/schemas';
import { sampleEvent } from '@mailpools/testkit';
import avro from 'avsc';

for (const name of RECORD_NAMES) {
  test(`the current ${name} schema reads records of every released version`, () => {
    const dir = `${SCHEMAS_DIR}/history/${name}`;
    const versions = readdirSync(dir).filter((f) => f.endsWith('.avsc'));
    assert.ok(versions.length > 0, `schemas/history/${name} holds at least the first release`);
    const current = typeOf(name);
    for (const version of versions) {
      const old = avro.Type.forSchema(JSON.parse(readFileSync(`${dir}/${version}`, 'utf8')));
      const resolver = current.createResolver(old);
      for (let i = 0; i < 50; i++) {
        const written = old.random();
        const read = current.fromBuffer(old.toBuffer(written), resolver);
        assert.ok(current.isValid(read), `${name} ${version} record ${i} reads as a valid current record`);
      }
    }
  });
}

test('through the registry: a reader on the new schema reads a record written with the old one', async () => {
  const registryUrl = process.env.SCHEMA_REGISTRY_URL ?? 'http://127.0.0.1:8081/apis/ccompat/v7';
  // An "older" OutboundMessage: the current one without the fields that were added with defaults.
  const current = schemaOf('OutboundMessage');
  const older = {
    ...current,
    fields: current.fields.filter((f) => !['hops', 'messageClass', 'rawTruncated'].includes(f.name)),
  };
  const subject = `test-${Date.now()}-${fullNameOf('OutboundMessage')}`;
  const registered = await fetch(`${registryUrl}/subjects/${subject}/versions`, {
    method: 'POST',
    headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
    body: JSON.stringify({ schema: JSON.stringify(older) }),
  });
  assert.equal(registered.status, 200, await registered.clone().text());
  const { id: olderId } = (await registered.json()) as { id: number };

  // The registry itself agrees that the current schema may follow the older one (BACKWARD).
  const check = await fetch(`${registryUrl}/compatibility/subjects/${subject}/versions/latest`, {
    method: 'POST',
    headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
    body: JSON.stringify({ schema: JSON.stringify(current) }),
  });
  assert.equal(check.status, 200);
  assert.equal(((await check.json()) as { is_compatible: boolean }).is_compatible, true);

  const olderType = avro.Type.forSchema(older as avro.Schema);
  const {
    hops: _hops,
    messageClass: _class,
    rawTruncated: _truncated,
    ...oldRecord
  } = sampleEvent('evolution-1');
  const body = olderType.toBuffer(oldRecord);
  const bytes = Buffer.concat([Buffer.from([0, 0, 0, 0, 0]), body]);
  bytes.writeInt32BE(olderId, 1);

  const event = await new Serde({ registryUrl }).decode<OutboundMessage>('OutboundMessage', bytes);
  assert.equal(event.messageId, 'evolution-1');
  assert.deepEqual(event.hops, [], 'a field added later takes its default');
  assert.equal(event.messageClass, 'NORMAL');
  assert.equal(event.rawTruncated, false);
});

test('a field removed without a default is refused as incompatible, with a code', async () => {
  const current = schemaOf('PoolAssignment');
  const newer = { ...current, fields: [...current.fields, { name: 'mandatoryNew', type: 'string' }] };
  const newerType = avro.Type.forSchema(newer as avro.Schema);
  assert.throws(() => newerType.createResolver(typeOf('PoolAssignment')), /mandatoryNew/);
  assert.throws(
    () => encodeWith(1, 'PoolAssignment', { messageId: 1 }),
    (error: unknown) => error instanceof MailpoolsError && error.code === 'MAILPOOLS_ERR_INVALID_RECORD',
  );
});
