// The project's own modern outbound evaluation set (corpus/modern, see its README): .eml files
// under <split>/<ham|spam>/, where split is `train` (may train the model) or `holdout` (never
// trains). Each file may carry `X-Corpus-*` header lines that describe it for the evaluation;
// they are cut from the bytes before anything else sees them, so no feature can read them.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getDomain } from 'tldts';
import type { OutboundSignals } from './features.ts';

export const MODERN_CORPUS_DIR = fileURLToPath(new URL('../corpus/modern', import.meta.url));
export const MODERN_SPLITS = ['train', 'holdout'] as const;
export type ModernSplit = (typeof MODERN_SPLITS)[number];

export interface ModernMessage {
  /** `<split>/<label>/<file>`. */
  readonly id: string;
  readonly split: ModernSplit;
  readonly spam: boolean;
  /** X-Corpus-Kind: what the message is (`password-reset`, `bec-gift-card`, …). */
  readonly kind: string;
  /** X-Corpus-Writer: who wrote it. */
  readonly writer: string;
  /** The message as the platform would submit it: without the X-Corpus-* lines. */
  readonly raw: Buffer;
  readonly signals: OutboundSignals;
}

const CORPUS_HEADER = /^x-corpus-([a-z-]+):[ \t]*(.*(?:\r?\n[ \t].*)*)\r?\n/gim;
const ADDRESS = /[^\s<>,;:"()]+@[^\s<>,;:"()]+\.[^\s<>,;:"()]+/g;

function headerBlockEnd(text: string): number {
  const match = /\r?\n\r?\n/.exec(text);
  return match ? match.index + match[0].length : text.length;
}

/** Splits the X-Corpus-* lines off the header block; the rest of the bytes stays as written. */
export function splitCorpusHeaders(file: Buffer): { raw: Buffer; corpus: Map<string, string> } {
  const head = file.subarray(0, Math.min(file.length, 256 * 1024)).toString('latin1');
  const end = headerBlockEnd(head);
  const corpus = new Map<string, string>();
  const block = head.slice(0, end).replace(CORPUS_HEADER, (_line, name: string, value: string) => {
    corpus.set(name.toLowerCase(), value.replace(/\r?\n[ \t]+/g, ' ').trim());
    return '';
  });
  return { raw: Buffer.concat([Buffer.from(block, 'latin1'), file.subarray(end)]), corpus };
}

function headerAddresses(raw: Buffer, names: readonly string[]): string[] {
  const head = raw.subarray(0, 64 * 1024).toString('latin1');
  const block = head.slice(0, headerBlockEnd(head)).replace(/\r?\n[ \t]+/g, ' ');
  const found: string[] = [];
  for (const line of block.split(/\r?\n/)) {
    const name = line.slice(0, line.indexOf(':')).toLowerCase();
    if (names.includes(name)) found.push(...(line.match(ADDRESS) ?? []).map((a) => a.toLowerCase()));
  }
  return found;
}

const registrable = (address: string) => {
  const host = address.split('@')[1] ?? '';
  return getDomain(host) ?? host;
};

/**
 * Outbound signals as the platform would give them: the envelope recipients are
 * X-Corpus-Envelope-To when given (a Bcc blast), else To and Cc; a recipient in the From
 * address's registrable domain is internal.
 */
export function modernSignals(raw: Buffer, corpus: ReadonlyMap<string, string>): OutboundSignals {
  const envelope = corpus.get('envelope-to');
  const recipients = envelope
    ? (envelope.match(ADDRESS) ?? []).map((a) => a.toLowerCase())
    : headerAddresses(raw, ['to', 'cc']);
  const fromDomain = registrable(headerAddresses(raw, ['from'])[0] ?? '');
  return {
    recipients: recipients.length,
    externalRecipients: recipients.filter((a) => registrable(a) !== fromDomain).length,
    recipientAddresses: recipients,
  };
}

export function loadModernCorpus(dir = MODERN_CORPUS_DIR): ModernMessage[] {
  const messages: ModernMessage[] = [];
  for (const split of MODERN_SPLITS) {
    for (const label of ['ham', 'spam'] as const) {
      const folder = join(dir, split, label);
      let files: string[];
      try {
        files = readdirSync(folder).filter((f) => f.endsWith('.eml'));
      } catch {
        continue;
      }
      for (const file of files.sort()) {
        const { raw, corpus } = splitCorpusHeaders(readFileSync(join(folder, file)));
        messages.push({
          id: `${split}/${label}/${file}`,
          split,
          spam: label === 'spam',
          kind: corpus.get('kind') ?? 'unknown',
          writer: corpus.get('writer') ?? 'unknown',
          raw,
          signals: modernSignals(raw, corpus),
        });
      }
    }
  }
  return messages;
}
