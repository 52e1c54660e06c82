// The stack's own entry point, for when the CLI's dependencies are not installed yet: node tools/stack/src/main.ts up
import { runStackCli } from './cli.ts';

process.exitCode = await runStackCli(process.argv.slice(2));
