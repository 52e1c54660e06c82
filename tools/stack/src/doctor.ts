// What `mailpools doctor` asks of the local stack before a start: the programs it runs, the
// ports it listens on (and which variable moves each), the directories every user it runs a
// part as must enter, and the disk it writes to. Each check says what to do when it fails.

import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, statfsSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  HOST,
  PORT_SETTINGS,
  postgresClusterOwner,
  resolveConfig,
  type StackOptions,
  userCanEnter,
} from './config.ts';
import { commandLine, portIsFree, taggedProcesses, which } from './process.ts';

export interface Check {
  readonly name: string;
  readonly ok: boolean;
  /** What was found. */
  readonly detail: string;
  /** What to do, when not ok. */
  readonly fix?: string;
  /** A warning does not fail the doctor. */
  readonly warning?: boolean;
}

const MIN_FREE_BYTES = 2 * 1024 ** 3;

/** What a program prints about its version, stdout and stderr together (`java -version` writes to stderr). */
function versionOf(command: string, args: string[]): string {
  const run = spawnSync(command, args, { encoding: 'utf8', timeout: 20_000 });
  return `${run.stdout ?? ''}${run.stderr ?? ''}`.trim();
}

function javaCheck(): Check {
  if (!which('java'))
    return { name: 'java', ok: false, detail: 'not on PATH', fix: 'apt-get install openjdk-17-jre-headless' };
  const text = versionOf('java', ['-version']);
  const major = Number(/version "(\d+)/.exec(text)?.[1] ?? 0);
  return major >= 17
    ? { name: 'java', ok: true, detail: `Java ${major}` }
    : {
        name: 'java',
        ok: false,
        detail: `Java ${major || 'of unknown version'}`,
        fix: 'Kafka 4 needs Java 17 or newer: apt-get install openjdk-17-jre-headless',
      };
}

function mavenCheck(options: StackOptions): Check {
  const config = resolveConfig({ log: () => undefined, ...options });
  const fetched =
    existsSync(`${config.paths.kafkaHome}/.fetched`) && existsSync(`${config.paths.registryHome}/.fetched`);
  if (which('mvn'))
    return {
      name: 'maven',
      ok: true,
      detail: fetched ? 'installed (Kafka and the registry are fetched already)' : 'installed',
    };
  return fetched
    ? {
        name: 'maven',
        ok: true,
        warning: true,
        detail: 'not installed; not needed while .cache holds Kafka and the registry',
        fix: 'apt-get install maven',
      }
    : {
        name: 'maven',
        ok: false,
        detail: 'not installed, and Kafka and the registry are not fetched yet',
        fix: 'apt-get install maven (the first start fetches them from Maven Central)',
      };
}

async function portChecks(options: StackOptions): Promise<Check[]> {
  const config = resolveConfig({ log: () => undefined, ...options });
  const own = taggedProcesses().filter((p) => p.stackDir === config.stackDir);
  const ours = new Set(own.map((p) => p.pid));
  const partOf = (key: string) => (key.startsWith('kafka') ? 'kafka' : key.replace('Port', ''));
  const checks: Check[] = [];
  for (const [key, { env }] of Object.entries(PORT_SETTINGS)) {
    if (key === 'redisPort' && config.externalRedisUrl) continue;
    if (key === 'postgresPort' && config.externalDatabaseUrl) continue;
    const port = config[key as keyof typeof PORT_SETTINGS] as number;
    if (await portIsFree(HOST, port)) {
      checks.push({ name: `port ${port}`, ok: true, detail: `free (${env})` });
      continue;
    }
    const holder = listenerOf(port);
    if (holder !== undefined ? ours.has(holder) : own.some((p) => p.part === partOf(key))) {
      checks.push({ name: `port ${port}`, ok: true, detail: `this stack's own (${env})` });
      continue;
    }
    checks.push({
      name: `port ${port}`,
      ok: false,
      detail: `taken${holder === undefined ? '' : ` by pid ${holder} (${commandLine(holder).slice(0, 80)})`}`,
      fix: `stop what listens there, or set ${env} to a free port`,
    });
  }
  return checks;
}

/** The pid listening on a TCP port of this host, from /proc (undefined when it cannot tell). */
function listenerOf(port: number): number | undefined {
  try {
    const out = execFileSync('ss', ['-Hltnp', `sport = :${port}`], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const pid = /pid=(\d+)/.exec(out)?.[1];
    return pid ? Number(pid) : undefined;
  } catch {
    return undefined;
  }
}

function writable(path: string): boolean {
  for (let dir = path; ; dir = dirname(dir)) {
    if (existsSync(dir)) {
      try {
        accessSync(dir, constants.W_OK | constants.X_OK);
        return true;
      } catch {
        return false;
      }
    }
    if (dir === dirname(dir)) return false;
  }
}

function directoryChecks(options: StackOptions): Check[] {
  const config = resolveConfig({ log: () => undefined, ...options });
  const checks: Check[] = [];
  for (const [name, dir, variable] of [
    ['stack directory', config.stackDir, 'MAILPOOLS_STACK_DIR'],
    ['download cache', config.cacheDir, 'MAILPOOLS_CACHE_DIR'],
  ] as const)
    checks.push(
      writable(dir)
        ? { name, ok: true, detail: `${dir} is writable` }
        : {
            name,
            ok: false,
            detail: `${dir} is not writable by this user`,
            fix: `set ${variable} to a directory you can write`,
          },
    );
  const owner = postgresClusterOwner();
  if (!config.externalDatabaseUrl && owner) {
    const dir = config.paths.postgresDataDir;
    checks.push(
      userCanEnter(owner, dirname(dir))
        ? {
            name: 'postgres data directory',
            ok: true,
            detail: `the postgres user can enter ${dirname(dir)} (data in ${dir})`,
          }
        : {
            name: 'postgres data directory',
            ok: false,
            detail: `the postgres user (PostgreSQL refuses root) cannot enter ${dirname(dir)}`,
            fix: 'unset MAILPOOLS_POSTGRES_DATA_DIR (the stack then picks a place that user can reach) or point it at one',
          },
    );
  }
  return checks;
}

function diskCheck(options: StackOptions): Check {
  const config = resolveConfig({ log: () => undefined, ...options });
  let dir = config.stackDir;
  while (!existsSync(dir)) dir = dirname(dir);
  const stats = statfsSync(dir);
  const free = Number(stats.bavail) * Number(stats.bsize);
  const gib = (free / 1024 ** 3).toFixed(1);
  return free >= MIN_FREE_BYTES
    ? { name: 'disk', ok: true, detail: `${gib} GiB free under ${dir}` }
    : {
        name: 'disk',
        ok: false,
        detail: `${gib} GiB free under ${dir}`,
        fix: 'free at least 2 GiB (Kafka, the registry and their data)',
      };
}

/** The stack's checks: programs, ports, directories, disk. */
export async function stackChecks(options: StackOptions = {}): Promise<Check[]> {
  return [
    javaCheck(),
    mavenCheck(options),
    ...(await portChecks(options)),
    ...directoryChecks(options),
    diskCheck(options),
  ];
}
