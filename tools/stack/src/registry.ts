// Apicurio Registry with in-memory storage; clients use its Confluent-compatible API (/apis/ccompat/v7).
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { endpointsOf, HOST, REGISTRY_VERSION, type StackConfig, stackTag } from './config.ts';
import { StackError } from './errors.ts';
import { requireMaven, runMaven } from './maven.ts';
import { probeRegistry } from './probe.ts';
import { JAVA_INSTALL_HINT, requireTool, runToEnd, spawnDetached, tail } from './process.ts';

export const REGISTRY_READY_TIMEOUT_MS = 90_000;

export const registryLogPath = (config: StackConfig) => join(config.paths.logDir, 'registry.log');
const runnerJar = (config: StackConfig) =>
  join(config.paths.registryHome, `apicurio-registry-app-${REGISTRY_VERSION}-runner.jar`);

export const registryEndpoint = (config: StackConfig) => endpointsOf(config).schemaRegistryUrl;
export const registryReady = (config: StackConfig) => probeRegistry(registryEndpoint(config));

/** Downloads the registry's `tar.gz:all` distribution once and extracts it into the cache. */
export async function fetchRegistry(config: StackConfig): Promise<void> {
  const home = config.paths.registryHome;
  const marker = join(home, '.fetched');
  if (existsSync(marker)) return;
  requireMaven();
  config.log(
    `fetching Apicurio Registry ${REGISTRY_VERSION} (about 110 MB) with Maven into ${home} ` +
      '(first run only: it stays in ~/.m2 and this cache)',
  );
  mkdirSync(config.cacheDir, { recursive: true });
  const tarball = join(config.cacheDir, `apicurio-registry-app-${REGISTRY_VERSION}-all.tar.gz`);
  // dependency plugin 2.8, not 3.x: the artifact's parent pom (io.apicurio:apicurio-registry) is missing
  // from Maven Central, and 3.x reads it even with -Dtransitive=false; 2.8's `get` copies the file to -Ddest.
  await runMaven(
    config,
    [
      'org.apache.maven.plugins:maven-dependency-plugin:2.8:get',
      `-Dartifact=io.apicurio:apicurio-registry-app:${REGISTRY_VERSION}:tar.gz:all`,
      '-Dtransitive=false',
      `-Ddest=${tarball}`,
    ],
    `Apicurio Registry ${REGISTRY_VERSION}`,
  );
  // Extract next to the final place and rename, so an interrupted run never leaves a half-filled home.
  const partial = `${home}.partial`;
  rmSync(partial, { recursive: true, force: true });
  mkdirSync(partial, { recursive: true });
  const { code, lines } = await runToEnd('tar', ['-xzf', tarball, '-C', partial]);
  if (code !== 0 || !existsSync(join(partial, `apicurio-registry-app-${REGISTRY_VERSION}-runner.jar`))) {
    throw new StackError('MAILPOOLS_ERR_STACK_FETCH_FAILED', `Could not extract ${tarball}.`, {
      hint: `Delete ${tarball} and run \`up\` again.`,
      logTail: tail(lines),
    });
  }
  rmSync(home, { recursive: true, force: true });
  renameSync(partial, home);
  rmSync(tarball, { force: true }); // ~/.m2 keeps its own copy
  writeFileSync(marker, `${new Date().toISOString()}\n`);
}

export async function startRegistry(config: StackConfig): Promise<number> {
  requireTool('java', JAVA_INSTALL_HINT);
  const pid = spawnDetached(
    'java',
    [
      '-Xmx384m',
      `-D${stackTag(config)}`,
      `-Dquarkus.http.host=${HOST}`,
      `-Dquarkus.http.port=${config.registryPort}`,
      '-Dquarkus.log.console.color=false',
      '-Dapicurio.rules.global.compatibility=BACKWARD',
      '-jar',
      runnerJar(config),
    ],
    config.stackDir,
    registryLogPath(config),
  );
  return pid;
}
