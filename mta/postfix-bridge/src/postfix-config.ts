// A private Postfix instance (its own main.cf, master.cf, queue and data directories) wired to the
// bridge:
//
//   client ─► submission smtpd ──smtpd_proxy_filter──► bridge (waits for the pool)
//                                                        │  blocked: 550 …, undecided: 451 …
//                                                        ▼  (the client sees the bridge's reply)
//             re-injection smtpd of the source IP  ◄─────┘  MAIL FROM = SRS address where due
//               content_filter = mailpools_ipN:  ──► smtp transport, smtp_bind_address = IP,
//                                                    smtp_helo_name = the pool's HELO
//   throttled: the hold listener queues it with content_filter = the bridge's requeue port,
//              which answers 4xx until its time, then re-injects it as above
//   Postfix's own bounces: content_filter (internal_mail_filter_classes = bounce) = the requeue
//              port, which judges them like any message
//   anything else: default_transport = the requeue port — never delivered without a decision
import { chmodSync, chownSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Routes } from './routes.ts';

export interface PostfixInstanceOptions {
  /** The instance folder; the postfix user must be able to enter it (not a 0700 parent). */
  readonly dir: string;
  readonly myhostname: string;
  /** Submission: where clients connect (SMTP AUTH, or a trusted connector/forwarder IP). */
  readonly submissionHost: string;
  readonly submissionPort: number;
  /** IPs that may relay without AUTH: on-premises connectors and the platform's forwarders. */
  readonly trustedClients: readonly string[];
  /** The bridge: its before-queue proxy, its requeue port, its Dovecot-protocol auth port. */
  readonly bridgeHost: string;
  readonly proxyPort: number;
  readonly requeuePort: number;
  /** SASL: the bridge's Dovecot-protocol server (`inet:host:port`), or a Dovecot/Cyrus of your own. */
  readonly saslType: 'dovecot' | 'cyrus';
  readonly saslPath: string;
  readonly routes: Routes;
  /** Every delivery to this next hop ("[127.0.0.1]:2525") instead of the recipient's MX: tests. */
  readonly nexthop?: string;
  /** Seconds the client waits for the bridge at end of DATA; above the longest decision timeout. */
  readonly proxyTimeoutSeconds: number;
  /** How soon Postfix retries a deferred message (throttled mail waits in these steps). */
  readonly retrySeconds: number;
  readonly postfixUser?: { uid: number; gid: number };
}

export interface PostfixInstance {
  readonly configDir: string;
  readonly logFile: string;
}

export function writePostfixInstance(options: PostfixInstanceOptions): PostfixInstance {
  const configDir = join(options.dir, 'conf');
  const queueDir = join(options.dir, 'queue');
  const dataDir = join(options.dir, 'data');
  for (const dir of [options.dir, configDir, queueDir, dataDir]) {
    mkdirSync(dir, { recursive: true });
    chmodSync(dir, 0o755);
  }
  if (options.postfixUser) chownSync(dataDir, options.postfixUser.uid, options.postfixUser.gid);
  const logFile = join(options.dir, 'postfix.log');
  const nexthop = options.nexthop ?? '';
  const bridge = (port: number) => `[${options.bridgeHost}]:${port}`;
  const main = [
    '# Written by @mailpools/postfix-bridge (postfix-config.ts); regenerate rather than edit.',
    'compatibility_level = 3.6',
    `queue_directory = ${queueDir}`,
    `data_directory = ${dataDir}`,
    'command_directory = /usr/sbin',
    'daemon_directory = /usr/lib/postfix/sbin',
    'meta_directory = /etc/postfix',
    'shlib_directory = /usr/lib/postfix',
    'mail_owner = postfix',
    'setgid_group = postdrop',
    `myhostname = ${options.myhostname}`,
    'mydestination =',
    'local_recipient_maps =',
    'inet_interfaces = loopback-only',
    'inet_protocols = ipv4',
    `mynetworks = ${['127.0.0.0/8', ...options.trustedClients].join(' ')}`,
    `maillog_file = ${logFile}`,
    `maillog_file_prefixes = ${options.dir}`,
    'biff = no',
    'notify_classes =',
    // Nothing leaves without a decision: what has no FILTER goes to the bridge to be judged. (An
    // error or retry transport here would make smtpd refuse every recipient at RCPT.)
    `default_transport = mailpools_requeue:${bridge(options.requeuePort)}`,
    `relay_transport = mailpools_requeue:${bridge(options.requeuePort)}`,
    // Postfix's own bounces (and mail from pickup) go to the bridge to be judged.
    'internal_mail_filter_classes = bounce',
    `content_filter = mailpools_requeue:${bridge(options.requeuePort)}`,
    `smtpd_sasl_type = ${options.saslType}`,
    `smtpd_sasl_path = ${options.saslPath}`,
    'smtpd_sasl_authenticated_header = yes',
    'smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject',
    `smtpd_proxy_timeout = ${options.proxyTimeoutSeconds}s`,
    'smtpd_authorized_xforward_hosts = 127.0.0.0/8',
    `minimal_backoff_time = ${options.retrySeconds}s`,
    `maximal_backoff_time = ${options.retrySeconds * 4}s`,
    `queue_run_delay = ${options.retrySeconds}s`,
    'smtp_tls_security_level = none',
    'smtpd_tls_security_level = none',
    '',
  ].join('\n');
  // master.cf columns: service type private unpriv chroot wakeup maxproc command; listeners are
  // public (private = n), delivery agents private (-), nothing chrooted.
  const service = (name: string, type: 'inet' | 'unix', command: string, ...settings: string[]) =>
    [
      `${name.padEnd(18)} ${type.padEnd(5)} ${type === 'inet' ? 'n' : '-'} - n - - ${command}`,
      ...settings.map((s) => `  -o ${s}`),
    ].join('\n');
  const reinjection = (port: number, filter: string) =>
    service(
      `${options.bridgeHost}:${port}`,
      'inet',
      'smtpd',
      `content_filter=${filter}`,
      'smtpd_proxy_filter=',
      'smtpd_sasl_auth_enable=no',
      'mynetworks=127.0.0.0/8',
      'smtpd_relay_restrictions=permit_mynetworks,reject',
      'smtpd_client_restrictions=permit_mynetworks,reject',
      'receive_override_options=no_unknown_recipient_checks,no_header_body_checks,no_milters',
    );
  const master = [
    '# Written by @mailpools/postfix-bridge (postfix-config.ts); regenerate rather than edit.',
    service(
      `${options.submissionHost}:${options.submissionPort}`,
      'inet',
      'smtpd',
      'smtpd_sasl_auth_enable=yes',
      `smtpd_proxy_filter=${options.bridgeHost}:${options.proxyPort}`,
      'smtpd_proxy_options=speed_adjust',
    ),
    reinjection(options.routes.holdPort, `mailpools_requeue:${bridge(options.requeuePort)}`),
    reinjection(options.routes.defaultPort, `mailpools_default:${nexthop}`),
    ...options.routes.sources.map((s) => reinjection(s.port, `${s.transport}:${nexthop}`)),
    service('mailpools_default', 'unix', 'smtp'),
    ...options.routes.sources.map((s) =>
      service(s.transport, 'unix', 'smtp', `smtp_bind_address=${s.ip}`, `smtp_helo_name=${s.helo}`),
    ),
    service('mailpools_requeue', 'unix', 'smtp', 'smtp_send_xforward_command=yes'),
    ...[
      'pickup    unix  n - n 60 1 pickup',
      'cleanup   unix  n - n - 0 cleanup',
      'qmgr      unix  n - n 300 1 qmgr',
      'rewrite   unix  - - n - - trivial-rewrite',
      'bounce    unix  - - n - 0 bounce',
      'defer     unix  - - n - 0 bounce',
      'trace     unix  - - n - 0 bounce',
      'verify    unix  - - n - 1 verify',
      'flush     unix  n - n 1000? 0 flush',
      'proxymap  unix  - - n - - proxymap',
      'proxywrite unix - - n - 1 proxymap',
      'smtp      unix  - - n - - smtp',
      'relay     unix  - - n - - smtp',
      'showq     unix  n - n - - showq',
      'error     unix  - - n - - error',
      'retry     unix  - - n - - error',
      'discard   unix  - - n - - discard',
      'anvil     unix  - - n - 1 anvil',
      'scache    unix  - - n - 1 scache',
      'postlog   unix-dgram n - n - 1 postlogd',
    ],
    '',
  ].join('\n');
  writeFileSync(join(configDir, 'main.cf'), main);
  writeFileSync(join(configDir, 'master.cf'), master);
  return { configDir, logFile };
}
