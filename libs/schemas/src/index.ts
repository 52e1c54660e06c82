export * from './catalog.ts';
export * from './generated.ts';
export * from './json-form.ts';
export * from './serde.ts';
