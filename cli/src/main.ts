// The `mailpools` command: one entry, one sub-command per job.
import { isMailpoolsError } from '@mailpools/core';
import { runStackCli } from '@mailpools/stack';
import { DOCTOR_USAGE, runDoctor } from './doctor.ts';
import { FEED_USAGE, runFeed } from './feed.ts';
import { RESTRICTED_USAGE, runRestricted } from './restricted.ts';
import { ROUTE_USAGE, runRoute, runSrs } from './route.ts';
import { runStart } from './start.ts';
import { runTail, TAIL_USAGE } from './tail.ts';
import { runTop, TOP_USAGE } from './top.ts';
import { runTrace, TRACE_USAGE } from './trace.ts';

const USAGE = `usage: mailpools <command> [...]
  start [--json-logs]       the local stack (unless KAFKA_BROKERS is set) and every service, until Ctrl-C
  stack up|down|status      the local Kafka, schema registry, Redis and PostgreSQL
  feed <file|dir>...        produce events from JSON lines, .eml or mbox files
  restricted list|release   senders limit-counter restricted; release one (audited)
  route <file>...           the pool a message would get and why (a dry run)
  srs reverse <address>     verify an SRS address and print the original sender
  trace [<message-id>] ...  which pool messages used and why (the message trace)
  tail [--pool|--tenant|--rule]  assignments as they are routed, one line each
  top                       a live view of the pools and the stages, from the services' metrics
  doctor                    checks what a start needs, and says what to do
  help                      this text

${FEED_USAGE}

${RESTRICTED_USAGE}

${ROUTE_USAGE}

${TRACE_USAGE}

${TAIL_USAGE}

${TOP_USAGE}

${DOCTOR_USAGE}`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'start':
        return await runStart(rest);
      case 'stack':
        return await runStackCli(rest);
      case 'feed':
        return await runFeed(rest);
      case 'restricted':
        return await runRestricted(rest);
      case 'route':
        return await runRoute(rest);
      case 'srs':
        return await runSrs(rest);
      case 'trace':
        return await runTrace(rest);
      case 'tail':
        return await runTail(rest);
      case 'top':
        return await runTop(rest);
      case 'doctor':
        return await runDoctor(rest);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        console.log(USAGE);
        return command === undefined ? 2 : 0;
      default:
        console.error(`error MAILPOOLS_ERR_USAGE: unknown command "${command}".\n\n${USAGE}`);
        return 2;
    }
  } catch (error) {
    if (isMailpoolsError(error)) {
      console.error(`error ${error.code}: ${error.message}`);
      if (error.hint) console.error(`hint: ${error.hint}`);
      return error.code === 'MAILPOOLS_ERR_USAGE' ? 2 : 1;
    }
    console.error(error);
    return 1;
  }
}
