// @mailpools/postfix-bridge: Postfix in front of mailpools (README.md).
export { type Bridge, ROUTE_HEADER, startBridge } from './bridge.ts';
export { type PostfixInstance, type PostfixInstanceOptions, writePostfixInstance } from './postfix-config.ts';
export { type Routes, routeFor, routesOf, type SourceRoute } from './routes.ts';
export { startSaslServer } from './sasl.ts';
export { BRIDGE_SETTINGS, type BridgeSettings, bridgeSettings, readUsers } from './settings.ts';
