// ndr-surge-detector's process: the stage (stage.ts) under the shared service runner.
import { runService } from '@mailpools/stream';
import { createNdrSurgeDetectorStage, SERVICE } from './stage.ts';

await runService(SERVICE, createNdrSurgeDetectorStage);
