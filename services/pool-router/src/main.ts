// pool-router's process: the stage (stage.ts) under the shared service runner.
import { runService } from '@mailpools/stream';
import { createPoolRouterStage, SERVICE } from './stage.ts';

await runService(SERVICE, createPoolRouterStage);
