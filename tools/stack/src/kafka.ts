// Apache Kafka in KRaft mode, one node that is both broker and controller, from Maven Central jars.
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HOST, KAFKA_VERSION, type StackConfig, stackTag } from './config.ts';
import { StackError } from './errors.ts';
import { requireMaven, runMaven } from './maven.ts';
import { probeKafka } from './probe.ts';
import { JAVA_INSTALL_HINT, requireTool, runToEnd, spawnDetached, tail } from './process.ts';

export const KAFKA_READY_TIMEOUT_MS = 60_000;

export const kafkaLogPath = (config: StackConfig) => join(config.paths.logDir, 'kafka.log');
const serverProperties = (config: StackConfig) => join(config.paths.confDir, 'kafka-server.properties');
const log4jConfig = (config: StackConfig) => join(config.paths.confDir, 'kafka-log4j2.xml');
const classpath = (config: StackConfig) => `${config.paths.kafkaLib}/*`; // expanded by java itself

export const kafkaEndpoint = (config: StackConfig) => `${HOST}:${config.kafkaPort}`;

/** The SCRAM user of the SASL_SSL listener. */
export const KAFKA_SASL_USER = 'mailpools';
const keystore = (config: StackConfig) => join(config.paths.confDir, 'kafka-tls.p12');
/** The broker's self-signed certificate, PEM: what a client trusts (NODE_EXTRA_CA_CERTS). */
export const kafkaCaFile = (config: StackConfig) => join(config.paths.confDir, 'kafka-ca.pem');

/** A secret kept in the conf dir (0600), made once: the SCRAM password, the keystore's password. */
function secret(config: StackConfig, name: string): string {
  const file = join(config.paths.confDir, name);
  if (!existsSync(file)) {
    mkdirSync(config.paths.confDir, { recursive: true });
    writeFileSync(file, randomBytes(18).toString('base64url'), { mode: 0o600 });
    chmodSync(file, 0o600);
  }
  return readFileSync(file, 'utf8').trim();
}

/** How a client reaches the SASL_SSL listener (for trying the services' security settings). */
export function kafkaSaslCredentials(config: StackConfig) {
  return {
    brokers: [`${HOST}:${config.kafkaSaslPort}`],
    protocol: 'SASL_SSL',
    mechanism: 'SCRAM-SHA-512',
    username: KAFKA_SASL_USER,
    password: secret(config, 'kafka-sasl-password'),
    caFile: kafkaCaFile(config),
  } as const;
}

/** A PKCS12 keystore with a self-signed certificate for 127.0.0.1 and localhost, made once. */
async function ensureKeystore(config: StackConfig): Promise<void> {
  if (existsSync(keystore(config)) && existsSync(kafkaCaFile(config))) return;
  requireTool('keytool', JAVA_INSTALL_HINT);
  const password = secret(config, 'kafka-keystore-password');
  rmSync(keystore(config), { force: true });
  const steps = [
    [
      '-genkeypair',
      '-alias',
      'kafka',
      '-keyalg',
      'RSA',
      '-keysize',
      '2048',
      '-validity',
      '3650',
      '-dname',
      'CN=localhost,O=mailpools local stack',
      '-ext',
      'SAN=ip:127.0.0.1,dns:localhost',
      '-keystore',
      keystore(config),
      '-storetype',
      'PKCS12',
      '-storepass',
      password,
    ],
    [
      '-exportcert',
      '-rfc',
      '-alias',
      'kafka',
      '-keystore',
      keystore(config),
      '-storepass',
      password,
      '-file',
      kafkaCaFile(config),
    ],
  ];
  for (const args of steps) {
    const { code, lines } = await runToEnd('keytool', args);
    if (code !== 0)
      throw new StackError('MAILPOOLS_ERR_STACK_FORMAT_FAILED', `keytool failed (exit code ${code}).`, {
        hint: `Delete ${config.paths.confDir} and run \`mailpools stack up\` again.`,
        logTail: tail(lines),
      });
  }
}
export const kafkaReady = (config: StackConfig) => probeKafka(HOST, config.kafkaPort);

/** Copies the broker's jars (and their dependencies) into the cache once; later runs only see the marker. */
export async function fetchKafka(config: StackConfig): Promise<void> {
  const marker = join(config.paths.kafkaHome, '.fetched');
  if (existsSync(marker)) return;
  requireMaven();
  config.log(
    `fetching Apache Kafka ${KAFKA_VERSION} jars with Maven into ${config.paths.kafkaLib} ` +
      '(first run only: they stay in ~/.m2 and this cache)',
  );
  rmSync(config.paths.kafkaLib, { recursive: true, force: true }); // a half-finished earlier attempt
  await runMaven(
    config,
    ['dependency:copy-dependencies', `-DoutputDirectory=${config.paths.kafkaLib}`],
    `Apache Kafka ${KAFKA_VERSION}`,
  );
  writeFileSync(marker, `${new Date().toISOString()}\n`);
}

export function kafkaFormatted(config: StackConfig): boolean {
  return existsSync(join(config.paths.kafkaDataDir, 'meta.properties'));
}

export function wipeKafkaData(config: StackConfig): void {
  rmSync(config.paths.kafkaDataDir, { recursive: true, force: true });
}

function writeKafkaConfigs(config: StackConfig): void {
  mkdirSync(config.paths.confDir, { recursive: true });
  const { kafkaPort, kafkaControllerPort } = config;
  writeFileSync(
    serverProperties(config),
    [
      '# Generated by @mailpools/stack on every start; edits are overwritten.',
      'process.roles=broker,controller',
      'node.id=1',
      `controller.quorum.voters=1@${HOST}:${kafkaControllerPort}`,
      `listeners=PLAINTEXT://${HOST}:${kafkaPort},CONTROLLER://${HOST}:${kafkaControllerPort},SASL_SSL://${HOST}:${config.kafkaSaslPort}`,
      `advertised.listeners=PLAINTEXT://${HOST}:${kafkaPort},SASL_SSL://${HOST}:${config.kafkaSaslPort}`,
      'controller.listener.names=CONTROLLER',
      'inter.broker.listener.name=PLAINTEXT',
      'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL',
      // SASL_SSL: SCRAM-SHA-512 users (created when the storage is formatted) over TLS.
      'sasl.enabled.mechanisms=SCRAM-SHA-512',
      'listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;',
      `listener.name.sasl_ssl.ssl.keystore.location=${keystore(config)}`,
      `listener.name.sasl_ssl.ssl.keystore.password=${secret(config, 'kafka-keystore-password')}`,
      'listener.name.sasl_ssl.ssl.keystore.type=PKCS12',
      `log.dirs=${config.paths.kafkaDataDir}`,
      // One node: internal topics cannot have more replicas than that.
      'offsets.topic.replication.factor=1',
      'transaction.state.log.replication.factor=1',
      'transaction.state.log.min.isr=1',
      'share.coordinator.state.topic.replication.factor=1',
      'share.coordinator.state.topic.min.isr=1',
      // Consumers in tests join at once instead of waiting 3 s for more members.
      'group.initial.rebalance.delay.ms=0',
      // Topics are created on purpose (with their partition counts), never by a typo in a producer.
      'auto.create.topics.enable=false',
      '',
    ].join('\n'),
    { mode: 0o600 }, // it holds the keystore's password
  );
  chmodSync(serverProperties(config), 0o600);
  const logFile = kafkaLogPath(config).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/"/g, '&quot;');
  writeFileSync(
    log4jConfig(config),
    `<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by @mailpools/stack: the broker logs to a file, never to the terminal that ran \`up\`. -->
<Configuration status="warn">
  <Appenders>
    <File name="file" fileName="${logFile}" append="true">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
    </File>
  </Appenders>
  <Loggers>
    <Logger name="kafka.request.logger" level="warn"/>
    <Root level="info"><AppenderRef ref="file"/></Root>
  </Loggers>
</Configuration>
`,
  );
}

/** A Kafka cluster id: 16 random bytes, base64url. One starting with '-' would read as a CLI flag. */
function clusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

async function formatStorage(config: StackConfig): Promise<void> {
  // No --standalone: with controller.quorum.voters set (a static quorum), the tool rejects it.
  const { code, lines } = await runToEnd('java', [
    `-Dlog4j2.configurationFile=${log4jConfig(config)}`,
    '-cp',
    classpath(config),
    'kafka.tools.StorageTool',
    'format',
    '-t',
    clusterId(),
    '-c',
    serverProperties(config),
    '--add-scram',
    `SCRAM-SHA-512=[name=${KAFKA_SASL_USER},password=${secret(config, 'kafka-sasl-password')}]`,
  ]);
  if (code !== 0) {
    throw new StackError(
      'MAILPOOLS_ERR_STACK_FORMAT_FAILED',
      `Formatting Kafka storage failed (exit code ${code}).`,
      {
        hint: `Run \`mailpools stack down --wipe\`, then \`up\` again; the tool's output is below, more in ${kafkaLogPath(config)}.`,
        logTail: tail(lines),
      },
    );
  }
}

/** Formats storage if needed and starts the broker detached. Returns its pid; ports and readiness are the caller's. */
export async function startKafka(config: StackConfig): Promise<number> {
  requireTool('java', JAVA_INSTALL_HINT);
  await ensureKeystore(config);
  writeKafkaConfigs(config);
  if (!kafkaFormatted(config)) await formatStorage(config);
  const pid = spawnDetached(
    'java',
    [
      '-Xmx512m',
      `-D${stackTag(config)}`,
      `-Dlog4j2.configurationFile=${log4jConfig(config)}`,
      '-cp',
      classpath(config),
      'kafka.Kafka',
      serverProperties(config),
    ],
    config.stackDir,
    kafkaLogPath(config),
  );
  return pid;
}
