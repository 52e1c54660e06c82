// What the spam model sees of a message: named features with counts, from the parsed MIME
// (postal-mime: decoded text and HTML parts, headers, attachments) and the outbound signals the
// event carries. Work is bounded: only the first `maxBytes` are parsed, within `timeoutMs`;
// when either bound bites, the features say so and the verdict is flagged.
//
// What is left out on purpose: the mail client (X-Mailer), the top-level Content-Type and
// charset, display-name words, bare size and word counts, the registrable domains of links and
// senders. On the public corpus they separate 2002's mailing lists from 2002's spam and say
// nothing about today's mail. What is kept is evidence that travels: the words the sender wrote
// (quoted history aside), what the message asks for (`lex:`, in many languages), its links'
// facts (`url:`), its attachments' risk (`att:`), and how it is addressed.
import { readFileSync } from 'node:fs';
import PostalMime from 'postal-mime';
import { foldText, matchLexicon } from './lexicon.ts';
import { ABUSED_TLDS, imitatedBrand, type Link, linkFacts, registrableDomain } from './links.ts';

export interface OutboundSignals {
  recipients: number;
  externalRecipients: number;
  /** Recipient addresses, to tell whether any of them is visible in To/Cc. */
  recipientAddresses: readonly string[];
}

export interface ExtractOptions {
  maxBytes: number;
  timeoutMs: number;
}

export interface Features {
  /** Feature name → count. */
  readonly counts: Map<string, number>;
  /** Only part of the message was read (the platform's or our byte bound, or the time bound). */
  readonly truncated: boolean;
  readonly parseFailed: boolean;
  /** The words the sender wrote (quoted history aside), for the submitter's profile. */
  readonly words: readonly string[];
}

const MAX_WORDS = 2_000;

const STOPWORDS = new Set(
  readFileSync(new URL('./stopwords.txt', import.meta.url), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith('#'))
    .flatMap((line) =>
      line
        .slice(line.indexOf(':') + 1)
        .trim()
        .split(/\s+/),
    ),
);

const MAX_TEXT = 100_000;
const TOKEN = /[\p{L}\p{N}]+/gu;
// Scripts written without spaces between words: their text is read as pairs of characters.
const HAS_UNSPACED =
  /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Thai}\p{Script=Hangul}]/u;
const UNSPACED_SPLIT =
  /([\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Thai}\p{Script=Hangul}]+)/u;
const URL_IN_TEXT = /\bhttps?:\/\/[^\s"'<>)\]]+/gi;

const FREEMAIL = new Set([
  'gmail.com',
  'googlemail.com',
  'outlook.com',
  'hotmail.com',
  'live.com',
  'msn.com',
  'yahoo.com',
  'ymail.com',
  'aol.com',
  'icloud.com',
  'me.com',
  'proton.me',
  'protonmail.com',
  'gmx.com',
  'gmx.de',
  'gmx.net',
  'web.de',
  'mail.com',
  'mail.ru',
  'yandex.ru',
  'yandex.com',
  'qq.com',
  '163.com',
  '126.com',
  'zoho.com',
  'tutanota.com',
  'hotmail.fr',
  'yahoo.fr',
  'orange.fr',
  'libero.it',
  'naver.com',
  'rediffmail.com',
]);

const ROLE_NAME =
  /\b(support|help ?desk|service ?desk|it (team|department|support|admin)|administrator|admin|security|billing|accounts? (payable|team)|payroll|human resources|hr department|mail ?(box|server)|webmail|postmaster|no-?reply|team)\b/i;

/** Where quoted history begins, in the replies and forwards of common clients and languages. */
const QUOTE_MARKERS = [
  /^-{2,}\s*(original message|ursprüngliche nachricht|message d'origine|mensaje original|mensagem original|messaggio originale|oorspronkelijk bericht|oryginalna wiadomość|исходное сообщение|原始邮件|元のメッセージ)\s*-{2,}/i,
  /^-{5,}\s*forwarded message\s*-{5,}/i,
  /^(begin forwarded message|anfang der weitergeleiteten nachricht|début du message réexpédié)\s*:/i,
  /^_{20,}\s*$/,
  /^(from|von|de|da|van|od|от|发件人|差出人|보낸 사람)\s*:.*$/i, // Outlook's header block (checked with the next line)
  /^(on|am|le|el|em|il|op|w dniu)\b.{5,200}\b(wrote|schrieb|a écrit|escribió|escreveu|ha scritto|schreef|napisał)\s*:?\s*$/i,
];

function add(counts: Map<string, number>, name: string, by = 1): void {
  counts.set(name, (counts.get(name) ?? 0) + by);
}

function bucket(value: number, edges: readonly number[]): string {
  for (const edge of edges) if (value <= edge) return `le${edge}`;
  return `gt${edges[edges.length - 1]}`;
}

/** Tokens as the lexicon and the model see them; runs of unspaced scripts become character pairs. */
export function tokenize(folded: string, limit = MAX_WORDS): { words: string[]; unspaced: string } {
  const words: string[] = [];
  const unspaced: string[] = [];
  for (const match of folded.matchAll(TOKEN)) {
    if (words.length >= limit) break;
    const token = match[0];
    if (!HAS_UNSPACED.test(token)) {
      words.push(token);
      continue;
    }
    for (const part of token.split(UNSPACED_SPLIT)) {
      if (!part) continue;
      if (!HAS_UNSPACED.test(part)) {
        words.push(part);
        continue;
      }
      unspaced.push(part);
      const chars = [...part];
      if (chars.length === 1) words.push(part);
      for (let i = 0; i + 1 < chars.length && words.length < limit; i++)
        words.push(`${chars[i]}${chars[i + 1]}`);
    }
  }
  return { words, unspaced: unspaced.join(' ') };
}

function normaliseWord(word: string): string | undefined {
  // Numbers (dates, order numbers, codes) say more about a corpus's era than about spam.
  if (word.length > 24 || /^\d+$/.test(word) || STOPWORDS.has(word)) return undefined;
  if (word.length < 2 && !HAS_UNSPACED.test(word)) return undefined;
  return word;
}

function addWords(
  counts: Map<string, number>,
  prefix: string,
  words: readonly string[],
  bigrams: boolean,
): void {
  let previous: string | undefined;
  for (const raw of words) {
    const word = normaliseWord(raw);
    if (!word) continue;
    add(counts, `${prefix}:${word}`);
    if (bigrams && previous) add(counts, `b:${previous}_${word}`);
    previous = word;
  }
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };

function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (_whole, name: string) => {
    if (name[0] === '#') {
      const code =
        name[1] === 'x' || name[1] === 'X' ? Number.parseInt(name.slice(2), 16) : Number(name.slice(1));
      return Number.isFinite(code) && code > 0 && code < 0x110000 ? String.fromCodePoint(code) : ' ';
    }
    return ENTITIES[name.toLowerCase()] ?? ' ';
  });
}

/** HTML as text: blocks become lines, text inside <blockquote> and mail clients' quote blocks gets `> `. */
export function htmlToText(html: string): string {
  const cleaned = html
    .slice(0, MAX_TEXT)
    .replace(/<(script|style|head|title)\b[^>]*>[\s\S]*?<\/\1>/gi, ' ')
    .replace(/<!--[\s\S]*?-->/g, ' ');
  const out: string[] = [];
  let depth = 0;
  let line = '';
  const flush = () => {
    const text = decodeEntities(line).replace(/\s+/g, ' ').trim();
    if (text) out.push(depth > 0 ? `> ${text}` : text);
    line = '';
  };
  for (const part of cleaned.split(/(<[^>]*>)/)) {
    if (!part.startsWith('<')) {
      line += part;
      continue;
    }
    const tag = /^<\/?([a-z0-9]+)/i.exec(part)?.[1]?.toLowerCase() ?? '';
    const closing = part.startsWith('</');
    const quoteStart =
      tag === 'blockquote' ||
      (tag === 'div' &&
        /class="?[^"]*\b(gmail_quote|moz-cite-prefix|OutlookMessageHeader)\b|id="?(divRplyFwdMsg|appendonsend)/i.test(
          part,
        ));
    if (/^(p|div|br|tr|li|h[1-6]|table|blockquote|hr)$/.test(tag)) flush();
    if (tag === 'blockquote') depth = Math.max(0, depth + (closing ? -1 : 1));
    else if (quoteStart && !closing) {
      // Gmail's and Outlook's quote containers: everything after them is history.
      flush();
      depth = Math.max(depth, 1) + 1000;
    }
  }
  flush();
  return out.join('\n');
}

/** The text the sender wrote, and the share of the whole that is quoted history. */
export function splitQuoted(text: string): { fresh: string; quotedShare: number } {
  const lines = text.slice(0, MAX_TEXT).split(/\r?\n/);
  const fresh: string[] = [];
  let freshLength = 0;
  let total = 0;
  let quoting = false;
  for (const [i, line] of lines.entries()) {
    total += line.length;
    if (quoting) continue;
    const trimmed = line.trim();
    if (trimmed.startsWith('>')) continue;
    const marker = QUOTE_MARKERS.findIndex((m) => m.test(trimmed));
    // A bare "From:" line starts history only when Outlook's "Sent:"/"Date:" follows it.
    const outlookBlock =
      marker === 4 &&
      /^(sent|gesendet|envoyé|enviado|inviato|verzonden|wysłano|отправлено|date|datum)\s*:/i.test(
        (lines[i + 1] ?? '').trim(),
      );
    if ((marker !== -1 && marker !== 4) || outlookBlock) {
      quoting = true;
      continue;
    }
    fresh.push(line);
    freshLength += line.length;
  }
  const quoted = total - freshLength;
  return { fresh: fresh.join('\n'), quotedShare: total === 0 ? 0 : Math.max(0, quoted) / total };
}

function domainOfAddress(address: string | undefined): string | undefined {
  const at = address?.lastIndexOf('@') ?? -1;
  return at > 0 ? address?.slice(at + 1).toLowerCase() : undefined;
}

const ATTACHMENT_KINDS: readonly [string, RegExp][] = [
  ['executable', /^(exe|scr|com|bat|cmd|pif|js|jse|vbs|vbe|wsf|wsh|hta|ps1|msi|jar|lnk|cpl|reg|apk|dll)$/],
  ['disk-image', /^(iso|img|vhd|vhdx|dmg)$/],
  ['archive', /^(zip|rar|7z|gz|tgz|tar|ace|cab|arj|bz2|xz|z)$/],
  ['html', /^(html?|shtml|xhtml|svg|mht|mhtml)$/],
  ['macro-office', /^(docm|xlsm|pptm|dotm|xltm|xlam|xlsb|one|xll)$/],
  ['office', /^(docx?|xlsx?|pptx?|odt|ods|odp|rtf|csv)$/],
  ['pdf', /^pdf$/],
  ['calendar', /^(ics|vcs)$/],
  ['image', /^(png|jpe?g|gif|bmp|webp|heic|tiff?)$/],
];

function attachmentKind(filename: string, mimeType: string): string {
  const extension = /\.([a-z0-9]{1,5})$/i.exec(filename)?.[1]?.toLowerCase() ?? '';
  for (const [kind, pattern] of ATTACHMENT_KINDS) if (pattern.test(extension)) return kind;
  if (mimeType.startsWith('image/')) return 'image';
  if (mimeType === 'text/calendar') return 'calendar';
  if (mimeType === 'text/html') return 'html';
  if (mimeType === 'application/pdf') return 'pdf';
  if (/zip|compressed|x-rar|x-7z/.test(mimeType)) return 'archive';
  return 'other';
}

async function parseBounded(raw: Uint8Array, timeoutMs: number) {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  try {
    return await Promise.race([
      PostalMime.parse(raw, {
        maxNestingDepth: 50,
        maxHeadersSize: 256 * 1024,
        attachmentEncoding: 'arraybuffer',
      }),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

type Parsed = Awaited<ReturnType<typeof PostalMime.parse>>;

function addressOf(entry: Parsed['from'] | undefined): string | undefined {
  return entry && 'address' in entry ? entry.address : undefined;
}

function linksOf(text: string, html: string): Link[] {
  const links: Link[] = [];
  for (const match of html
    .slice(0, MAX_TEXT)
    .matchAll(/<a\b[^>]*?\bhref\s*=\s*["']?([^"'\s>]+)["']?[^>]*>([\s\S]{0,300}?)<\/a>/gi))
    links.push({
      href: decodeEntities(match[1] ?? ''),
      text: decodeEntities((match[2] ?? '').replace(/<[^>]*>/g, ' ')),
    });
  // URLs written out: in the text part, or in an HTML-only body outside its anchors.
  const written = text
    ? text.slice(0, MAX_TEXT)
    : html.slice(0, MAX_TEXT).replace(/<a\b[\s\S]*?<\/a>/gi, ' ');
  for (const match of written.matchAll(URL_IN_TEXT)) links.push({ href: match[0] });
  return links;
}

function addHeaderFacts(counts: Map<string, number>, parsed: Parsed): string | undefined {
  const subject = parsed.subject ?? '';
  if (subject.trim() === '') add(counts, 'subj:empty');
  else {
    // The reply and forward prefixes are features of their own (below), not subject words.
    const bare = subject.replace(
      /^(\s*(re|aw|sv|vs|antw|rif|odp|ynt|fwd?|wg|tr|rv|doorst|pd)\s*(\[\d+\])?\s*:\s*)+/i,
      '',
    );
    addWords(counts, 's', tokenize(foldText(bare), 50).words, false);
    if (/!/.test(subject)) add(counts, 'subj:excl');
    const letters = subject.replace(/[^A-Za-z]/g, '');
    if (letters.length > 5 && letters.replace(/[^A-Z]/g, '').length / letters.length > 0.6)
      add(counts, 'subj:caps');
    const threaded = parsed.headers.some((h) => h.key === 'in-reply-to' || h.key === 'references');
    if (/^\s*(re|aw|sv|vs|antw|rif|odp|ynt|回复|返信)\s*:/i.test(subject))
      add(counts, threaded ? 'subj:reply' : 'subj:reply-without-thread');
    else if (/^\s*(fwd?|wg|tr|rv|i|doorst|pd|İlt)\s*:/i.test(subject)) add(counts, 'subj:forward');
  }
  const fromAddress = addressOf(parsed.from);
  const fromDomain = domainOfAddress(fromAddress);
  const fromRegistrable = fromDomain ? registrableDomain(fromDomain) : undefined;
  if (fromDomain) {
    const tld = fromDomain.split('.').pop() ?? '';
    if (ABUSED_TLDS.has(tld)) add(counts, 'from:abused-tld');
    // A sender's own domain that imitates a brand: its links "on its own domain" prove nothing.
    if (fromRegistrable && imitatedBrand(fromDomain, fromRegistrable)) add(counts, 'from:brand-lookalike');
    if (FREEMAIL.has(fromDomain)) add(counts, 'from:freemail');
  }
  const name = parsed.from?.name ?? '';
  if (name) {
    const inName = /[^\s<>"]+@([^\s<>"]+)/.exec(name)?.[1]?.toLowerCase();
    if (inName && inName !== fromDomain) add(counts, 'fromname:other-address');
    if (imitatedBrand(foldText(name).replace(/[^a-z0-9]+/g, '.'), fromRegistrable ?? ''))
      add(counts, 'fromname:brand');
    if (ROLE_NAME.test(name)) add(counts, 'fromname:role');
  }
  const replyTo = domainOfAddress(addressOf(parsed.replyTo?.[0]));
  if (replyTo && fromDomain && registrableDomain(replyTo) !== fromRegistrable) {
    add(counts, 'replyto:differs');
    if (FREEMAIL.has(replyTo)) add(counts, 'replyto:freemail');
  }
  return fromRegistrable;
}

function addHtmlFacts(counts: Map<string, number>, html: string): void {
  const lower = html.slice(0, MAX_TEXT).toLowerCase();
  if (lower.includes('<form')) add(counts, 'html:form');
  if (/<input[^>]+type=["']?password/.test(lower)) add(counts, 'html:password-input');
  if (lower.includes('<script')) add(counts, 'html:script');
  if (lower.includes('<iframe')) add(counts, 'html:iframe');
  if (/http-equiv=["']?refresh/.test(lower)) add(counts, 'html:refresh');
  if (/display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*[01](px|pt)?\s*[;"']/.test(lower))
    add(counts, 'html:hidden-text');
  const images = lower.split('<img').length - 1;
  if (images > 0) add(counts, `html:img:${bucket(images, [1, 5, 20])}`);
}

function addTextFacts(counts: Map<string, number>, fresh: string): void {
  {
    // Shouting: capitals, exclamation marks, dollar signs.
    const sample = fresh.slice(0, 20_000);
    let letters = 0;
    let capitals = 0;
    let excl = 0;
    let dollars = 0;
    for (let i = 0; i < sample.length; i++) {
      const c = sample.charCodeAt(i);
      if (c >= 65 && c <= 90) {
        letters++;
        capitals++;
      } else if (c >= 97 && c <= 122) letters++;
      else if (c === 33) excl++;
      else if (c === 36) dollars++;
    }
    if (letters > 20) add(counts, `ev:caps:${bucket(capitals / letters, [0.05, 0.15, 0.3, 0.5])}`);
    if (excl > 0) add(counts, `ev:excl:${bucket(excl, [1, 3, 10])}`);
    if (dollars > 0) add(counts, `ev:dollar:${bucket(dollars, [1, 3, 10])}`);
  }
  const money =
    fresh.match(/[$€£¥₹]\s?\d[\d,.]*|\b\d[\d,.]*\s?(usd|eur|gbp|chf|dollars?|euros?)\b/gi)?.length ?? 0;
  if (money > 0) add(counts, `ev:money:${bucket(money, [1, 3])}`);
  if (/(\+?\d{1,3}[\s.-]?)?\(?\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}\b/.test(fresh)) add(counts, 'ev:phone');
  if (/\b1?[\s.-]?\(?(800|888|877|866|855|844|833)\)?[\s.-]\d{3}[\s.-]\d{4}\b/.test(fresh))
    add(counts, 'ev:phone-tollfree');
  if (/\b(bc1[a-z0-9]{25,39}|[13][a-km-zA-HJ-NP-Z1-9]{25,34})\b|\b0x[a-fA-F0-9]{40}\b/.test(fresh))
    add(counts, 'ev:crypto-address');
}

/**
 * Facts that mean more together than apart (SpamAssassin's meta rules): a request for
 * credentials with a link off the sender's domain, a payment change pressed for, a lure with
 * a risky attachment. A linear model cannot form these conjunctions itself.
 */
const META: readonly [string, (has: (name: string) => boolean) => boolean][] = [
  [
    'credential-link-elsewhere',
    (h) => h('lex:credential') && (h('url:only-elsewhere') || h('url:login-path-elsewhere')),
  ],
  ['credential-threat', (h) => h('lex:credential') && h('lex:threat')],
  [
    'lookalike-or-hidden-link',
    (h) => h('url:brand-lookalike') || h('url:text-names-other-host') || h('url:punycode') || h('url:ip'),
  ],
  [
    'document-link-elsewhere',
    (h) => h('lex:document-lure') && (h('url:only-elsewhere') || h('url:free-hosting')),
  ],
  [
    'payment-change-pressed',
    (h) => h('lex:payment-change') && (h('lex:urgency') || h('lex:secrecy') || h('lex:availability')),
  ],
  [
    'gift-card-request',
    (h) => h('lex:gift-card') && (h('lex:availability') || h('lex:urgency') || h('lex:secrecy')),
  ],
  [
    'reply-to-diverts',
    (h) =>
      h('replyto:differs') &&
      (h('lex:payment-change') || h('lex:gift-card') || h('lex:availability') || h('lex:money-lure')),
  ],
  [
    'risky-attachment-lure',
    (h) =>
      (h('att:html') ||
        h('att:archive') ||
        h('att:disk-image') ||
        h('att:executable') ||
        h('att:macro-office')) &&
      (h('lex:payment-document') ||
        h('lex:attachment-mention') ||
        h('lex:malware-lure') ||
        h('lex:document-lure')),
  ],
  [
    'callback-lure',
    (h) =>
      h('lex:callback') && h('ev:phone') && (h('ev:money:le1') || h('ev:money:le3') || h('ev:money:gt3')),
  ],
  [
    'qr-lure',
    (h) => h('lex:qr') && (h('att:image') || h('att:inline-image') || h('ev:image-with-little-text')),
  ],
  [
    'fake-reply',
    (h) =>
      h('subj:reply-without-thread') &&
      (h('lex:payment-change') || h('lex:payment-document') || h('url:only-elsewhere')),
  ],
  [
    'own-transactional',
    (h) =>
      h('url:own-domain') &&
      !h('url:also-elsewhere') &&
      !h('url:brand-lookalike') &&
      !h('from:brand-lookalike') &&
      !h('from:abused-tld'),
  ],
  // Thread hijacking: a reply whose new text changes where money goes or sends the thread elsewhere.
  [
    'reply-payment-change',
    (h) => (h('subj:reply') || h('subj:reply-without-thread')) && h('lex:payment-change'),
  ],
  [
    'reply-link-elsewhere',
    (h) =>
      (h('subj:reply') || h('subj:reply-without-thread')) &&
      (h('url:only-elsewhere') || h('url:free-hosting') || h('url:shortener')),
  ],
  [
    'reply-risky-attachment',
    (h) =>
      (h('subj:reply') || h('subj:reply-without-thread')) &&
      (h('att:html') ||
        h('att:archive') ||
        h('att:disk-image') ||
        h('att:executable') ||
        h('att:macro-office')),
  ],
];

function addMetaFacts(counts: Map<string, number>): void {
  const has = (name: string) => counts.has(name);
  for (const [name, holds] of META) if (holds(has)) add(counts, `meta:${name}`);
}

function addSignals(counts: Map<string, number>, signals: OutboundSignals, visible: Set<string>): void {
  // How many, not who: the internal/external split is the limit counter's business, and a
  // message is not more or less spam for being addressed to a colleague.
  add(counts, `rcpt:${bucket(signals.recipients, [1, 5, 20, 100])}`);
  // A blast whose recipients are all hidden (Bcc, undisclosed-recipients) is a classic spam shape.
  if (
    signals.recipients > 1 &&
    signals.recipientAddresses.length > 0 &&
    !signals.recipientAddresses.some((a) => visible.has(a.toLowerCase()))
  )
    add(counts, 'bcc-only');
}

export async function extractFeatures(
  raw: Uint8Array,
  signals: OutboundSignals,
  options: ExtractOptions,
  alreadyTruncated = false,
): Promise<Features> {
  const counts = new Map<string, number>();
  const bytes = raw.length > options.maxBytes ? raw.subarray(0, options.maxBytes) : raw;
  let truncated = alreadyTruncated || bytes.length < raw.length;
  let parseFailed = false;

  let parsed: Parsed | undefined;
  try {
    const result = await parseBounded(bytes, options.timeoutMs);
    if (result === 'timeout') truncated = true;
    else parsed = result;
  } catch {
    parseFailed = true;
  }

  const visible = new Set<string>();
  let words: string[] = [];
  if (parsed) {
    const fromRegistrable = addHeaderFacts(counts, parsed);
    for (const list of [parsed.to, parsed.cc]) {
      for (const address of list ?? []) {
        if ('address' in address && address.address) visible.add(address.address.toLowerCase());
        if ('group' in address)
          for (const member of address.group ?? [])
            if (member.address) visible.add(member.address.toLowerCase());
      }
    }
    const text = parsed.text ?? '';
    const html = parsed.html ?? '';
    if (html) addHtmlFacts(counts, html);
    const body = text || htmlToText(html);
    const { fresh, quotedShare } = splitQuoted(body);
    if (quotedShare > 0.05) add(counts, `quoted:${bucket(quotedShare, [0.5, 0.8])}`);
    // A forward's own words may be a line ("FYI"); then the forwarded text is what is sent.
    const ownWords = tokenize(foldText(fresh));
    const judged = ownWords.words.length >= 8 ? ownWords : tokenize(foldText(body));
    words = judged.words;
    addWords(counts, 'w', judged.words, true);
    for (const [concept, n] of matchLexicon(judged.words, judged.unspaced))
      add(counts, `lex:${concept}`, Math.min(n, 5));
    if (judged.words.length <= 25) add(counts, 'text:short');
    addTextFacts(counts, fresh || body);
    for (const fact of linkFacts(linksOf(text, html), fromRegistrable)) add(counts, fact);
    const attachments = parsed.attachments.slice(0, 20);
    for (const attachment of attachments) {
      const filename = (attachment.filename ?? '').toLowerCase();
      const kind = attachmentKind(filename, attachment.mimeType.toLowerCase());
      if (attachment.disposition === 'inline' && kind === 'image') {
        add(counts, 'att:inline-image');
        continue;
      }
      add(counts, `att:${kind}`);
      if (/\.(pdf|docx?|xlsx?|jpe?g|png|txt)\.[a-z0-9]{2,5}$/.test(filename))
        add(counts, 'att:double-extension');
      if (kind === 'html' && attachment.content instanceof ArrayBuffer) {
        const content = Buffer.from(attachment.content).subarray(0, 200_000).toString('latin1').toLowerCase();
        if (/<form|type=["']?password|window\.location|atob\(|document\.write/.test(content))
          add(counts, 'att:html-active');
      }
    }
    if (
      attachments.length > 0 &&
      judged.words.length <= 25 &&
      attachments.some((a) => a.mimeType.startsWith('image/'))
    )
      add(counts, 'ev:image-with-little-text');
  } else {
    // Unparseable or too slow: judge the bytes as text, and say so.
    const judged = tokenize(foldText(Buffer.from(bytes.subarray(0, 32 * 1024)).toString('latin1')));
    words = judged.words;
    addWords(counts, 'w', judged.words, true);
    add(counts, parseFailed ? 'parse:failed' : 'parse:timeout');
  }
  if (truncated) add(counts, 'truncated');
  addSignals(counts, signals, visible);
  addMetaFacts(counts);
  return { counts, truncated, parseFailed, words };
}
