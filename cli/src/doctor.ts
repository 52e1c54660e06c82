// `mailpools doctor`: what a start needs, checked one by one, each failure with what to do.
// Exit code 0 only when every check holds (warnings aside).
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { loadRuntimeConfig } from '@mailpools/core';
import { cacheLimitsFromEnv, Resolver, transportFromEnv } from '@mailpools/dns';
import {
  type Check,
  probeKafka,
  probePostgres,
  probeRedis,
  probeRegistry,
  stackChecks,
} from '@mailpools/stack';

export const DOCTOR_USAGE = `usage: mailpools doctor [--json]
  Checks what a start needs: Node 24, Java and Maven, the stack's ports (and which variable moves
  each), the directories every user the stack runs a part as must enter, disk space, the Kafka,
  registry, Redis and PostgreSQL endpoints that are configured, the DNS resolvers, the clock.
  Exit code 0 only when every check holds.`;

function nodeCheck(): Check {
  const major = Number(process.versions.node.split('.')[0]);
  return major >= 24
    ? { name: 'node', ok: true, detail: `Node ${process.versions.node}` }
    : {
        name: 'node',
        ok: false,
        detail: `Node ${process.versions.node} runs this command`,
        fix: 'run it through npm (npx mailpools, npm start): npm ci installs Node 24 into node_modules/.bin',
      };
}

/** The endpoints the environment names (not the local stack's defaults, which `stack up` starts). */
async function endpointChecks(env: NodeJS.ProcessEnv): Promise<Check[]> {
  const config = loadRuntimeConfig(env);
  const checks: Check[] = [];
  const probe = async (name: string, variable: string, ok: Promise<boolean>, what: string) => {
    checks.push(
      (await ok)
        ? { name, ok: true, detail: `${variable} answers` }
        : {
            name,
            ok: false,
            detail: `${variable} does not answer (${what})`,
            fix: `start it, or correct ${variable}`,
          },
    );
  };
  if (env.KAFKA_BROKERS)
    for (const broker of config.kafkaBrokers) {
      const [host, port] = broker.split(':') as [string, string];
      await probe(`kafka ${broker}`, 'KAFKA_BROKERS', probeKafka(host, Number(port)), 'a Metadata request');
    }
  if (env.SCHEMA_REGISTRY_URL)
    await probe(
      'schema registry',
      'SCHEMA_REGISTRY_URL',
      probeRegistry(config.schemaRegistryUrl),
      'GET /subjects',
    );
  if (env.REDIS_URL) await probe('redis', 'REDIS_URL', probeRedis(config.redisUrl), 'PING');
  if (env.DATABASE_URL)
    await probe('postgresql', 'DATABASE_URL', probePostgres(config.databaseUrl), 'SELECT 1');
  if (checks.length === 0)
    checks.push({
      name: 'endpoints',
      ok: true,
      detail: 'none configured: `npm start` starts the local stack',
    });
  return checks;
}

async function dnsCheck(env: NodeJS.ProcessEnv): Promise<Check> {
  try {
    const transport = transportFromEnv(env);
    const resolver = new Resolver({ ...transport, ...cacheLimitsFromEnv(env) });
    const answer = await resolver.lookup('example.com', 'A');
    const servers = transport.servers.map((s) => `${s.host}:${s.port}`).join(', ');
    return { name: 'dns', ok: true, detail: `${servers} answers (example.com: ${answer.status})` };
  } catch (error) {
    return {
      name: 'dns',
      ok: false,
      detail: (error as Error).message,
      fix: 'set MAILPOOLS_DNS_SERVERS to resolvers that answer, or fix /etc/resolv.conf',
    };
  }
}

function clockCheck(): Check {
  const year = new Date().getUTCFullYear();
  if (year < 2024 || year > 2100)
    return {
      name: 'clock',
      ok: false,
      detail: `the clock says ${new Date().toISOString()}`,
      fix: 'set the system clock: windows, limits and expiries run on time',
    };
  try {
    const synced = execFileSync('timedatectl', ['show', '-p', 'NTPSynchronized', '--value'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    if (synced === 'yes')
      return { name: 'clock', ok: true, detail: `${new Date().toISOString()}, synchronised` };
  } catch {
    // no systemd here: the synchronisation is not known
  }
  return {
    name: 'clock',
    ok: true,
    warning: true,
    detail: `${new Date().toISOString()}; its synchronisation is not known`,
    fix: 'keep it synchronised (NTP): event times come from the platform, expiries from this clock',
  };
}

export async function allChecks(env: NodeJS.ProcessEnv = process.env): Promise<Check[]> {
  // A bad setting is a finding, not a crash.
  try {
    loadRuntimeConfig(env);
  } catch (error) {
    return [
      {
        name: 'configuration',
        ok: false,
        detail: (error as Error).message,
        fix: 'see docs/configuration.md',
      },
    ];
  }
  return [
    nodeCheck(),
    ...(await stackChecks()),
    ...(await endpointChecks(env)),
    await dnsCheck(env),
    clockCheck(),
  ];
}

export async function runDoctor(argv: string[], log: (line: string) => void = console.log): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { json: { type: 'boolean', default: false } } });
  const checks = await allChecks();
  const failed = checks.filter((c) => !c.ok);
  if (values.json) log(JSON.stringify({ ok: failed.length === 0, checks }));
  else {
    const colour = process.stdout.isTTY === true && !process.env.NO_COLOR;
    const mark = (c: Check) => {
      const text = !c.ok ? 'FAIL' : c.warning ? 'warn' : ' ok ';
      const code = !c.ok ? '31' : c.warning ? '33' : '32';
      return colour ? `\u001b[${code}m${text}\u001b[0m` : text;
    };
    for (const check of checks) {
      log(`${mark(check)}  ${check.name.padEnd(24)} ${check.detail}`);
      if ((!check.ok || check.warning) && check.fix) log(`      ${''.padEnd(24)} → ${check.fix}`);
    }
    log(failed.length === 0 ? 'all checks hold' : `${failed.length} check(s) failed`);
  }
  return failed.length === 0 ? 0 : 1;
}
