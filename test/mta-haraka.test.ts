// Haraka in front of the whole pipeline on the real stack: messages submitted over SMTP with AUTH
// (and handed over by the platform's forwarding host) either arrive at the recording destination
// exactly once, from exactly the source IP and HELO of their pool and with the right MAIL FROM,
// or are refused at submission with their reply; the trace shows the same pool. Then the
// pipeline is stopped under submission: nothing unjudged leaves, the MTA defers, and once the
// pipeline is back the retries deliver each message once.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { freePort } from '@mailpools/core';
import { type HarakaProcess, startHaraka, writeHarakaInstance } from '@mailpools/stack';
import {
  DECISION_TIMEOUT_MS,
  FORWARDER_IP,
  type MtaWorld,
  PASSWORD,
  runPipelineDown,
  runScenario,
  startMtaWorld,
  USERS,
} from './fixtures/mta-world.ts';

let world: MtaWorld;
let haraka: HarakaProcess;
let smtpPort: number;
let metricsPort: number;

before(async () => {
  world = await startMtaWorld();
  smtpPort = await freePort();
  metricsPort = await freePort();
  const instance = {
    dir: join(world.dir, 'haraka'),
    smtpPort,
    users: Object.fromEntries(USERS.map((user) => [user, PASSWORD])),
    deliveryPort: world.destination.port,
    metricsPort,
    forwarders: [FORWARDER_IP],
    decisionTimeoutMs: DECISION_TIMEOUT_MS,
    retrySeconds: 5,
  };
  writeHarakaInstance(instance);
  try {
    haraka = await startHaraka(instance, world.env);
  } catch (error) {
    await world.close();
    throw error;
  }
});

after(async () => {
  const code = await haraka?.stop();
  await world?.close();
  if (haraka) writeFileSync(join(world.dir, 'haraka.log'), haraka.output());
  assert.equal(code, 0, `Haraka stops cleanly (its log: ${join(world.dir, 'haraka.log')})`);
});

test(
  'Haraka: each message arrives once from its pool’s IP and HELO, or is refused with its reply; the trace agrees',
  {
    timeout: 300_000,
  },
  () => runScenario(world, smtpPort),
);

test(
  'Haraka with the pipeline stopped: submissions are deferred, nothing unjudged leaves; back up, the retries deliver each once',
  {
    timeout: 240_000,
  },
  () => runPipelineDown(world, smtpPort, metricsPort),
);
