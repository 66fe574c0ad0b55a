// Opens the built site the way a reader does, in headless Chromium (Debian's chromium, driven by
// playwright-core: no browser download), and prints what it saw as one JSON line.
//
//   node site/check.mjs <chromium> <spec.json>
//
// spec.json: {"index": url, "chapter": url, "pages": [url, ...], "chapters": [url, ...],
//             "shots": [{"url": url, "path": png}, ...], "query": "a word to search for"}
// Every page in `pages` (the landing page and every chapter) is checked for what a reader must never
// see (object reprs, library warnings, progress bars frozen at 0%, a trainer's log tables or log lines),
// code wider than the page, images that do not load, internal links (and #anchors) that lead nowhere,
// and console errors; every page in `chapters` must open with its verdict summary, and the landing page
// must show the verdict chart. Each finding is one line in `problems`. `shots` are saved as screenshots of
// the top of each page: what a reader sees before scrolling.
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
  // transformers' Trainer prints each log dict when its own bar is off (PrinterCallback)
  ["a line from a trainer's progress callback", /\{'(loss|train_loss|train_runtime|eval_loss|grad_norm|learning_rate)': /],
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
  const seen = await page.evaluate(() => {
    // What a reader reads without unfolding anything (the site keeps it no longer than it must be).
    const textLength = (document.querySelector('main')?.innerText ?? '').length;
    // Folded code counts too: open every fold before measuring what is wider than the page.
    document.querySelectorAll('main details').forEach((d) => { d.open = true; });
    const article = document.querySelector('main article');
    const wide = [...document.querySelectorAll('main pre')].filter((p) => p.scrollWidth > p.clientWidth + 1
      || (article && p.getBoundingClientRect().right > article.getBoundingClientRect().right + 1));
    // transformers' notebook callback draws a table of "Step | Training Loss" per run
    const trainerTables = [...document.querySelectorAll('main table')].filter((t) => {
      const heads = [...t.querySelectorAll('th')].map((th) => th.textContent.trim());
      return heads.includes('Step') && heads.some((h) => /^(Training|Validation) Loss$/.test(h));
    });
    const first = article?.querySelector(':scope > aside, :scope > .block, :scope > p:not(.download), :scope > section');
    return {
    title: document.title,
    wideCode: wide.map((p) => p.textContent.split('\n').find((l) => l.trim()) ?? ''),
    trainerTables: trainerTables.length,
    opensWithSummary: Boolean(first && first.matches('aside.chapter-verdicts')),
    verdictChart: document.querySelectorAll('main img.verdict-chart').length,
    textLength,
    unfoldedLength: (document.querySelector('main')?.innerText ?? '').length,
    heading: document.querySelector('h1.page-title')?.innerText ?? '',
    text: document.querySelector('main')?.textContent ?? '',
    images: [...document.images].map((img) => ({ src: img.getAttribute('src'), complete: img.complete, naturalWidth: img.naturalWidth })),
    links: [...document.querySelectorAll('a[href]')].map((a) => a.href),
  }; });
  page.off('console', onConsole);
  page.off('pageerror', onError);
  const problems = [];
  for (const [what, pattern] of FORBIDDEN) {
    const m = seen.text.match(pattern);
    if (m) problems.push(`${what}: …${seen.text.slice(Math.max(0, m.index - 60), m.index + 60).replace(/\s+/g, ' ')}…`);
  }
  for (const line of seen.wideCode) problems.push(`code wider than the page: ${line.slice(0, 80)}`);
  if (seen.trainerTables) problems.push(`${seen.trainerTables} table(s) from a trainer's progress callback`);
  if (spec.chapters.includes(url) && !seen.opensWithSummary) problems.push('the chapter does not open with its verdict summary');
  if (url === spec.index && !seen.verdictChart) problems.push('the landing page has no verdict chart');
  for (const img of seen.images) if (!img.naturalWidth) problems.push(`image did not load: ${img.src}`);
  for (const href of brokenLinks(seen.links)) problems.push(`link leads nowhere: ${href}`);
  for (const e of errors) problems.push(`console error: ${e}`);
  return { url, title: seen.title, heading: seen.heading, images: seen.images, links: seen.links.length,
    textLength: seen.textLength, unfoldedLength: seen.unfoldedLength, problems };
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
  for (const shot of spec.shots) {
    await page.goto(shot.url, { waitUntil: 'load' });
    await page.waitForFunction(() => [...document.images].every((img) => img.complete), null, { timeout: 10000 }).catch(() => {});
    await page.screenshot({ path: shot.path });
  }
  console.log(JSON.stringify({ index, chapter, pages, search, offsite, screenshots: spec.shots.map((s) => s.path) }));
} finally {
  await context.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
