#!/usr/bin/env node
// Runs on Node 24 (type stripping): npm scripts and npx put node_modules/.bin, where the `node`
// package installs Node 24, first on the PATH.
import { main } from '@mailpools/cli';

process.exitCode = await main(process.argv.slice(2));
