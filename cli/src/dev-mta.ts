// `mailpools start --mta`: Haraka in front of the pipeline, for trying it by hand. Submission on
// a loopback port with a development user, three pools on loopback addresses, a DNS server for the
// development domains (whose MX is the recording destination), and the recording destination,
// which prints every delivery: from which IP, with which HELO, MAIL FROM, recipients.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, type Logger } from '@mailpools/core';
import {
  type HarakaProcess,
  type RecordingDestination,
  startHaraka,
  startRecordingDestination,
  writeHarakaInstance,
} from '@mailpools/stack';
import { startTestDnsServer, type TestDnsServer } from '@mailpools/testkit';

export const DEV_MTA = {
  user: 'dev@mailpools.test',
  password: 'mailpools',
  tenant: 'dev',
  pools: {
    NORMAL: { ip: '127.0.0.2', helo: 'normal.pool.mailpools.test' },
    HIGH_RISK: { ip: '127.0.0.3', helo: 'high-risk.pool.mailpools.test' },
    RELAY: { ip: '127.0.0.4', helo: 'relay.pool.mailpools.test' },
  },
} as const;

export interface DevMta {
  /** The environment every service and Haraka share: the development policy and DNS server. */
  readonly env: Record<string, string>;
  /** Starts Haraka once the services run; resolves with where to submit. */
  startHaraka(pipelineEnv: Record<string, string>): Promise<{ smtp: string; metrics: string }>;
  stop(): Promise<void>;
}

/** The development policy, DNS and destination; Haraka itself comes after the services. */
export async function prepareDevMta(dir: string, log: Logger, smtpPort: number): Promise<DevMta> {
  mkdirSync(dir, { recursive: true });
  let destination: RecordingDestination | undefined;
  let dns: TestDnsServer | undefined;
  let haraka: HarakaProcess | undefined;
  const stop = async () => {
    await haraka?.stop();
    await destination?.close();
    await dns?.close();
  };
  try {
    destination = await startRecordingDestination({
      onDelivery: (d) =>
        log.info(
          {
            from_ip: d.peer,
            helo: d.helo,
            mail_from: d.mailFrom || '<>',
            rcpt: d.recipients,
            subject: d.subject,
          },
          'delivered at the destination',
        ),
    });
    const host = destination.host;
    dns = await startTestDnsServer({
      zones: {
        'mailpools.test': [
          { type: 'A', data: host },
          { type: 'MX', data: { preference: 10, exchange: 'mx.mailpools.test' } },
          { type: 'TXT', data: 'v=spf1 ip4:127.0.0.0/8 -all' },
        ],
        'mx.mailpools.test': [{ type: 'A', data: host }],
        'example.test': [
          { type: 'A', data: host },
          { type: 'MX', data: { preference: 10, exchange: 'mx.mailpools.test' } },
        ],
      },
    });
    const policyFile = join(dir, 'policy.json');
    writeFileSync(
      policyFile,
      `${JSON.stringify(
        {
          version: 'dev-mta-1',
          defaults: {
            routing: {
              pools: Object.fromEntries(
                Object.entries(DEV_MTA.pools).map(([pool, { ip, helo }]) => [pool, { helo, ips: [{ ip }] }]),
              ),
            },
          },
          tenants: { [DEV_MTA.tenant]: { directory: { acceptedDomains: ['mailpools.test'] } } },
        },
        null,
        2,
      )}\n`,
    );
    const env = { MAILPOOLS_POLICY_FILE: policyFile, MAILPOOLS_DNS_SERVERS: `${dns.host}:${dns.port}` };
    return {
      env,
      async startHaraka(pipelineEnv) {
        const metricsPort = await freePort();
        const instance = {
          dir: join(dir, 'haraka'),
          smtpPort,
          users: { [DEV_MTA.user]: DEV_MTA.password },
          deliveryPort: destination?.port ?? 25,
          metricsPort,
        };
        writeHarakaInstance(instance);
        haraka = await startHaraka(instance, { ...pipelineEnv, ...env });
        return { smtp: `127.0.0.1:${smtpPort}`, metrics: `http://127.0.0.1:${metricsPort}/metrics` };
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
