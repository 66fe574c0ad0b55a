// Opens the built site the way a reader does, in headless Chromium (Debian's chromium, driven by
// playwright-core: no browser download), and prints what it saw as one JSON line.
//
//   node site/check.mjs <chromium> <index url> <chapter url> <index.png> <chapter.png>
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const [executablePath, indexUrl, chapterUrl, indexShot, chapterShot] = process.argv.slice(2);
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

try {
  const page = context.pages()[0] ?? (await context.newPage());
  await page.goto(indexUrl, { waitUntil: 'load' });
  const index = {
    url: indexUrl,
    title: await page.title(),
    heading: await page.locator('h1.page-title').innerText(),
    // Sidebar entries in order: page links and group headings (a folded group's links count too).
    nav: await page.locator('nav.toc a, nav.toc summary').evaluateAll((els) =>
      els.map((el) => (el.tagName === 'SUMMARY' ? el.firstChild.textContent : el.textContent).trim())),
    links: await page.locator('nav.toc a').evaluateAll((as) => as.map((a) => a.getAttribute('href'))),
  };
  await page.screenshot({ path: indexShot });

  await page.goto(chapterUrl, { waitUntil: 'load' });
  const images = await page.locator('main img').evaluateAll((imgs) =>
    imgs.map((img) => ({ src: img.getAttribute('src'), complete: img.complete, naturalWidth: img.naturalWidth })));
  const figure = page.locator('main img.output-image').first();
  if ((await figure.count()) > 0) await figure.scrollIntoViewIfNeeded();
  const chapter = {
    url: chapterUrl,
    title: await page.title(),
    heading: await page.locator('h1.page-title').innerText(),
    current: await page.locator('nav.toc a[aria-current="page"]').allInnerTexts(),
    images,
    outputs: await page.locator('main .cell-outputs > *').count(),
  };
  await page.screenshot({ path: chapterShot });
  console.log(JSON.stringify({ index, chapter, offsite, screenshots: [indexShot, chapterShot] }));
} finally {
  await context.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
