// SpamAssassin 4 as a baseline for our own spam model (local evaluation only; CI never needs it).
//
// How it runs (all inside one private temp dir that is removed afterwards):
//   1. A private *site* config dir: the distribution's plugin loaders (*.pre) and Debian's own
//      65_debian.cf are copied from /etc/spamassassin (never the admin's local.cf), plus our
//      zz_eval.cf: a private Bayes db (bayes_path), use_bayes 1, bayes_auto_learn 0, no network.
//   2. The *default rules* are pinned to the rules the package ships (/usr/share/spamassassin),
//      so a machine that ran `sa-update` (which needs the internet anyway) gives the same result.
//   3. `sa-learn --ham` / `sa-learn --spam` train that Bayes db on `train` only.
//   4. One `spamd` (local tests only: -L, no user config: -x) listens on a unix socket in the
//      temp dir; each test message is piped to `spamc -R` with as many in flight as there are
//      cores. spamd is always stopped: try/finally, plus process 'exit'/SIGINT/SIGTERM hooks.
//   HOME and TMPDIR of every child point into the temp dir, so ~/.spamassassin is never touched.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const NOT_INSTALLED =
  'SpamAssassin is not installed: apt-get install spamassassin (local evaluation only)';

/** The rules the Debian/Ubuntu package ships (upstream's rules bundled with the release tarball). */
const SHIPPED_RULES_DIRS = ['/usr/share/spamassassin', '/usr/local/share/spamassassin'];
/** Where the package's site config (plugin-loading *.pre files) lives. */
const SITE_CONFIG_DIRS = ['/etc/spamassassin', '/etc/mail/spamassassin', '/usr/local/etc/mail/spamassassin'];
/** spamd lives in sbin, which is often not on a normal user's PATH. */
const EXTRA_BIN_DIRS = ['/usr/sbin', '/usr/local/sbin', '/sbin', '/usr/bin', '/usr/local/bin'];

export interface SpamAssassinResult {
  /** SpamAssassin's total score, as spamd reports it (one decimal). */
  score: number;
  /** SpamAssassin's own verdict: score >= required_score (5.0, the default). */
  isSpam: boolean;
  /** Names of the rules that hit (e.g. BAYES_99, HTML_MESSAGE), for diagnostics. */
  tests: string[];
}

export interface SpamAssassinOptions {
  /** Called after each scored test message (and once with 0 before the first). */
  onProgress?: (done: number, total: number) => void;
  /** Stage messages (training, spamd start-up, Bayes counts); silent when omitted. */
  log?: (line: string) => void;
  /** How to turn string texts into bytes; default 'utf8' (see encodeMessage). Buffers are sent as they are. */
  encoding?: BufferEncoding;
  /** Concurrent messages in flight (= spamd children); default: number of cores. */
  concurrency?: number;
}

function findBin(name: string): string | null {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean), ...EXTRA_BIN_DIRS];
  for (const dir of dirs) {
    const file = path.join(dir, name);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      if (fs.statSync(file).isFile()) return file;
    } catch {
      // not here
    }
  }
  return null;
}

function firstDir(candidates: string[]): string | null {
  return candidates.find((d) => fs.existsSync(d) && fs.statSync(d).isDirectory()) ?? null;
}

/** "4.0.1" (from `spamassassin -V`), or null when SpamAssassin is not installed. */
export function spamAssassinVersion(): string | null {
  const bin = findBin('spamassassin');
  if (!bin) return null;
  try {
    const out = execFileSync(bin, ['-V'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 60_000,
    });
    return /SpamAssassin version (\S+)/.exec(out)?.[1] ?? out.trim().split('\n')[0] ?? null;
  } catch {
    return null;
  }
}

/**
 * Which rules the baseline uses: the directory, and a description of its version. The release
 * tarball's rules carry no sa-update revision of their own; they are the ones bundled with that
 * SpamAssassin release, so the package version names them.
 */
export function spamAssassinRules(): { dir: string; version: string } | null {
  const dir = firstDir(SHIPPED_RULES_DIRS);
  if (!dir) return null;
  let pkg = '';
  try {
    // `dpkg-query -W spamassassin` prints "spamassassin<TAB>4.0.1-1~deb12u1".
    pkg =
      execFileSync('dpkg-query', ['-W', 'spamassassin'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      })
        .trim()
        .split('\t')[1] ?? '';
  } catch {
    // not a Debian system
  }
  const sa = spamAssassinVersion() ?? 'unknown';
  const version = `rules bundled with SpamAssassin ${sa}${pkg ? ` (Debian package ${pkg})` : ''}, no sa-update`;
  return { dir, version };
}

/**
 * Bytes of one message. The dataset's `text` strings were decoded from the files as UTF-8, not
 * latin1 (measured against each message's MD5 `checksum` on all 6,046: UTF-8 re-encoding gives
 * the original bytes for 5,545 — every ASCII message plus the 14 with valid UTF-8 such as "é«»£’" —
 * while latin1 matches only the 5,531 pure-ASCII ones; 500 messages contain U+FFFD, i.e. their
 * invalid bytes were replaced at decoding and no encoding can bring them back, and 1 ASCII message
 * differs for an unknown reason). So strings are sent as UTF-8. A latin1 round-trip of a dataset
 * string (Buffer.from(text, 'latin1').toString('latin1'), as corpus.ts/eval.ts do) is unchanged for
 * every message without characters above U+00FF, so UTF-8 is right for that input as well.
 * A Buffer/Uint8Array is sent byte for byte, which is the only exact way for non-dataset mail.
 */
export function encodeMessage(text: string | Uint8Array, encoding: BufferEncoding = 'utf8'): Buffer {
  return typeof text === 'string' ? Buffer.from(text, encoding) : Buffer.from(text);
}

interface Tools {
  spamassassin: string;
  saLearn: string;
  spamd: string;
  spamc: string;
  rulesDir: string;
  siteDir: string | null;
}

function tools(): Tools {
  const spamassassin = findBin('spamassassin');
  const saLearn = findBin('sa-learn');
  if (!spamassassin || !saLearn) throw new Error(NOT_INSTALLED);
  const spamd = findBin('spamd');
  const spamc = findBin('spamc');
  const missing = [spamd ? '' : 'spamd', spamc ? '' : 'spamc'].filter(Boolean);
  if (!spamd || !spamc)
    throw new Error(
      `${NOT_INSTALLED}; missing ${missing.join(' and ')}: apt-get install ${missing.join(' ')}`,
    );
  const rulesDir = firstDir(SHIPPED_RULES_DIRS);
  if (!rulesDir) throw new Error(`${NOT_INSTALLED}; no shipped rules in ${SHIPPED_RULES_DIRS.join(' or ')}`);
  return { spamassassin, saLearn, spamd, spamc, rulesDir, siteDir: firstDir(SITE_CONFIG_DIRS) };
}

/** Runs a command to completion; rejects with its stderr tail on a non-zero exit. */
function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      err = (err + d).slice(-8000);
    });
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else
        reject(
          new Error(`${path.basename(cmd)} ${args.join(' ')} failed (${signal ?? code}):\n${err.trim()}`),
        );
    });
  });
}

/** When we are root, spamd must drop to an unprivileged user (it refuses to scan as root). */
function unprivilegedUser(): { name: string; uid: number; gid: number } | null {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return null;
  for (const name of ['debian-spamd', 'spamd', 'nobody']) {
    try {
      const uid = Number(
        execFileSync('id', ['-u', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }),
      );
      const gid = Number(
        execFileSync('id', ['-g', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }),
      );
      if (uid > 0) return { name, uid, gid };
    } catch {
      // no such user
    }
  }
  throw new Error('running as root, but no unprivileged user (debian-spamd, spamd, nobody) for spamd -u');
}

function chownTree(dir: string, uid: number, gid: number): void {
  fs.chownSync(dir, uid, gid);
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    fs.lchownSync(path.join(entry.parentPath, entry.name), uid, gid);
  }
}

/** Parses `spamc -R` output: "score/threshold" on line 1, then the report's rule table. */
function parseReport(out: string): { score: number; required: number; tests: string[] } | null {
  const head = /^\s*(-?\d+(?:\.\d+)?)\/(-?\d+(?:\.\d+)?)\s*$/m.exec(out.split('\n', 1)[0] ?? '');
  if (!head) return null;
  const tests: string[] = [];
  const table = out.indexOf('\n---- ');
  if (table !== -1) {
    for (const line of out.slice(table).split('\n').slice(1)) {
      const hit = /^\s*-?\d+(?:\.\d+)?\s+([A-Za-z0-9_]+)\s/.exec(line);
      if (hit?.[1]) tests.push(hit[1]);
    }
  }
  return { score: Number(head[1]), required: Number(head[2]), tests };
}

/**
 * Scores `test` with SpamAssassin (shipped rules, network tests off, required score 5.0), its
 * Bayes trained with sa-learn on `train` only, in a private temp dir. One result per test message,
 * in order.
 */
export async function scoreWithSpamAssassin(
  train: { text: string | Uint8Array; spam: boolean }[],
  test: { text: string | Uint8Array }[],
  options: SpamAssassinOptions = {},
): Promise<SpamAssassinResult[]> {
  const t = tools();
  const log = options.log ?? (() => {});
  const encoding = options.encoding ?? 'utf8';
  const concurrency = Math.max(1, options.concurrency ?? os.availableParallelism());
  const drop = unprivilegedUser();

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sa-baseline-'));
  let spamd: ReturnType<typeof spawn> | null = null;
  let spamdExited: Promise<void> = Promise.resolve();
  // Synchronous last-resort cleanup for an exiting/interrupted process.
  const killNow = () => {
    if (spamd?.pid !== undefined && spamd.exitCode === null && spamd.signalCode === null) {
      try {
        process.kill(-spamd.pid, 'SIGTERM'); // spamd leads its own process group: parent + children
      } catch {
        // already gone
      }
    }
    fs.rmSync(tmp, { recursive: true, force: true });
  };
  const onSignal = (signal: NodeJS.Signals) => {
    killNow();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.on('exit', killNow);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    const site = path.join(tmp, 'site');
    const home = path.join(tmp, 'home');
    const tmpdir = path.join(tmp, 'tmp');
    const bayesDir = path.join(tmp, 'bayes');
    for (const d of [site, home, tmpdir, bayesDir]) fs.mkdirSync(d, { recursive: true });

    // Plugin loaders and Debian's packaged site rules; not local.cf, which is the admin's own.
    if (t.siteDir) {
      for (const f of fs.readdirSync(t.siteDir)) {
        if (f.endsWith('.pre') || f === '65_debian.cf')
          fs.copyFileSync(path.join(t.siteDir, f), path.join(site, f));
      }
    }
    fs.writeFileSync(
      path.join(site, 'zz_eval.cf'),
      [
        '# Written by services/spam-classifier/eval/spamassassin.ts for one baseline run.',
        'required_score 5.0',
        // No network: -L is passed too; these make sure nothing even tries.
        'dns_available no',
        'skip_rbl_checks 1',
        'use_razor2 0',
        'use_pyzor 0',
        // (settings of plugins the package's *.pre may not load are guarded, or lint fails)
        'ifplugin Mail::SpamAssassin::Plugin::DCC',
        'use_dcc 0',
        'endif',
        // Bayes: private db, trained only by sa-learn on `train`; never learns from test mail.
        'use_bayes 1',
        'use_bayes_rules 1',
        'bayes_auto_learn 0',
        `bayes_path ${path.join(bayesDir, 'bayes')}`,
        'bayes_file_mode 0700',
        // Keep every token of the training set: expiry works on message dates, and would drop the
        // older part of a 2002-era corpus as soon as the db passes its 150,000-token target.
        'bayes_auto_expire 0',
        'lock_method flock',
        // State-keeping reputation plugins are not loaded by the package's *.pre; off regardless.
        'ifplugin Mail::SpamAssassin::Plugin::AWL',
        'use_auto_whitelist 0',
        'endif',
        'ifplugin Mail::SpamAssassin::Plugin::TxRep',
        'use_txrep 0',
        'endif',
        '',
      ].join('\n'),
    );
    const common = [`--siteconfigpath=${site}`, `--configpath=${t.rulesDir}`];
    const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, TMPDIR: tmpdir };
    // A config that SpamAssassin only warns about would silently change the baseline: lint first.
    await run(t.spamassassin, ['--lint', '-L', ...common], env, 600_000);

    // 1. Train Bayes.
    for (const spam of [false, true]) {
      const kind = spam ? 'spam' : 'ham';
      const dir = path.join(tmp, 'train', kind);
      fs.mkdirSync(dir, { recursive: true });
      let n = 0;
      for (const m of train) {
        if (m.spam !== spam) continue;
        fs.writeFileSync(path.join(dir, String(++n).padStart(6, '0')), encodeMessage(m.text, encoding));
      }
      if (n === 0) continue;
      log(`sa-learn --${kind}: ${n} messages`);
      const out = await run(t.saLearn, [`--${kind}`, '-L', '--max-size=0', ...common, dir], env, 3_600_000);
      log(out.trim());
    }
    const magic = await run(t.saLearn, ['--dump', 'magic', ...common], env, 600_000).catch(() => '');
    const nspam = Number(/(\d+)\s+0\s+non-token data: nspam/.exec(magic)?.[1] ?? 0);
    const nham = Number(/(\d+)\s+0\s+non-token data: nham/.exec(magic)?.[1] ?? 0);
    log(`Bayes db: ${nham} ham, ${nspam} spam learned`);
    fs.rmSync(path.join(tmp, 'train'), { recursive: true, force: true });

    // 2. Start spamd on a private unix socket.
    const socket = path.join(tmp, 'spamd.sock');
    const args = [
      '-L',
      '-x',
      ...common,
      `--socketpath=${socket}`,
      `--pidfile=${path.join(tmp, 'spamd.pid')}`,
      `--helper-home-dir=${home}`,
      `--max-children=${concurrency}`,
      `--min-children=${concurrency}`,
      '--timeout-child=600',
      '--syslog=stderr',
    ];
    if (drop) {
      chownTree(tmp, drop.uid, drop.gid);
      args.push('-u', drop.name);
    }
    let spamdLog = '';
    const child = spawn(t.spamd, args, { env, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    spamd = child;
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      spamdLog = (spamdLog + d).slice(-16000);
    });
    spamdExited = new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once('exit', () => resolve());
    });
    child.on('error', (e) => {
      spamdLog += `\n${e.message}`;
    });
    log(`spamd starting (pid ${child.pid}, ${concurrency} children${drop ? `, as ${drop.name}` : ''})`);
    const ready = Date.now() + 300_000;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(
          `spamd exited during start-up (${child.signalCode ?? child.exitCode}):\n${spamdLog.trim()}`,
        );
      }
      if (
        fs.existsSync(socket) &&
        spawnSync(t.spamc, ['-U', socket, '-K'], { stdio: 'ignore', env }).status === 0
      )
        break;
      if (Date.now() > ready) throw new Error(`spamd did not answer within 300 s:\n${spamdLog.trim()}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    log('spamd ready');

    // 3. Score, `concurrency` messages at a time.
    const results: SpamAssassinResult[] = new Array(test.length);
    let next = 0;
    let done = 0;
    options.onProgress?.(0, test.length);
    const scoreOne = (bytes: Buffer) =>
      new Promise<{ code: number | null; out: string; err: string }>((resolve, reject) => {
        // -R: "score/threshold" + report; -x: fail instead of the "0/0" safe fallback;
        // -s: spamc's own 500 KB limit would otherwise skip big messages unscored.
        const c = spawn(t.spamc, ['-U', socket, '-R', '-x', '-s', String(64 * 1024 * 1024), '-t', '600'], {
          env,
          stdio: ['pipe', 'pipe', 'pipe'],
        });
        let out = '';
        let err = '';
        c.stdout.setEncoding('utf8').on('data', (d: string) => {
          out += d;
        });
        c.stderr.setEncoding('utf8').on('data', (d: string) => {
          err += d;
        });
        c.stdin.on('error', () => {}); // EPIPE if spamc gives up early; its exit code tells
        c.on('error', reject);
        c.on('close', (code) => resolve({ code, out, err }));
        c.stdin.end(bytes);
      });
    const worker = async () => {
      for (;;) {
        const i = next++;
        if (i >= test.length) return;
        const bytes = encodeMessage((test[i] as { text: string | Uint8Array }).text, encoding);
        let last = '';
        for (let attempt = 1; ; attempt++) {
          const r = await scoreOne(bytes);
          const parsed = r.code === 0 || r.code === 1 ? parseReport(r.out) : null;
          if (parsed) {
            // spamd's verdict is score >= required (5.0); its printed score is rounded to 0.1 and
            // never shows the threshold for ham, so the comparison agrees with SpamAssassin.
            results[i] = {
              score: parsed.score,
              isSpam: parsed.score >= parsed.required,
              tests: parsed.tests,
            };
            break;
          }
          last = `exit ${r.code}: ${(r.err || r.out).trim().slice(0, 500)}`;
          if (attempt >= 3 || child.exitCode !== null) {
            throw new Error(
              `spamc failed on test message ${i} (${last})\nspamd log:\n${spamdLog.slice(-4000)}`,
            );
          }
        }
        options.onProgress?.(++done, test.length);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, test.length) }, worker));

    // A trained Bayes db that no test message consulted means spamd did not see it.
    const bayesHits = results.filter((r) => r.tests.some((x) => x.startsWith('BAYES_'))).length;
    log(`Bayes rules hit on ${bayesHits} of ${results.length} test messages`);
    if (test.length > 0 && nham >= 200 && nspam >= 200 && bayesHits === 0) {
      throw new Error(
        `Bayes was trained (${nham} ham, ${nspam} spam) but spamd used it on no message:\n${spamdLog}`,
      );
    }
    return results;
  } finally {
    if (spamd?.pid !== undefined && spamd.exitCode === null && spamd.signalCode === null) {
      const pid = spamd.pid;
      try {
        process.kill(-pid, 'SIGTERM');
      } catch {
        // already gone
      }
      const stopped = await Promise.race([
        spamdExited.then(() => true),
        new Promise<boolean>((r) => setTimeout(() => r(false), 15_000)),
      ]);
      if (!stopped) {
        try {
          process.kill(-pid, 'SIGKILL');
        } catch {
          // already gone
        }
        await spamdExited;
      }
      // The parent is gone; wait for its children (same process group) too, then force them.
      const groupAlive = () => {
        try {
          process.kill(-pid, 0);
          return true;
        } catch {
          return false;
        }
      };
      for (let i = 0; i < 50 && groupAlive(); i++) await new Promise((r) => setTimeout(r, 100));
      if (groupAlive()) {
        try {
          process.kill(-pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    process.removeListener('exit', killNow);
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
