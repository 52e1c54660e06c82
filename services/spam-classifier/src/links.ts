// What a message's links say about it, whatever words surround them: hosts that hide where they
// go (shorteners, IP literals, punycode, free hosting), host names that imitate a brand, link
// text naming one host while the link goes to another, login and payment paths, and whether the
// links stay on the sender's own domain. Names only facts, never a domain itself, so nothing
// here memorises the hosts of any corpus.
import { domainToUnicode } from 'node:url';
import { parse } from 'tldts';

export interface Link {
  readonly href: string;
  /** The text of the anchor, when the link came from HTML. */
  readonly text?: string;
}

/**
 * The top-level domains abused most for spam and phishing (Spamhaus's and Interisle's yearly
 * lists). Only these are named as features: a country's domain only says which language a
 * message is in.
 */
export const ABUSED_TLDS = new Set([
  'xyz',
  'top',
  'click',
  'icu',
  'buzz',
  'online',
  'site',
  'live',
  'shop',
  'store',
  'info',
  'biz',
  'cc',
  'tk',
  'ml',
  'ga',
  'cf',
  'gq',
  'work',
  'cyou',
  'rest',
  'fit',
  'surf',
  'monster',
  'quest',
  'sbs',
  'cfd',
  'bond',
  'lol',
  'support',
  'help',
  'pw',
  'su',
  'ws',
  'today',
  'life',
  'club',
  'vip',
  'win',
  'loan',
  'date',
  'racing',
  'bid',
  'stream',
  'download',
  'review',
  'country',
  'gdn',
  'men',
  'party',
  'science',
  'trade',
  'link',
  'space',
  'website',
  'tech',
  'fun',
  'mom',
  'beauty',
  'hair',
  'makeup',
  'skin',
  'boats',
  'autos',
  'yachts',
  'ink',
  'digital',
  'network',
  'email',
  'services',
]);

const SHORTENERS = new Set([
  'bit.ly',
  'bitly.com',
  'tinyurl.com',
  't.co',
  'goo.gl',
  'ow.ly',
  'is.gd',
  'buff.ly',
  'rebrand.ly',
  'cutt.ly',
  'shorturl.at',
  'rb.gy',
  't.ly',
  'tiny.cc',
  's.id',
  'v.gd',
  'bl.ink',
  'shorte.st',
  'adf.ly',
  'qrco.de',
  'qr.io',
  'me-qr.com',
  'short.gy',
  'urlz.fr',
  'tiny.one',
  'lnkd.in',
  'shorturl.com',
  'x.gd',
  'surl.li',
  'clck.ru',
  'u.to',
  'dub.sh',
  'tr.ee',
]);

/** Hosting where anyone publishes a page in a minute: where phishing kits live. */
const FREE_HOSTING = [
  'web.app',
  'firebaseapp.com',
  'pages.dev',
  'workers.dev',
  'r2.dev',
  'netlify.app',
  'vercel.app',
  'herokuapp.com',
  'glitch.me',
  '000webhostapp.com',
  'weebly.com',
  'wixsite.com',
  'blogspot.com',
  'ngrok.io',
  'ngrok-free.app',
  'trycloudflare.com',
  'azurewebsites.net',
  'web.core.windows.net',
  'blob.core.windows.net',
  'storage.googleapis.com',
  'firebasestorage.googleapis.com',
  's3.amazonaws.com',
  'appspot.com',
  'repl.co',
  'surge.sh',
  'ipfs.io',
  'dweb.link',
  'notion.site',
  'canva.site',
  'mystrikingly.com',
  'webflow.io',
  'godaddysites.com',
  'square.site',
  'tilda.ws',
  'framer.website',
  'sites.google.com',
  'forms.gle',
  'jotform.com',
  'typedream.app',
  'wordpress.com',
  'onrender.com',
  'fly.dev',
  'github.io',
  'gitbook.io',
  'bubbleapps.io',
  'yolasite.com',
  'jimdosite.com',
];
const FORM_PATHS = [/^docs\.google\.com\/forms\//, /^forms\.office\.com\//, /^forms\.microsoft\.com\//];

/**
 * Click tracking of mailing services and link rewriting of security gateways: the link's host
 * is the service's, not the destination's, so its text may name another host without deceit.
 */
const TRACKING = [
  'list-manage.com',
  'mailchimp.com',
  'mcusercontent.com',
  'sendgrid.net',
  'mandrillapp.com',
  'hubspotlinks.com',
  'hubspotemail.net',
  'hs-sites.com',
  'mailgun.org',
  'rs6.net',
  'exacttarget.com',
  'awstrack.me',
  'mjt.lu',
  'sendibt2.com',
  'sendibt3.com',
  'brevo.com',
  'klaviyo.com',
  'klclick.com',
  'klclick1.com',
  'createsend.com',
  'cmail19.com',
  'cmail20.com',
  'safelinks.protection.outlook.com',
  'urldefense.com',
  'urldefense.proofpoint.com',
  'mimecast.com',
  'mailerlite.com',
  'mlsend.com',
  'constantcontact.com',
  'salesforce.com',
  'pardot.com',
  'marketo.com',
  'mktoweb.com',
  'emltrk.com',
  'postmarkapp.com',
  'pstmrk.it',
  'sparkpostmail.com',
  'spmailtechnolo.com',
  'eventbrite.com',
];

/** Brands phishers imitate, with the registrable domains that are really theirs. */
const BRANDS: Readonly<Record<string, readonly string[]>> = {
  microsoft: [
    'microsoft.com',
    'office.com',
    'office365.com',
    'live.com',
    'outlook.com',
    'sharepoint.com',
    'onedrive.com',
    'microsoftonline.com',
    'azure.com',
    'windows.net',
    'msn.com',
    'skype.com',
    '1drv.ms',
    'aka.ms',
    'microsoft365.com',
    'msft.net',
    'cloud.microsoft',
  ],
  office365: ['office365.com', 'office.com', 'microsoft.com'],
  outlook: ['outlook.com', 'live.com', 'microsoft.com', 'office.com'],
  onedrive: ['onedrive.com', 'live.com', 'microsoft.com', '1drv.ms'],
  sharepoint: ['sharepoint.com', 'microsoft.com'],
  google: [
    'google.com',
    'gmail.com',
    'youtube.com',
    'goo.gl',
    'googleusercontent.com',
    'gstatic.com',
    'googleapis.com',
    'withgoogle.com',
    'g.co',
  ],
  apple: ['apple.com', 'icloud.com', 'me.com', 'apple.news'],
  icloud: ['icloud.com', 'apple.com'],
  amazon: [
    'amazon.com',
    'amazon.de',
    'amazon.co.uk',
    'amazon.fr',
    'amazon.es',
    'amazon.it',
    'amazon.co.jp',
    'amazon.ca',
    'amazon.com.au',
    'amazon.in',
    'amazon.nl',
    'amazon.pl',
    'amazon.se',
    'amazon.com.br',
    'amazon.com.mx',
    'amazonaws.com',
    'a.co',
    'amazon.sg',
    'amazon.com.tr',
    'amazon.ae',
    'amazon.sa',
  ],
  paypal: ['paypal.com', 'paypal.me', 'paypalobjects.com'],
  docusign: ['docusign.com', 'docusign.net'],
  dropbox: ['dropbox.com', 'db.tt', 'dropboxusercontent.com'],
  adobe: ['adobe.com', 'adobesign.com', 'adobe.io'],
  netflix: ['netflix.com'],
  fedex: ['fedex.com'],
  linkedin: ['linkedin.com', 'lnkd.in'],
  facebook: ['facebook.com', 'fb.com', 'fb.me', 'meta.com'],
  instagram: ['instagram.com'],
  whatsapp: ['whatsapp.com', 'wa.me'],
  wellsfargo: ['wellsfargo.com'],
  chase: ['chase.com', 'jpmorganchase.com'],
  bankofamerica: ['bankofamerica.com', 'bofa.com'],
  coinbase: ['coinbase.com'],
  binance: ['binance.com'],
  wetransfer: ['wetransfer.com', 'we.tl'],
  zoom: ['zoom.us', 'zoom.com'],
  norton: ['norton.com', 'nortonlifelock.com'],
  mcafee: ['mcafee.com'],
  revolut: ['revolut.com'],
  santander: ['santander.com', 'santander.co.uk', 'santander.de', 'santander.com.br', 'santander.es'],
  barclays: ['barclays.com', 'barclays.co.uk'],
  hsbc: ['hsbc.com', 'hsbc.co.uk'],
  usps: ['usps.com'],
  royalmail: ['royalmail.com'],
  dhl: ['dhl.com', 'dhl.de', 'dhl.co.uk', 'dhl.fr', 'dhl.nl', 'dhl.es', 'dhl.it', 'dhl.pl'],
  steam: ['steampowered.com', 'steamcommunity.com'],
  spotify: ['spotify.com'],
  github: ['github.com', 'github.io', 'githubusercontent.com'],
  slack: ['slack.com'],
  salesforce: ['salesforce.com', 'force.com'],
  intuit: ['intuit.com'],
  quickbooks: ['intuit.com', 'quickbooks.com'],
  stripe: ['stripe.com'],
  rakuten: ['rakuten.co.jp', 'rakuten.com'],
  alibaba: ['alibaba.com', 'aliexpress.com'],
};
const BRAND_NAMES = Object.keys(BRANDS);

/** Digits and look-alike letters read as the letters they imitate. */
function skeleton(label: string): string {
  return label
    .normalize('NFKD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .replace(/[аа]/g, 'a')
    .replace(/[еёе]/g, 'e')
    .replace(/[оο0]/g, 'o')
    .replace(/[рρ]/g, 'p')
    .replace(/[сϲ]/g, 'c')
    .replace(/[хχ]/g, 'x')
    .replace(/[уγ]/g, 'y')
    .replace(/[іı1!|]/g, 'l')
    .replace(/[ѕ5$]/g, 's')
    .replace(/3/g, 'e')
    .replace(/4|@/g, 'a')
    .replace(/rn/g, 'm')
    .replace(/vv/g, 'w')
    .replace(/[^a-z]/g, '');
}

/** Optimal string alignment distance, stopping early once it exceeds `limit`. */
function nearBy(a: string, b: string, limit: number): boolean {
  if (Math.abs(a.length - b.length) > limit) return false;
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    const row: number[] = [i];
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        row.push(j);
        continue;
      }
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      const previous = rows[i - 1] as number[];
      let best = Math.min(
        (previous[j] as number) + 1,
        (row[j - 1] as number) + 1,
        (previous[j - 1] as number) + cost,
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        best = Math.min(best, ((rows[i - 2] as number[])[j - 2] as number) + 1);
      row.push(best);
    }
    rows.push(row);
  }
  return ((rows[a.length] as number[])[b.length] as number) <= limit;
}

/** The brand a host imitates, if any: a brand's name in it, or one edit away, off the brand's domains. */
export function imitatedBrand(hostname: string, domain: string): string | undefined {
  // The same hosts come back message after message: remember the answer (bounded).
  const key = `${hostname} ${domain}`;
  const known = BRAND_CACHE.get(key);
  if (known !== undefined) return known || undefined;
  if (BRAND_CACHE.size >= 10_000) BRAND_CACHE.clear();
  const found = findImitatedBrand(hostname, domain);
  BRAND_CACHE.set(key, found ?? '');
  return found;
}

const BRAND_CACHE = new Map<string, string>();

function findImitatedBrand(hostname: string, domain: string): string | undefined {
  const labels = (domainToUnicode(hostname) || hostname).split('.').map(skeleton);
  for (const brand of BRAND_NAMES) {
    const own = BRANDS[brand] as readonly string[];
    if (own.includes(domain)) continue;
    if (brand === 'amazon' && /^amazon\.[a-z.]+$/.test(domain)) continue;
    if (brand === 'google' && /^google\.[a-z.]+$/.test(domain)) continue;
    if (brand === 'dhl' && /^dhl\.[a-z.]+$/.test(domain)) continue;
    for (const label of labels) {
      if (brand.length >= 4 && label.includes(brand)) return brand;
      if (brand.length >= 6 && label !== brand && nearBy(label, brand, 1)) return brand;
    }
  }
  return undefined;
}

const LOGIN_PATH =
  /(log-?in|sign-?in|signon|verif|validat|confirm|account|secure|auth|passw|reset|unlock|recover|wallet|billing|payment|invoice|webmail|owa|o365|office365|sso|session|update|kyc)/i;
const DOWNLOAD_PATH =
  /\.(zip|rar|7z|exe|scr|msi|iso|img|js|vbs|hta|apk|html?|shtml|svg|lnk|bat|ps1)(\?|#|$)/i;
const HOST_IN_TEXT = /\b((?:[a-z0-9-]+\.)+[a-z]{2,24})\b/i;

const suffixOf = (host: string, list: readonly string[]) =>
  list.some((entry) => host === entry || host.endsWith(`.${entry}`));

/** The facts of a message's links, as feature names (each once) relative to the sender's domain. */
export function linkFacts(links: readonly Link[], senderDomain: string | undefined): Set<string> {
  const facts = new Set<string>();
  let own = 0;
  let elsewhere = 0;
  for (const link of links.slice(0, 200)) {
    const href = link.href.trim();
    if (/^data:/i.test(href)) {
      facts.add('url:data');
      continue;
    }
    if (!/^https?:\/\//i.test(href)) continue;
    const parsed = parse(href, { allowPrivateDomains: false });
    const host = (parsed.hostname ?? '').toLowerCase();
    if (!host) continue;
    const afterScheme = href.replace(/^https?:\/\//i, '');
    if (/^[^/?#]*@/.test(afterScheme)) facts.add('url:userinfo');
    if (/^[^/?#]*:\d+/.test(afterScheme.replace(/^[^/?#]*@/, ''))) facts.add('url:port');
    if (!/^https:/i.test(href)) facts.add('url:http');
    if (parsed.isIp) {
      facts.add('url:ip');
      elsewhere++;
      continue;
    }
    const domain = parsed.domain ?? host;
    const tld = parsed.publicSuffix ?? '';
    if (ABUSED_TLDS.has(tld.split('.').pop() ?? '')) facts.add('url:abused-tld');
    if (host.split('.').some((label) => label.startsWith('xn--')) || /[^ -~]/.test(link.href))
      facts.add('url:punycode');
    if (SHORTENERS.has(host) || SHORTENERS.has(domain)) facts.add('url:shortener');
    const path = afterScheme.slice(
      afterScheme.indexOf('/') === -1 ? afterScheme.length : afterScheme.indexOf('/'),
    );
    if (suffixOf(host, FREE_HOSTING) || FORM_PATHS.some((p) => p.test(`${host}${path}`)))
      facts.add('url:free-hosting');
    const tracked = suffixOf(host, TRACKING);
    if (tracked) facts.add('url:tracked');
    if (host.split('.').length - domain.split('.').length >= 3) facts.add('url:deep-subdomain');
    if (DOWNLOAD_PATH.test(path)) facts.add('url:file-download');
    const brand = imitatedBrand(host, domain);
    if (brand) facts.add('url:brand-lookalike');
    const isOwn = senderDomain !== undefined && (domain === senderDomain || tracked);
    if (domain === senderDomain) own++;
    else if (!tracked) elsewhere++;
    if (LOGIN_PATH.test(path)) facts.add(isOwn ? 'url:login-path-own' : 'url:login-path-elsewhere');
    const named = link.text ? HOST_IN_TEXT.exec(link.text)?.[1] : undefined;
    if (named && !tracked) {
      const namedDomain = parse(named).domain;
      if (namedDomain && parse(named).publicSuffix && namedDomain !== domain)
        facts.add('url:text-names-other-host');
    }
  }
  if (own > 0) facts.add('url:own-domain');
  if (elsewhere > 0) facts.add(own > 0 ? 'url:also-elsewhere' : 'url:only-elsewhere');
  return facts;
}

/** The sender's registrable domain (`mail.contoso.co.uk` → `contoso.co.uk`). */
export function registrableDomain(host: string): string | undefined {
  return parse(host).domain ?? undefined;
}
