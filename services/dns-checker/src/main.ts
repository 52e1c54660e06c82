// dns-checker's process: the stage (stage.ts) under the shared service runner.
import { runService } from '@mailpools/stream';
import { createDnsCheckerStage, SERVICE } from './stage.ts';

await runService(SERVICE, createDnsCheckerStage);
