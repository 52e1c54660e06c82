// The bridge's settings: environment variables, as for every mailpools process.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { TrustedHosts } from '@mailpools/client';
import { defineSettings, type Env, settingError } from '@mailpools/core';

export const BRIDGE_SETTINGS = defineSettings('postfix-bridge', {
  MAILPOOLS_BRIDGE_HOST: {
    default: '127.0.0.1',
    doc: 'Address the bridge listens on, and Postfix re-injection listeners are on.',
  },
  MAILPOOLS_BRIDGE_PROXY_PORT: {
    default: '10025',
    doc: "The before-queue proxy: the submission smtpd's smtpd_proxy_filter.",
    min: 1,
    max: 65_535,
  },
  MAILPOOLS_BRIDGE_REQUEUE_PORT: {
    default: '10027',
    doc: "Throttled mail and Postfix's own bounces, handed back by Postfix's queue.",
    min: 1,
    max: 65_535,
  },
  MAILPOOLS_BRIDGE_INJECT_BASE_PORT: {
    default: '10100',
    doc: "First of Postfix's re-injection listeners (hold, default address, then one per source IP).",
    min: 1,
    max: 65_000,
  },
  MAILPOOLS_BRIDGE_SASL_PORT: {
    default: '0',
    doc: 'Dovecot-protocol SMTP AUTH for Postfix (smtpd_sasl_path = inet:host:port); 0: none (Postfix uses a SASL of its own).',
    min: 0,
    max: 65_535,
  },
  MAILPOOLS_BRIDGE_USERS_FILE: {
    default: '',
    doc: 'Submission users for that SASL server: one "address password" a line.',
  },
  MAILPOOLS_BRIDGE_CONNECTORS: {
    default: '',
    doc: 'On-premises connectors: "ip=tenant,name" separated by ";".',
  },
  MAILPOOLS_BRIDGE_FORWARDERS: {
    default: '',
    doc: 'The platform\'s forwarding hosts, by IP, separated by ","; only their X-Mailpools-Arrival header is believed.',
  },
  MAILPOOLS_BRIDGE_DEFAULT_TENANT: {
    default: '',
    doc: 'Tenant of a sender whose domain no tenant accepts; empty refuses such mail.',
  },
});

export interface BridgeSettings extends TrustedHosts {
  readonly host: string;
  readonly proxyPort: number;
  readonly requeuePort: number;
  readonly injectBasePort: number;
  readonly saslPort: number;
  readonly usersFile: string;
}

export function bridgeSettings(env: Env = process.env): BridgeSettings {
  const connectors = new Map<string, { tenantId: string; name: string }>();
  for (const entry of BRIDGE_SETTINGS.text(env, 'MAILPOOLS_BRIDGE_CONNECTORS').split(';').filter(Boolean)) {
    const [ip = '', value = ''] = entry.split('=').map((p) => p.trim());
    const [tenantId = '', name = ''] = value.split(',').map((p) => p.trim());
    if (!isIP(ip) || !tenantId)
      throw settingError('MAILPOOLS_BRIDGE_CONNECTORS', `has "${entry}", not "ip=tenant,name"`);
    connectors.set(ip, { tenantId, name: name || `${tenantId}-connector` });
  }
  const forwarders = new Set<string>();
  for (const ip of BRIDGE_SETTINGS.text(env, 'MAILPOOLS_BRIDGE_FORWARDERS')
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    if (!isIP(ip)) throw settingError('MAILPOOLS_BRIDGE_FORWARDERS', `has "${ip}", not an IP address`);
    forwarders.add(ip);
  }
  return {
    host: BRIDGE_SETTINGS.text(env, 'MAILPOOLS_BRIDGE_HOST'),
    proxyPort: BRIDGE_SETTINGS.integer(env, 'MAILPOOLS_BRIDGE_PROXY_PORT'),
    requeuePort: BRIDGE_SETTINGS.integer(env, 'MAILPOOLS_BRIDGE_REQUEUE_PORT'),
    injectBasePort: BRIDGE_SETTINGS.integer(env, 'MAILPOOLS_BRIDGE_INJECT_BASE_PORT'),
    saslPort: BRIDGE_SETTINGS.integer(env, 'MAILPOOLS_BRIDGE_SASL_PORT'),
    usersFile: BRIDGE_SETTINGS.text(env, 'MAILPOOLS_BRIDGE_USERS_FILE'),
    connectors,
    forwarders,
    defaultTenant: BRIDGE_SETTINGS.text(env, 'MAILPOOLS_BRIDGE_DEFAULT_TENANT'),
  };
}

/** "address password" lines; blank lines and # comments are skipped. */
export function readUsers(file: string): Map<string, string> {
  const users = new Map<string, string>();
  if (!file) return users;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const trimmed = line.trim();
    if (!trimmed || trimmed.startsWith('#')) continue;
    const space = trimmed.search(/\s/);
    if (space <= 0)
      throw settingError('MAILPOOLS_BRIDGE_USERS_FILE', `has a line without a password: "${trimmed}"`);
    users.set(trimmed.slice(0, space).toLowerCase(), trimmed.slice(space).trim());
  }
  return users;
}
