// The public RFC 7208 test suite (openspf.org, release 2014.04; vendored from pyspf's source with
// its licence) run against mailauth's SPF through the shared resolver, which asks a real DNS
// server on loopback serving each scenario's zone data. The suite's drivers copy SPF-type
// records to TXT when a name has no TXT of its own; so does this one (only TXT is ever asked).
import { readFileSync } from 'node:fs';
import { nodeStyleResolve } from '@mailpools/dns';
import { loopbackResolver, startTestDnsServer, type TestRecord, type TestZones } from '@mailpools/testkit';
import { spf } from 'mailauth';
import { parseAllDocuments } from 'yaml';

const SUITE = new URL('./rfc7208-tests.yml', import.meta.url);

interface SuiteCase {
  readonly helo: string;
  readonly host: string;
  readonly mailfrom: string;
  readonly result: string | string[];
  readonly spec?: string | string[];
  readonly description?: string;
}

interface Scenario {
  readonly description: string;
  readonly tests: Record<string, SuiteCase>;
  readonly zonedata?: Record<string, (string | Record<string, unknown>)[]>;
}

export interface CaseOutcome {
  readonly scenario: string;
  readonly name: string;
  readonly spec: string;
  readonly expected: readonly string[];
  readonly got: string;
  readonly passed: boolean;
}

const text = (value: unknown): string | string[] =>
  Array.isArray(value) ? value.map(String) : String(value);

/** A scenario's zone data as records for the test server, plus the (name, type) pairs that time out. */
function zonesOf(scenario: Scenario): { zones: TestZones; timeouts: { name: string; type?: string }[] } {
  const zones: TestZones = {};
  const timeouts: { name: string; type?: string }[] = [];
  for (const [owner, entries] of Object.entries(scenario.zonedata ?? {})) {
    const name = owner.toLowerCase().replace(/\.$/, '');
    const records: TestRecord[] = [];
    const hasTxt = entries.some((e) => typeof e === 'object' && 'TXT' in e);
    for (const entry of entries) {
      if (entry === 'TIMEOUT') {
        timeouts.push({ name }); // every type without records listed before it
        continue;
      }
      if (typeof entry !== 'object') continue;
      for (const [type, value] of Object.entries(entry)) {
        if (value === 'TIMEOUT') {
          timeouts.push({ name, type });
          continue;
        }
        if (value === 'NONE') continue;
        if (type === 'SPF') {
          if (!hasTxt) records.push({ type: 'TXT', data: text(value) });
        } else if (type === 'TXT') records.push({ type: 'TXT', data: text(value) });
        else if (type === 'A' || type === 'AAAA' || type === 'PTR' || type === 'CNAME')
          records.push({ type, data: String(value).replace(/\.$/, '') } as TestRecord);
        else if (type === 'MX') {
          const [preference, exchange] = value as [number, string];
          records.push({ type: 'MX', data: { preference, exchange: exchange.replace(/\.$/, '') } });
        }
      }
    }
    zones[name] = records;
  }
  return { zones, timeouts };
}

export async function runSpfSuite(onCase?: (outcome: CaseOutcome) => void): Promise<CaseOutcome[]> {
  const scenarios = parseAllDocuments(readFileSync(SUITE, 'utf8')).map((d) => d.toJS() as Scenario);
  const outcomes: CaseOutcome[] = [];
  for (const scenario of scenarios) {
    const { zones, timeouts } = zonesOf(scenario);
    const server = await startTestDnsServer({ zones });
    for (const { name, type } of timeouts) {
      if (type) server.setMode(name, 'silent', type);
      else {
        server.setMode(name, 'silent');
        for (const record of zones[name] ?? []) server.setMode(name, 'normal', record.type);
      }
    }
    try {
      for (const [name, test] of Object.entries(scenario.tests)) {
        // A fresh resolver per case: no answer leaks from one case into another.
        const resolver = loopbackResolver(server, { timeoutMs: 150, attempts: 1, cacheSize: 0 });
        const result = await spf({
          sender: test.mailfrom,
          ip: test.host,
          helo: test.helo,
          mta: 'mx.mailpools.test',
          strict: true,
          resolver: nodeStyleResolve(resolver),
        });
        const expected = [test.result].flat().map((r) => r.toLowerCase());
        const got = result.status.result.toLowerCase();
        const outcome: CaseOutcome = {
          scenario: scenario.description,
          name,
          spec: [test.spec ?? ''].flat().join(', '),
          expected,
          got,
          passed: expected.includes(got),
        };
        outcomes.push(outcome);
        onCase?.(outcome);
      }
    } finally {
      await server.close();
    }
  }
  return outcomes;
}
