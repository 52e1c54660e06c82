// Downloads go through Maven so they land in ~/.m2 once and are shared with every checkout and CI cache.
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { StackConfig } from './config.ts';
import { StackError } from './errors.ts';
import { JAVA_INSTALL_HINT, requireTool, runToEnd, tail } from './process.ts';

/** Fails before anything is printed or fetched when Java or Maven is missing. */
export function requireMaven(): void {
  requireTool('java', JAVA_INSTALL_HINT);
  requireTool('mvn', JAVA_INSTALL_HINT);
}

/** Runs `mvn -B -f tools/stack/pom.xml <args>`, showing Maven's download lines as progress. */
export async function runMaven(config: StackConfig, args: string[], what: string): Promise<void> {
  requireMaven();
  const logPath = config.paths.fetchLog;
  mkdirSync(dirname(logPath), { recursive: true });
  appendFileSync(logPath, `\n# ${new Date().toISOString()} mvn ${args.join(' ')}\n`);
  const { code, lines } = await runToEnd(
    'mvn',
    ['-B', '-Dstyle.color=never', '-f', config.paths.pom, ...args],
    {
      onLine: (line) => {
        appendFileSync(logPath, `${line}\n`);
        const download = /^\[INFO\] (Download(?:ing|ed) from .*)$/.exec(line);
        if (download) config.log(`  ${download[1]}`);
      },
    },
  );
  if (code !== 0) {
    throw new StackError(
      'MAILPOOLS_ERR_STACK_FETCH_FAILED',
      `Maven could not fetch ${what} (exit code ${code}).`,
      {
        hint: 'Check network access to Maven Central (repo.maven.apache.org), then run `up` again.',
        logPath,
        logTail: tail(lines.filter((line) => !line.startsWith('[INFO] Download'))),
      },
    );
  }
}
