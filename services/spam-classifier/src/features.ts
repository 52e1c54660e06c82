// What the spam model sees of a message: named features with counts, from the parsed MIME
// (postal-mime: decoded text and HTML parts, headers, attachments), its URLs, and the outbound
// signals the event carries. Work is bounded: only the first `maxBytes` are parsed, within
// `timeoutMs`; when either bound bites, the features say so and the verdict is flagged.
import PostalMime from 'postal-mime';

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
}

const MAX_WORDS = 2_000;
const WORD = /[\p{L}\p{N}$€£][\p{L}\p{N}'$€£!_-]*/gu;
const URL = /\bhttps?:\/\/([^\s/"'<>)?#:]+)[^\s"'<>)]*/gi;
const HTML_TAGS = ['img', 'font', 'table', 'a', 'script', 'form', 'style', 'iframe', 'center', 'b'];

function add(counts: Map<string, number>, name: string, by = 1): void {
  counts.set(name, (counts.get(name) ?? 0) + by);
}

function bucket(value: number, edges: readonly number[]): string {
  for (const edge of edges) if (value <= edge) return `le${edge}`;
  return `gt${edges[edges.length - 1]}`;
}

function normaliseWord(word: string): string | undefined {
  if (word.length < 2 || word.length > 24) return undefined;
  if (/^\d+$/.test(word)) return word.length > 4 ? 'NUMLONG' : `NUM${word.length}`;
  return word.toLowerCase();
}

function addWords(counts: Map<string, number>, prefix: string, text: string, bigrams: boolean): number {
  let previous: string | undefined;
  let n = 0;
  for (const match of text.matchAll(WORD)) {
    if (n >= MAX_WORDS) break;
    const word = normaliseWord(match[0]);
    if (!word) continue;
    add(counts, `${prefix}:${word}`);
    if (bigrams && previous) add(counts, `b:${previous}_${word}`);
    previous = word;
    n++;
  }
  if (prefix === 'w') {
    const sample = text.slice(0, 20_000);
    const letters = sample.match(/[A-Za-z]/g)?.length ?? 0;
    const capitals = sample.match(/[A-Z]/g)?.length ?? 0;
    if (letters > 20) add(counts, `caps:${bucket(capitals / letters, [0.05, 0.15, 0.3, 0.5])}`);
  }
  return n;
}

function htmlToText(html: string): string {
  return html
    .replace(/<(script|style)[^>]*>[\s\S]*?<\/\1>/gi, ' ')
    .replace(/<[^>]*>/g, ' ')
    .replace(/&nbsp;/gi, ' ')
    .replace(/&[a-z]+;|&#\d+;/gi, ' ');
}

function domainOfAddress(address: string | undefined): string | undefined {
  const at = address?.lastIndexOf('@') ?? -1;
  return at > 0 ? address?.slice(at + 1).toLowerCase() : undefined;
}

function addUrls(counts: Map<string, number>, text: string): void {
  let n = 0;
  for (const match of text.matchAll(URL)) {
    if (n >= 200) break;
    const host = (match[1] ?? '').toLowerCase().replace(/\.$/, '');
    n++;
    if (/^\d{1,3}(\.\d{1,3}){3}$/.test(host)) {
      add(counts, 'url:ip');
      continue;
    }
    const labels = host.split('.');
    add(counts, `url:${labels.slice(-2).join('.')}`);
    add(counts, `urltld:${labels[labels.length - 1]}`);
  }
  add(counts, `urls:${bucket(n, [0, 1, 3, 10])}`);
}

function addSignals(counts: Map<string, number>, signals: OutboundSignals, visible: Set<string>): void {
  add(counts, `rcpt:${bucket(signals.recipients, [1, 5, 20, 100])}`);
  const share = signals.recipients === 0 ? 0 : signals.externalRecipients / signals.recipients;
  add(counts, `ext:${bucket(share, [0, 0.5, 0.99])}`);
  // A blast whose recipients are all hidden (Bcc, undisclosed-recipients) is a classic spam shape.
  if (
    signals.recipientAddresses.length > 0 &&
    !signals.recipientAddresses.some((a) => visible.has(a.toLowerCase()))
  ) {
    add(counts, 'bcc-only');
  }
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
  add(counts, `size:${bucket(raw.length, [1_000, 3_000, 10_000, 30_000, 100_000])}`);

  let parsed: Awaited<ReturnType<typeof PostalMime.parse>> | undefined;
  try {
    const result = await parseBounded(bytes, options.timeoutMs);
    if (result === 'timeout') truncated = true;
    else parsed = result;
  } catch {
    parseFailed = true;
  }

  const visible = new Set<string>();
  if (parsed) {
    const subject = parsed.subject ?? '';
    if (subject.trim() === '') add(counts, 'subj:empty');
    else {
      addWords(counts, 's', subject, false);
      if (/!/.test(subject)) add(counts, 'subj:excl');
      const letters = subject.replace(/[^A-Za-z]/g, '');
      if (letters.length > 5 && letters.replace(/[^A-Z]/g, '').length / letters.length > 0.6)
        add(counts, 'subj:caps');
    }
    const from = parsed.from;
    const fromAddress = from && 'address' in from ? from.address : undefined;
    const fromDomain = domainOfAddress(fromAddress);
    if (fromDomain) add(counts, `from:${fromDomain.split('.').slice(-2).join('.')}`);
    if (from?.name) addWords(counts, 'fromname', from.name, false);
    else add(counts, 'fromname:none');
    const replyTo = parsed.replyTo?.[0];
    const replyDomain = domainOfAddress(replyTo && 'address' in replyTo ? replyTo.address : undefined);
    if (replyDomain && replyDomain !== fromDomain) add(counts, 'replyto:differs');
    for (const list of [parsed.to, parsed.cc]) {
      for (const address of list ?? []) {
        if ('address' in address && address.address) visible.add(address.address.toLowerCase());
        if ('group' in address)
          for (const member of address.group ?? [])
            if (member.address) visible.add(member.address.toLowerCase());
      }
    }
    if (visible.size === 0) add(counts, 'to:hidden');
    // Only headers the sender writes: trace and list headers are added by receiving systems, do
    // not exist on outbound mail, and in the public corpus they would leak the label.
    for (const header of parsed.headers) {
      if (header.key === 'x-mailer' || header.key === 'user-agent') {
        add(counts, `mailer:${(header.value.split(/[\s/(;]/)[0] ?? '').toLowerCase().slice(0, 20)}`);
      } else if (header.key === 'content-type') {
        add(counts, `ct:${(header.value.split(';')[0] ?? '').trim().toLowerCase()}`);
        const charset = /charset="?([^";\s]+)/i.exec(header.value)?.[1];
        if (charset) add(counts, `charset:${charset.toLowerCase()}`);
        break; // the top-level Content-Type only
      }
    }
    const text = parsed.text ?? '';
    const html = parsed.html ?? '';
    if (html) {
      add(counts, text ? 'html:alt' : 'html:only');
      const lower = html.toLowerCase();
      for (const tag of HTML_TAGS) {
        const n = lower.split(`<${tag}`).length - 1;
        if (n > 0) add(counts, `html:${tag}:${bucket(n, [1, 5, 20])}`);
      }
    }
    const body = text || htmlToText(html);
    const words = addWords(counts, 'w', body, true);
    add(counts, `words:${bucket(words, [10, 50, 200, 1000])}`);
    addUrls(counts, `${text}\n${html}`);
    for (const attachment of parsed.attachments.slice(0, 20)) {
      add(counts, `att:${attachment.mimeType.toLowerCase()}`);
      const extension = /\.([a-z0-9]{1,5})$/i.exec(attachment.filename ?? '')?.[1];
      if (extension) add(counts, `attext:${extension.toLowerCase()}`);
    }
    add(counts, `atts:${bucket(parsed.attachments.length, [0, 1, 3])}`);
  } else {
    // Unparseable or too slow: judge the bytes as text, and say so.
    addWords(counts, 'w', Buffer.from(bytes.subarray(0, 32 * 1024)).toString('latin1'), true);
    add(counts, parseFailed ? 'parse:failed' : 'parse:timeout');
  }
  if (truncated) add(counts, 'truncated');
  addSignals(counts, signals, visible);
  return { counts, truncated, parseFailed };
}
