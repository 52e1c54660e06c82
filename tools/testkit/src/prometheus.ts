// A real Prometheus (Debian's package) for tests: deploy/prometheus/prometheus.yml with its service
// discovery swapped for the test's processes, scraping and evaluating every second.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { freePort } from './process.ts';

export const PROMETHEUS_DIR = fileURLToPath(new URL('../../../deploy/prometheus/', import.meta.url));

export interface PrometheusQueryResult {
  readonly metric: Record<string, string>;
  readonly value: [number, string];
}

export interface TestPrometheus {
  readonly url: string;
  /** An instant query; throws with Prometheus's error when the query is refused. */
  query(expr: string): Promise<PrometheusQueryResult[]>;
  /** GET <url>/api/v1/<path>, the `data` of the answer. */
  api<T>(path: string): Promise<T>;
  stop(): Promise<void>;
}

/** Fails with what to do when Debian's prometheus package is missing. */
export function requirePrometheus(): void {
  const found = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
  if (found.error)
    throw new Error(
      'promtool/prometheus not found: install Debian\'s "prometheus" package (.ci/run does: apt-get install --no-install-recommends prometheus).',
    );
}

interface ScrapeConfig {
  job_name: string;
  dns_sd_configs?: unknown;
  static_configs?: unknown;
}

/**
 * Starts Prometheus with the project's configuration; `targets` maps a service name (as
 * Docker's DNS would answer it in Compose) to the local ports of its instances.
 */
export async function startPrometheus(targets: Record<string, readonly number[]>): Promise<TestPrometheus> {
  requirePrometheus();
  const config = parse(readFileSync(join(PROMETHEUS_DIR, 'prometheus.yml'), 'utf8')) as {
    global: Record<string, string>;
    rule_files: string[];
    scrape_configs: ScrapeConfig[];
  };
  const port = await freePort();
  config.global.scrape_interval = '1s';
  config.global.evaluation_interval = '1s';
  config.rule_files = config.rule_files.map((file) => join(PROMETHEUS_DIR, file));
  for (const job of config.scrape_configs) {
    if (job.job_name === 'prometheus') job.static_configs = [{ targets: [`127.0.0.1:${port}`] }];
    if (job.job_name !== 'mailpools') continue;
    delete job.dns_sd_configs;
    // The label DNS discovery would set, so the job's own relabelling is what is tested.
    job.static_configs = Object.entries(targets).map(([name, ports]) => ({
      targets: ports.map((p) => `127.0.0.1:${p}`),
      labels: { __meta_dns_name: name },
    }));
  }
  const dir = mkdtempSync(join(tmpdir(), 'mailpools-prometheus-'));
  const file = join(dir, 'prometheus.yml');
  writeFileSync(file, stringify(config));
  const child: ChildProcess = spawn(
    'prometheus',
    [
      `--config.file=${file}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=error',
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`prometheus exited with ${child.exitCode}`);
    const ready = await fetch(`${url}/-/ready`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error('prometheus was not ready within 30 s');
    }
    await new Promise((r) => setTimeout(r, 200));
  }

  async function api<T>(path: string): Promise<T> {
    const response = await fetch(`${url}/api/v1/${path}`);
    const body = (await response.json()) as { status: string; data: T; error?: string };
    if (body.status !== 'success') throw new Error(`Prometheus refused ${path}: ${body.error}`);
    return body.data;
  }

  return {
    url,
    api,
    async query(expr) {
      const data = await api<{ result: PrometheusQueryResult[] }>(`query?query=${encodeURIComponent(expr)}`);
      return data.result;
    },
    async stop() {
      if (child.exitCode === null) {
        const exited = once(child, 'exit');
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
