// PostgreSQL for the message trace: the one named by DATABASE_URL, or our own cluster in the stack's
// data directory on MAILPOOLS_POSTGRES_PORT, from the machine's PostgreSQL binaries (Debian's
// postgresql package). PostgreSQL refuses to run as root, so under root the cluster belongs to the
// `postgres` system user the package creates.
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { redactUrl } from '@mailpools/core';
import { endpointsOf, HOST, type StackConfig } from './config.ts';
import { StackError } from './errors.ts';
import { probePostgres } from './probe.ts';
import { ownedPid, runToEnd, spawnDetached, which, writePid } from './process.ts';

export const POSTGRES_READY_TIMEOUT_MS = 30_000;
const INSTALL_HINT =
  'Install PostgreSQL (apt-get install postgresql), or set DATABASE_URL to a PostgreSQL the stack should use instead.';

export const postgresPidFile = (config: StackConfig) => join(config.paths.runDir, 'postgres.pid');
export const postgresLogPath = (config: StackConfig) => join(config.paths.logDir, 'postgres.log');
export const databaseUrl = (config: StackConfig) => endpointsOf(config).databaseUrl;
export const postgresReady = (config: StackConfig) => probePostgres(databaseUrl(config));

/** The URL without its password, for printing. */
export function redactedDatabaseUrl(config: StackConfig): string {
  return redactUrl(databaseUrl(config));
}

export async function checkExternalPostgres(config: StackConfig): Promise<void> {
  if (await postgresReady(config)) return;
  throw new StackError(
    'MAILPOOLS_ERR_STACK_POSTGRES_UNREACHABLE',
    `DATABASE_URL (${redactedDatabaseUrl(config)}) does not answer.`,
    {
      hint: 'Start that PostgreSQL or correct DATABASE_URL; or unset DATABASE_URL and the stack starts its own on MAILPOOLS_POSTGRES_PORT.',
    },
  );
}

export function postgresPid(config: StackConfig): number | undefined {
  const marker = `-D ${config.paths.postgresDataDir} `;
  return ownedPid(postgresPidFile(config), (line) => line.includes('postgres') && line.includes(marker));
}

/** The directory of initdb and postgres: PATH first, then Debian's /usr/lib/postgresql/<newest>/bin. */
function binDir(): string {
  const onPath = which('initdb');
  if (onPath) return join(onPath, '..');
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions[0] === undefined)
    throw new StackError(
      'MAILPOOLS_ERR_STACK_MISSING_TOOL',
      'PostgreSQL (initdb, postgres) is not installed.',
      {
        hint: INSTALL_HINT,
      },
    );
  return join(root, versions[0], 'bin');
}

/** Under root, the ids of the `postgres` user, which the cluster then runs as. */
function clusterOwner(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch {
    throw new StackError(
      'MAILPOOLS_ERR_STACK_POSTGRES_ROOT',
      'PostgreSQL does not run as root, and there is no `postgres` user to run it as.',
      { hint: `Run as another user, create a postgres user, or ${INSTALL_HINT.toLowerCase()}` },
    );
  }
}

export async function startPostgres(config: StackConfig): Promise<number> {
  const bin = binDir();
  const dataDir = config.paths.postgresDataDir;
  const owner = clusterOwner();
  if (!existsSync(join(dataDir, 'PG_VERSION'))) {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    if (owner) chownSync(dataDir, owner.uid, owner.gid);
    config.log(`postgres: creating a cluster in ${dataDir}`);
    const { code, lines } = await runToEnd(
      join(bin, 'initdb'),
      ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--no-sync'],
      { ...owner },
    );
    if (code !== 0)
      throw new StackError('MAILPOOLS_ERR_STACK_POSTGRES_INIT', `initdb failed with exit code ${code}.`, {
        hint: `Fix what it says, or delete ${dataDir} and try again.`,
        logTail: lines,
      });
  }
  const pid = spawnDetached(
    join(bin, 'postgres'),
    [
      // The data directory first: it is how `down` recognises this cluster's postmaster.
      '-D',
      dataDir,
      '-p',
      String(config.postgresPort),
      '-c',
      `listen_addresses=${HOST}`,
      '-c',
      'unix_socket_directories=',
      // A development and test store, like the rest of the stack: speed over durability.
      '-c',
      'fsync=off',
      '-c',
      'synchronous_commit=off',
      '-c',
      'full_page_writes=off',
    ],
    config.stackDir,
    postgresLogPath(config),
    owner,
  );
  writePid(postgresPidFile(config), pid);
  return pid;
}
