// spam-classifier's process: the stage (stage.ts) under the shared service runner.
import { runService } from '@mailpools/stream';
import { createSpamClassifierStage, SERVICE } from './stage.ts';

await runService(SERVICE, createSpamClassifierStage);
