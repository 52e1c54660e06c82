// auth-verifier's process: the stage (stage.ts) under the shared service runner.
import { runService } from '@mailpools/stream';
import { createAuthVerifierStage, SERVICE } from './stage.ts';

await runService(SERVICE, createAuthVerifierStage);
