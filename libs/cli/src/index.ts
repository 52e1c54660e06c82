export { main } from './main.ts';
export { readEvents } from './feed.ts';
export { eventFromRaw, splitMbox, readHeaders, addresses } from './eml.ts';
