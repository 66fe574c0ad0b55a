// Opens the built site the way a reader does, in headless Chromium (Debian's chromium, driven by
// playwright-core: no browser download), and prints what it saw as one JSON line.
//
//   node site/check.mjs <chromium> <spec.json>
//
// spec.json: {"index": url, "chapter": url, "pages": [url, ...], "shots": [index.png, chapter.png],
//             "query": "a word to search for"}
// Every page in `pages` (the landing page and every chapter) is checked for what a reader must never
// see (object reprs, library warnings, progress bars frozen at 0%), images that do not load, internal
// links (and #anchors) that lead nowhere, and console errors; each finding is one line in `problems`.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const [executablePath, specFile] = process.argv.slice(2);
const spec = JSON.parse(fs.readFileSync(specFile, 'utf8'));

// What a reader must not see on a page (its whole text, folded parts included).
const FORBIDDEN = [
  ['an IPython display object instead of its content', /IPython\.core\.display/],
  ['an object repr', /<[\w.]+ object at 0x[0-9a-f]+>/],
  ["accelerate's shared-tensor warning", /Removed shared tensor/],
  ['a Python warning', /\b(FutureWarning|DeprecationWarning|UserWarning):/],
  ['a progress bar frozen at 0%', /(^|[^\d.])0%\|/m],
  // The reference material lives beside the repository (../shared), never in it: a page must not send readers there.
  ['a pointer to a file outside the repository', /\.\.\/shared\/|\b[A-Z][A-Z_]+_PLAN(\.md)?\b/],
];

const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'smolbook-chromium-'));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath,
  headless: true,
  viewport: { width: 1280, height: 900 },
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
// The site must work from disk alone: any request that is not file:// fails the check.
const offsite = [];
context.on('request', (req) => {
  if (!req.url().startsWith('file://') && !req.url().startsWith('data:')) offsite.push(req.url());
});
await context.route(/^(?!file:|data:)/, (route) => route.abort());

// The ids a page defines, read from its file (for links to #anchors on other pages).
const idsOf = new Map();
function pageIds(file) {
  if (!idsOf.has(file)) {
    const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
    idsOf.set(file, new Set([...text.matchAll(/\sid="([^"]+)"/g)].map((m) => m[1])));
  }
  return idsOf.get(file);
}

function brokenLinks(hrefs) {
  const broken = [];
  for (const href of new Set(hrefs)) {
    if (!href.startsWith('file://')) continue; // outbound links to the sources; nothing the site holds
    const url = new URL(href);
    const file = fileURLToPath(`file://${url.pathname}`);
    if (!fs.existsSync(file)) broken.push(href);
    else if (url.hash && file.endsWith('.html') && !pageIds(file).has(decodeURIComponent(url.hash.slice(1)))) broken.push(href);
  }
  return broken;
}

async function visit(page, url) {
  const errors = [];
  const onConsole = (msg) => { if (msg.type() === 'error') errors.push(msg.text()); };
  const onError = (err) => errors.push(String(err));
  page.on('console', onConsole);
  page.on('pageerror', onError);
  await page.goto(url, { waitUntil: 'load' });
  await page.waitForFunction(() => [...document.images].every((img) => img.complete), null, { timeout: 10000 }).catch(() => {});
  const seen = await page.evaluate(() => ({
    title: document.title,
    heading: document.querySelector('h1.page-title')?.innerText ?? '',
    text: document.querySelector('main')?.textContent ?? '',
    images: [...document.images].map((img) => ({ src: img.getAttribute('src'), complete: img.complete, naturalWidth: img.naturalWidth })),
    links: [...document.querySelectorAll('a[href]')].map((a) => a.href),
  }));
  page.off('console', onConsole);
  page.off('pageerror', onError);
  const problems = [];
  for (const [what, pattern] of FORBIDDEN) {
    const m = seen.text.match(pattern);
    if (m) problems.push(`${what}: …${seen.text.slice(Math.max(0, m.index - 60), m.index + 60).replace(/\s+/g, ' ')}…`);
  }
  for (const img of seen.images) if (!img.naturalWidth) problems.push(`image did not load: ${img.src}`);
  for (const href of brokenLinks(seen.links)) problems.push(`link leads nowhere: ${href}`);
  for (const e of errors) problems.push(`console error: ${e}`);
  return { url, title: seen.title, heading: seen.heading, images: seen.images, links: seen.links.length, problems };
}

try {
  const page = context.pages()[0] ?? (await context.newPage());
  const pages = [];
  for (const url of spec.pages) pages.push(await visit(page, url));

  await page.goto(spec.index, { waitUntil: 'load' });
  const index = {
    url: spec.index,
    title: await page.title(),
    heading: await page.locator('h1.page-title').innerText(),
    // Sidebar entries in order: page links and group headings (a folded group's links count too).
    nav: await page.locator('nav.toc a, nav.toc summary').evaluateAll((els) =>
      els.map((el) => (el.tagName === 'SUMMARY' ? el.firstChild.textContent : el.textContent).trim())),
    links: await page.locator('nav.toc a').evaluateAll((as) => as.map((a) => a.getAttribute('href'))),
    badges: await page.locator('main .badge').count(),
    thumbnails: await page.locator('main .thumb img').count(),
  };
  await page.screenshot({ path: spec.shots[0], fullPage: true });
  // The search box: typing a word lists the pages that hold it.
  await page.fill('#search', spec.query);
  const search = { query: spec.query, hits: [] };
  await page.locator('.search-results li a').first().waitFor({ timeout: 5000 }).catch(() => {});
  search.hits = await page.locator('.search-results li a').allInnerTexts();

  await page.goto(spec.chapter, { waitUntil: 'load' });
  const chapter = {
    url: spec.chapter,
    title: await page.title(),
    heading: await page.locator('h1.page-title').innerText(),
    current: await page.locator('nav.toc a[aria-current="page"]').allInnerTexts(),
    images: await page.locator('main img').evaluateAll((imgs) =>
      imgs.map((img) => ({ src: img.getAttribute('src'), complete: img.complete, naturalWidth: img.naturalWidth }))),
    outputs: await page.locator('main .cell-outputs > *').count(),
    captions: await page.locator('main figure.output-figure figcaption').allInnerTexts(),
    verdicts: await page.locator('main aside.chapter-verdicts .badge').count(),
    prev: await page.locator('footer.pager a.prev').count(),
    next: await page.locator('footer.pager a.next').count(),
  };
  await page.screenshot({ path: spec.shots[1] });
  console.log(JSON.stringify({ index, chapter, pages, search, offsite, screenshots: spec.shots }));
} finally {
  await context.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
