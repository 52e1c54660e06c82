// limit-counter's process: the stage (stage.ts) under the shared service runner.
import { runService } from '@mailpools/stream';
import { createLimitCounterStage, SERVICE } from './stage.ts';

await runService(SERVICE, createLimitCounterStage);
