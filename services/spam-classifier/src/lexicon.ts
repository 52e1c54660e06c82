// What a message asks for, in the words of many languages: each concept of lexicon.txt is a list
// of phrases that map to one feature (`lex:<concept>`), so that what the model learns about a
// request for credentials in English also holds for one in Polish or Japanese.
//
// These are the requests and lures of fraud and phishing as anti-fraud and CERT advisories
// describe them, plus the phrases of ordinary transactional mail that point the other way
// (`ignore-if-not-you`, `unsubscribe`). Whether a concept means spam, and how much, is learnt.
import { readFileSync } from 'node:fs';

/** Lower case, compatibility forms folded, Latin/Greek/Cyrillic diacritics removed: `Vérifiez` → `verifiez`. */
export function foldText(text: string): string {
  return text
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .normalize('NFC')
    .toLowerCase();
}

/** lexicon.txt: `concept: phrase | phrase`, indented lines continuing the concept above. */
export function parseLexicon(text: string): Record<string, string[]> {
  const lexicon: Record<string, string[]> = {};
  let concept: string | undefined;
  for (const line of text.split('\n')) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    let phrases = line;
    if (!/^\s/.test(line)) {
      const colon = line.indexOf(':');
      concept = line.slice(0, colon).trim();
      phrases = line.slice(colon + 1);
    }
    if (concept === undefined) throw new Error(`lexicon.txt: "${line}" belongs to no concept`);
    const list = lexicon[concept] ?? [];
    for (const phrase of phrases.split('|')) if (phrase.trim()) list.push(phrase.trim());
    lexicon[concept] = list;
  }
  return lexicon;
}

export const LEXICON = parseLexicon(readFileSync(new URL('./lexicon.txt', import.meta.url), 'utf8'));

/** A phrase trie over words: the first word leads to the phrases that start with it. */
export interface CompiledLexicon {
  readonly byFirstWord: ReadonlyMap<string, readonly { words: readonly string[]; concept: string }[]>;
  /** Phrases in scripts without spaces, matched as substrings. */
  readonly substrings: readonly { text: string; concept: string }[];
}

const UNSPACED = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Thai}\p{Script=Hangul}]/u;

export function compileLexicon(lexicon: Readonly<Record<string, readonly string[]>>): CompiledLexicon {
  const byFirstWord = new Map<string, { words: string[]; concept: string }[]>();
  const substrings: { text: string; concept: string }[] = [];
  for (const [concept, phrases] of Object.entries(lexicon)) {
    for (const phrase of phrases) {
      const folded = foldText(phrase);
      if (UNSPACED.test(folded)) {
        substrings.push({ text: folded, concept });
        continue;
      }
      const words = folded.split(/[^\p{L}\p{N}]+/u).filter(Boolean);
      const first = words[0];
      if (!first) continue;
      const list = byFirstWord.get(first) ?? [];
      list.push({ words, concept });
      byFirstWord.set(first, list);
    }
  }
  return { byFirstWord, substrings };
}

export const COMPILED_LEXICON = compileLexicon(LEXICON);

/** Concept → how many of its phrases occur in the words (and the unspaced text). */
export function matchLexicon(
  words: readonly string[],
  unspaced: string,
  lexicon: CompiledLexicon = COMPILED_LEXICON,
): Map<string, number> {
  const found = new Map<string, number>();
  for (let i = 0; i < words.length; i++) {
    const candidates = lexicon.byFirstWord.get(words[i] as string);
    if (!candidates) continue;
    for (const { words: phrase, concept } of candidates) {
      let k = 1;
      while (k < phrase.length && words[i + k] === phrase[k]) k++;
      if (k === phrase.length) found.set(concept, (found.get(concept) ?? 0) + 1);
    }
  }
  if (unspaced)
    for (const { text, concept } of lexicon.substrings)
      if (unspaced.includes(text)) found.set(concept, (found.get(concept) ?? 0) + 1);
  return found;
}
