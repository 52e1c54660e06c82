// Postfix (Debian's, a private instance with its own configuration and queue) in front of the
// whole pipeline through @mailpools/postfix-bridge: the same scenario and the same pipeline-down
// faults as the Haraka test. Postfix resolves MX only through the system resolver, so its pool
// transports deliver to the recording destination as their fixed next hop; which address each
// connection leaves from and which HELO it gives are Postfix's own smtp_bind_address and
// smtp_helo_name per transport.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort } from '@mailpools/core';
import { loadPolicy } from '@mailpools/policy';
import { routesOf, writePostfixInstance } from '@mailpools/postfix-bridge';
import { type ServiceProcess, startStageProcess } from '@mailpools/testkit';
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

const BRIDGE = fileURLToPath(new URL('../mta/postfix-bridge/src/main.ts', import.meta.url));

/** `count` consecutive free ports on 127.0.0.1 (Postfix's re-injection listeners follow each other). */
async function freePortRange(count: number): Promise<number> {
  const free = (port: number) =>
    new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
  for (;;) {
    const base = 20_000 + Math.floor(Math.random() * 40_000);
    let ok = true;
    for (let i = 0; i < count && ok; i++) ok = await free(base + i);
    if (ok) return base;
  }
}

let world: MtaWorld;
let bridge: ServiceProcess | undefined;
let configDir: string | undefined;
let logFile = '';
let submissionPort: number;

const postfix = (command: 'start' | 'stop') => {
  if (configDir) execFileSync('postfix', ['-c', configDir, command], { stdio: 'inherit' });
};

before(async () => {
  world = await startMtaWorld();
  try {
    const policy = loadPolicy(world.env);
    const injectBase = await freePortRange(2 + 3);
    const routes = routesOf(policy, injectBase);
    const [proxyPort, requeuePort, saslPort] = [await freePort(), await freePort(), await freePort()];
    submissionPort = await freePort();
    const usersFile = join(world.dir, 'users');
    writeFileSync(usersFile, USERS.map((user) => `${user} ${PASSWORD}`).join('\n'));
    bridge = await startStageProcess(BRIDGE, {
      ...world.env,
      MAILPOOLS_BRIDGE_PROXY_PORT: String(proxyPort),
      MAILPOOLS_BRIDGE_REQUEUE_PORT: String(requeuePort),
      MAILPOOLS_BRIDGE_SASL_PORT: String(saslPort),
      MAILPOOLS_BRIDGE_INJECT_BASE_PORT: String(injectBase),
      MAILPOOLS_BRIDGE_USERS_FILE: usersFile,
      MAILPOOLS_BRIDGE_FORWARDERS: FORWARDER_IP,
    });
    // The postfix user must reach the instance: not under a folder only root can enter.
    const dir = mkdtempSync(join(tmpdir(), 'mailpools-postfix-'));
    const id = (flag: string) => Number(execFileSync('id', [flag, 'postfix'], { encoding: 'utf8' }).trim());
    const instance = writePostfixInstance({
      dir,
      myhostname: 'mta.mailpools.test',
      submissionHost: '127.0.0.1',
      submissionPort,
      trustedClients: [FORWARDER_IP],
      bridgeHost: '127.0.0.1',
      proxyPort,
      requeuePort,
      saslType: 'dovecot',
      saslPath: `inet:127.0.0.1:${saslPort}`,
      routes,
      nexthop: `[${world.destination.host}]:${world.destination.port}`,
      proxyTimeoutSeconds: Math.ceil(DECISION_TIMEOUT_MS / 1000) + 30,
      retrySeconds: 5,
      postfixUser: { uid: id('-u'), gid: id('-g') },
    });
    configDir = instance.configDir;
    logFile = instance.logFile;
    postfix('start');
  } catch (error) {
    await bridge?.stop();
    await world.close();
    throw error;
  }
});

after(async () => {
  try {
    postfix('stop');
  } finally {
    const code = await bridge?.stop();
    await world?.close();
    assert.equal(code, 0, `the bridge stops cleanly (Postfix's log: ${logFile})`);
  }
});

test(
  'Postfix: each message arrives once from its pool’s IP and HELO, or is refused with its reply; the trace agrees',
  {
    timeout: 300_000,
  },
  () => runScenario(world, submissionPort),
);

test(
  'Postfix with the pipeline stopped: submissions are deferred, nothing unjudged leaves; back up, the retries deliver each once',
  {
    timeout: 240_000,
  },
  () => runPipelineDown(world, submissionPort, bridge?.port ?? 0),
);
