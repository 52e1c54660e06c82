// The mail side of the local stack: a recording destination that stands for every remote mail
// server, and a Haraka instance with haraka-plugin-mailpools in front of the pipeline.
import { type ChildProcess, spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { stopChildProcess } from '@mailpools/core';
import { SMTPServer } from 'smtp-server';

/** One message as the destination received it: who connected, how it greeted, the envelope. */
export interface Delivery {
  /** The source address of the TCP connection: the pool IP the MTA bound. */
  readonly peer: string;
  readonly helo: string;
  readonly mailFrom: string;
  readonly recipients: readonly string[];
  readonly messageId: string;
  /** mailpools' id of the message (X-Mailpools-Message-Id), '' when absent. */
  readonly mailpoolsId: string;
  readonly subject: string;
  readonly receivedAt: number;
  readonly size: number;
}

export interface RecordingDestination {
  readonly host: string;
  readonly port: number;
  readonly deliveries: readonly Delivery[];
  /** Recipients whose mail is refused with 550 5.1.1 (to make bounces). */
  readonly unknownUsers: Set<string>;
  close(): Promise<void>;
}

/** An SMTP server on loopback that accepts and records every delivery (and refuses unknownUsers). */
export async function startRecordingDestination(
  options: { host?: string; port?: number; onDelivery?: (delivery: Delivery) => void } = {},
): Promise<RecordingDestination> {
  const host = options.host ?? '127.0.0.1';
  const deliveries: Delivery[] = [];
  const unknownUsers = new Set<string>();
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    size: 64 * 1024 * 1024,
    onRcptTo(address, _session, callback) {
      if (unknownUsers.has(address.address.toLowerCase())) {
        const error = Object.assign(new Error('5.1.1 No such user here'), { responseCode: 550 });
        callback(error);
        return;
      }
      callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks);
        const head = raw.toString('latin1', 0, Math.min(raw.length, 64 * 1024)).split(/\r?\n\r?\n/)[0] ?? '';
        const header = (name: string) =>
          new RegExp(`^${name}:[ \\t]*(.*(?:\\r?\\n[ \\t].*)*)`, 'im')
            .exec(head)?.[1]
            ?.replace(/\r?\n[ \t]+/g, ' ')
            .trim() ?? '';
        const delivery: Delivery = {
          peer: (session.remoteAddress ?? '').replace(/^::ffff:/, ''),
          helo: session.hostNameAppearsAs ?? '',
          mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          recipients: session.envelope.rcptTo.map((r) => r.address.toLowerCase()),
          messageId: header('message-id'),
          mailpoolsId: header('x-mailpools-message-id'),
          subject: header('subject'),
          receivedAt: Date.now(),
          size: raw.length,
        };
        deliveries.push(delivery);
        options.onDelivery?.(delivery);
        callback();
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const address = server.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    host,
    port,
    deliveries,
    unknownUsers,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export interface HarakaInstanceOptions {
  /** The instance folder (config/, queue/); created. */
  readonly dir: string;
  readonly smtpHost?: string;
  readonly smtpPort: number;
  /** The name Haraka greets with and puts in Received headers. */
  readonly me?: string;
  /** Submission users (AUTH PLAIN/LOGIN over loopback): address → password. */
  readonly users: Readonly<Record<string, string>>;
  /** Where deliveries go (the destinations' port; 25 in production). */
  readonly deliveryPort: number;
  readonly metricsPort: number;
  /** On-premises connectors: IP → "tenant,name". */
  readonly connectors?: Readonly<Record<string, string>>;
  /** The platform's own forwarding hosts. */
  readonly forwarders?: readonly string[];
  readonly defaultTenant?: string;
  /** Longest decision timeout of any tenant: the plugin's hook timeout is a little longer. */
  readonly decisionTimeoutMs?: number;
  /** Seconds between Haraka's own delivery retries. */
  readonly retrySeconds?: number;
}

/** Writes a Haraka instance whose plugins are auth/flat_file and mailpools. */
export function writeHarakaInstance(options: HarakaInstanceOptions): void {
  const config = join(options.dir, 'config');
  mkdirSync(config, { recursive: true });
  mkdirSync(join(options.dir, 'queue'), { recursive: true });
  const write = (name: string, text: string) => writeFileSync(join(config, name), text);
  // An instance reads only its own config folder: Haraka's defaults that it needs come along.
  const defaults = join(dirname(harakaBin()), '..', 'config');
  for (const name of ['connection.ini', 'outbound.bounce_message', 'outbound.bounce_message_html'])
    copyFileSync(join(defaults, name), join(config, name));
  write('me', `${options.me ?? 'mta.mailpools.test'}\n`);
  write('plugins', 'auth/flat_file\nmailpools\n');
  write(
    'smtp.ini',
    `[main]\nlisten=${options.smtpHost ?? '127.0.0.1'}:${options.smtpPort}\nnodes=\ndaemonize=false\n`,
  );
  write('log.ini', '[main]\nlevel=notice\ntimestamps=true\n');
  write(
    'auth_flat_file.ini',
    `[core]\nmethods=PLAIN,LOGIN\n\n[users]\n${Object.entries(options.users)
      .map(([user, password]) => `${user}=${password}`)
      .join('\n')}\n`,
  );
  const retry = Math.max(5, options.retrySeconds ?? 5); // Haraka's shortest retry interval
  write(
    'outbound.ini',
    `[main]\nconcurrency_max=100\nenable_tls=false\nreceived_header=mailpools MTA\ntemp_fail_intervals=${Array.from({ length: 12 }, () => `${retry}s`).join(',')}\n`,
  );
  write('mailpools.timeout', `${Math.ceil((options.decisionTimeoutMs ?? 15_000) / 1000) + 10}\n`);
  write(
    'mailpools.ini',
    [
      '[main]',
      `delivery_port=${options.deliveryPort}`,
      `metrics_port=${options.metricsPort}`,
      `default_tenant=${options.defaultTenant ?? ''}`,
      '',
      '[connectors]',
      ...Object.entries(options.connectors ?? {}).map(([ip, value]) => `${ip}=${value}`),
      '',
      '[forwarders]',
      ...(options.forwarders ?? []).map((ip) => `${ip}=true`),
      '',
    ].join('\n'),
  );
}

/** Haraka's own start script, as installed by npm. */
export function harakaBin(): string {
  return join(dirname(createRequire(import.meta.url).resolve('Haraka/package.json')), 'bin', 'haraka');
}

export interface HarakaProcess {
  readonly child: ChildProcess;
  output(): string;
  stop(): Promise<number | null>;
}

/**
 * Starts Haraka on an instance folder with the pipeline's environment (KAFKA_BROKERS,
 * MAILPOOLS_NAMESPACE, MAILPOOLS_POLICY_FILE, MAILPOOLS_DNS_SERVERS …); resolves once the plugin
 * answers /readyz (it is connected to the pipeline) and the SMTP port accepts connections.
 */
export async function startHaraka(
  options: HarakaInstanceOptions,
  env: Readonly<Record<string, string>>,
  timeoutMs = 60_000,
): Promise<HarakaProcess> {
  const child = spawn(process.execPath, [harakaBin(), '-c', options.dir], {
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk) => {
    output += chunk;
  });
  child.stderr?.on('data', (chunk) => {
    output += chunk;
  });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`Haraka exited before it was ready:\n${output.slice(-4_000)}`);
    try {
      if ((await fetch(`http://127.0.0.1:${options.metricsPort}/readyz`)).status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`Haraka was not ready within ${timeoutMs} ms:\n${output.slice(-4_000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  // Haraka shuts down on SIGINT (SIGTERM only when it is pid 1); its queue stays on disk.
  return { child, output: () => output, stop: () => stopChildProcess(child, 30_000, 'SIGINT') };
}
