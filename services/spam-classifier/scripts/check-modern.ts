// node services/spam-classifier/scripts/check-modern.ts [file-or-dir …] — checks messages of the
// modern set: each parses as MIME, has the headers a submitted message has, says what it is
// (X-Corpus-Kind, X-Corpus-Writer), and decodes to some text. Prints one line per problem.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import PostalMime from 'postal-mime';
import { MODERN_CORPUS_DIR, modernSignals, splitCorpusHeaders } from '../src/modern.ts';

function files(path: string): string[] {
  if (statSync(path).isFile()) return [path];
  return readdirSync(path).flatMap((entry) => files(join(path, entry)));
}

const targets = process.argv.length > 2 ? process.argv.slice(2) : [MODERN_CORPUS_DIR];
let checked = 0;
let problems = 0;
const problem = (file: string, what: string) => {
  problems++;
  console.log(`${relative(process.cwd(), file)}: ${what}`);
};
for (const file of targets.flatMap(files).filter((f) => f.endsWith('.eml'))) {
  checked++;
  const bytes = readFileSync(file);
  const { raw, corpus } = splitCorpusHeaders(bytes);
  if (!/\/(ham|spam)\/[^/]+$/.test(file)) problem(file, 'not under a ham/ or spam/ folder');
  for (const name of ['kind', 'writer']) if (!corpus.get(name)) problem(file, `no X-Corpus-${name}`);
  if (
    /^x-corpus-/im.test(
      raw
        .subarray(0, 65536)
        .toString('latin1')
        .split(/\r?\n\r?\n/)[0] ?? '',
    )
  )
    problem(file, 'an X-Corpus- line is left in the header (they must sit in the header block)');
  try {
    const parsed = await PostalMime.parse(raw);
    for (const name of ['from', 'date', 'message-id', 'subject'])
      if (!parsed.headers.some((h) => h.key === name)) problem(file, `no ${name} header`);
    if (!parsed.from || !('address' in parsed.from) || !parsed.from.address?.includes('@'))
      problem(file, 'From has no address');
    const text = (parsed.text ?? '') + (parsed.html ?? '');
    if (text.trim().length < 2 && parsed.attachments.length === 0) problem(file, 'no text and no attachment');
    if (text.includes('\uFFFD'))
      problem(file, 'decoded text has U+FFFD (a charset label that does not fit the bytes?)');
    if (modernSignals(raw, corpus).recipients === 0)
      problem(file, 'no recipients (To/Cc or X-Corpus-Envelope-To)');
  } catch (error) {
    problem(file, `does not parse: ${(error as Error).message}`);
  }
}
console.log(`${checked} messages checked, ${problems} problems`);
process.exitCode = problems > 0 ? 1 : 0;
