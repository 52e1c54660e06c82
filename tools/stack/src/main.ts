// Direct entry point while the `mailpools stack` command is not wired: node tools/stack/src/main.ts up
import { runStackCli } from './cli.ts';

process.exitCode = await runStackCli(process.argv.slice(2));
