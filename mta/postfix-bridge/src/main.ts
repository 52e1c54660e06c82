// The bridge as a process: settings from the environment, stopped by SIGTERM or SIGINT.
import { createLogger } from '@mailpools/core';
import { startBridge } from './bridge.ts';
import { bridgeSettings } from './settings.ts';

const logger = createLogger('postfix-bridge');
const bridge = await startBridge(bridgeSettings(), process.env, logger);
for (const signal of ['SIGTERM', 'SIGINT'] as const)
  process.once(signal, () => {
    logger.info({ signal }, 'stopping');
    bridge.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
