// The router's stage in-process (tools/testkit's harness: no Kafka): what it produces for events
// the earlier stages enriched, under a policy file, and what it counts.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { topicName } from '@mailpools/core';
import type { OutboundMessage, PoolAssignment, SpamVerdict } from '@mailpools/schemas';
import { sampleEvent, stageHarness } from '@mailpools/testkit';
import { createPoolRouterStage, SERVICE } from './stage.ts';

const verdict = (label: SpamVerdict['label'], score: number): SpamVerdict => ({
  score,
  label,
  modelVersion: 'm1',
  truncated: false,
  topFeatures: [],
});

function enriched(id: string, tenantId: string, spam: SpamVerdict): OutboundMessage {
  return {
    ...sampleEvent(id),
    tenantId,
    spam,
    limits: {
      decision: 'ALLOW',
      limit: null,
      count: 1,
      threshold: 10_000,
      restricted: false,
      deferUntil: null,
      policy: 'Default',
      action: null,
      restrictedUntil: null,
      smtpReply: null,
      usage: [],
    },
    dns: {
      domain: 'contoso.example',
      status: 'OK',
      hasA: true,
      hasAaaa: false,
      hasMx: true,
      nullMx: false,
      ttlSeconds: 300,
      fromCache: false,
    },
    auth: {
      spf: 'pass',
      spfDomain: 'contoso.example',
      dkimPassForSender: true,
      dmarc: 'pass',
      arc: 'none',
      acceptedDomain: true,
      vouched: true,
      status: 'VERIFIED',
      statusReason: null,
      senderDomain: 'contoso.example',
      spfClientIp: '203.0.113.7',
      dkimSignatures: [],
      dmarcPolicy: null,
    },
  };
}

test('pool-router in-process: SUSPICIOUS moves a message only where the tenant says so', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'router-stage-'));
  const policyFile = join(dir, 'policy.json');
  writeFileSync(
    policyFile,
    JSON.stringify({ version: 't', tenants: { careful: { spam: { onSuspicious: 'high-risk' } } } }),
  );
  // No record here writes an SRS address, so the stage needs no Redis.
  const harness = await stageHarness(SERVICE, createPoolRouterStage, {
    env: { MAILPOOLS_POLICY_FILE: policyFile },
    connect: false,
  });
  try {
    const { outputs, deadLetters } = await harness.feed([
      enriched('good', 'contoso', verdict('HAM', 0.01)),
      enriched('spam', 'contoso', verdict('SPAM', 0.97)),
      enriched('suspicious', 'contoso', verdict('SUSPICIOUS', 0.3)),
      enriched('suspicious-careful', 'careful', verdict('SUSPICIOUS', 0.3)),
    ]);
    assert.deepEqual(deadLetters, []);
    const routed = topicName('routed', harness.context.config.namespace);
    assert.ok(outputs.every((o) => o.topic === routed && o.schema === 'PoolAssignment'));
    const pools = Object.fromEntries(outputs.map((o) => [o.key, (o.value as PoolAssignment).pool]));
    assert.deepEqual(pools, {
      good: 'NORMAL',
      spam: 'HIGH_RISK',
      suspicious: 'NORMAL',
      'suspicious-careful': 'HIGH_RISK',
    });
    assert.equal(await harness.metric('mailpools_router_assignments_total'), 4);
  } finally {
    await harness.close();
  }
});
