// PostgreSQL for the message trace: the one named by DATABASE_URL, or our own cluster on
// MAILPOOLS_POSTGRES_PORT, from the machine's PostgreSQL binaries (Debian's postgresql package).
// PostgreSQL refuses to run as root, so under root the cluster belongs to the `postgres` system
// user the package creates, in a data directory that user can reach (see config.ts).
import { chownSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { redactUrl } from '@mailpools/core';
import {
  type ClusterOwner,
  endpointsOf,
  HOST,
  postgresClusterOwner,
  type StackConfig,
  stackTag,
} from './config.ts';
import { StackError } from './errors.ts';
import { probePostgres } from './probe.ts';
import { runToEnd, spawnDetached, which } from './process.ts';

export const POSTGRES_READY_TIMEOUT_MS = 30_000;
const INSTALL_HINT =
  'Install PostgreSQL (apt-get install postgresql), or set DATABASE_URL to a PostgreSQL the stack should use instead.';

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

/** Under root, the `postgres` user the cluster runs as; as another user, that user. */
function clusterOwner(): ClusterOwner | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const owner = postgresClusterOwner();
  if (owner) return owner;
  throw new StackError(
    'MAILPOOLS_ERR_STACK_POSTGRES_ROOT',
    'PostgreSQL does not run as root, and there is no `postgres` user to run it as.',
    { hint: `Run as another user, create a postgres user, or ${INSTALL_HINT.toLowerCase()}` },
  );
}

export async function startPostgres(config: StackConfig): Promise<number> {
  const bin = binDir();
  const dataDir = config.paths.postgresDataDir;
  const owner = clusterOwner();
  const ids = owner ? { uid: owner.uid, gid: owner.gid } : undefined;
  if (!existsSync(join(dataDir, 'PG_VERSION'))) {
    // Only the data directory is private: the cluster's owner must be able to enter its parents.
    mkdirSync(dirname(dataDir), { recursive: true, mode: 0o755 });
    mkdirSync(dataDir, { mode: 0o700 });
    if (owner) chownSync(dataDir, owner.uid, owner.gid);
    config.log(`postgres: creating a cluster in ${dataDir}`);
    // The data directory is the one place the cluster's owner is sure to be able to enter.
    const { code, lines } = await runToEnd(
      join(bin, 'initdb'),
      ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--no-sync'],
      { ...ids, cwd: dataDir },
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
      '-D',
      dataDir,
      // The stack's tag, as a custom setting PostgreSQL accepts and ignores: how `down` finds it.
      '-c',
      stackTag(config),
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
    dataDir,
    postgresLogPath(config),
    ids,
  );
  return pid;
}
