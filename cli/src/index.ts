export { eventFromRaw, splitMbox } from './eml.ts';
export { readEvents } from './feed.ts';
export { main } from './main.ts';
