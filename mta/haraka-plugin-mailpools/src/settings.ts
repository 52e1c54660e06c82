// mailpools.ini, as Haraka's config loader hands it over, checked once at start-up: a wrong value
// stops Haraka with the key that is wrong, rather than routing mail on a guess.
import { isIP } from 'node:net';
import type { TrustedHosts } from '@mailpools/client';
import { MailpoolsError } from '@mailpools/core';

export interface Connector {
  readonly tenantId: string;
  readonly name: string;
}

/** The plugin's settings; the trusted hosts (connectors, forwarders, default tenant) as every MTA has them. */
export interface PluginSettings extends TrustedHosts {
  /** Port of the destinations' SMTP servers: 25, except in tests. */
  readonly deliveryPort: number;
  readonly maxInFlight: number;
  /** The tenant of a sender whose domain no tenant accepts; '' refuses such mail. */
  readonly defaultTenant: string;
  readonly metricsHost: string;
  /** 0: no /metrics. */
  readonly metricsPort: number;
  /** On-premises connectors by the IP they connect from. */
  readonly connectors: ReadonlyMap<string, Connector>;
  /** The platform's own hosts that hand over forwarded or relayed mail. */
  readonly forwarders: ReadonlySet<string>;
}

type Ini = Record<string, Record<string, unknown> | undefined>;

function wrong(key: string, problem: string): MailpoolsError {
  return new MailpoolsError('MAILPOOLS_ERR_CONFIG_INVALID', `mailpools.ini: ${key} ${problem}.`, {
    hint: 'Fix config/mailpools.ini (see mta/haraka-plugin-mailpools/README.md).',
  });
}

function integer(ini: Ini, key: string, fallback: number, min: number, max: number): number {
  const raw = ini.main?.[key];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max)
    throw wrong(`[main] ${key}`, `must be an integer from ${min} to ${max}, got "${String(raw)}"`);
  return value;
}

export function readSettings(ini: Ini): PluginSettings {
  const connectors = new Map<string, Connector>();
  for (const [ip, value] of Object.entries(ini.connectors ?? {})) {
    if (!isIP(ip)) throw wrong(`[connectors] ${ip}`, 'must be an IP address');
    const [tenantId, name] = String(value)
      .split(',')
      .map((part) => part.trim());
    if (!tenantId) throw wrong(`[connectors] ${ip}`, 'must be "tenant,connector name"');
    connectors.set(ip, { tenantId, name: name || `${tenantId}-connector` });
  }
  const forwarders = new Set<string>();
  for (const [ip, value] of Object.entries(ini.forwarders ?? {})) {
    if (!isIP(ip)) throw wrong(`[forwarders] ${ip}`, 'must be an IP address');
    if (value === true || /^(true|yes|1)$/i.test(String(value))) forwarders.add(ip);
  }
  return {
    deliveryPort: integer(ini, 'delivery_port', 25, 1, 65_535),
    maxInFlight: integer(ini, 'max_in_flight', 2_000, 1, 1_000_000),
    defaultTenant: String(ini.main?.default_tenant ?? '').trim(),
    metricsHost: String(ini.main?.metrics_host ?? '127.0.0.1').trim() || '127.0.0.1',
    metricsPort: integer(ini, 'metrics_port', 0, 0, 65_535),
    connectors,
    forwarders,
  };
}
