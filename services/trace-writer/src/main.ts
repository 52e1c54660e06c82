// trace-writer's process: the stage (stage.ts) under the shared service runner.
import { runService } from '@mailpools/stream';
import { createTraceWriterStage, SERVICE } from './stage.ts';

await runService(SERVICE, createTraceWriterStage);
