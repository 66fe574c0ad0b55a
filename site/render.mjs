// Renders the page ASTs that `myst build --site` wrote (_build/site/content/*.json) to HTML
// fragments with MyST's own renderer, myst-to-html. smolbook.site wraps them in pages.
//
//   node site/render.mjs <build/site dir> <out.json> [fold code cells over N lines]
//
// out.json: {"pages": {slug: {"title", "html", "download"}}}. Image and download paths point
// into "public/", where smolbook.site copies _build/site/public.
//
// myst-to-html leaves Jupyter `output` nodes empty (its web themes render them in React), so the
// handlers below emit each output as the notebook shows it: PNG/JPEG/SVG/GIF as an <img> (a
// <figure> with its caption where smolbook.site captioned it), HTML as is, Markdown rendered (a
// table stays a table, not `<IPython.core.display.Markdown object>`), then plain text. Progress
// bars show their final frame or nothing: a widget has no state in a saved notebook (its text is
// the bar's first frame) and is left out. stderr is shown apart, folded. KaTeX markup comes ready
// in math nodes (`node.html`).
import fs from 'node:fs';
import path from 'node:path';
import { mystToHtml } from 'myst-to-html';
import { all } from 'mdast-util-to-hast';
import MarkdownIt from 'markdown-it';

const [buildDir, outFile, foldArg] = process.argv.slice(2);
const foldLines = Number(foldArg ?? 30);
if (!buildDir || !outFile) {
  console.error('usage: node site/render.mjs <_build/site> <out.json> [fold code over N lines]');
  process.exit(2);
}
const publicDir = path.join(buildDir, 'public');
const contentDir = path.join(buildDir, 'content');

const IMAGE_TYPES = ['image/png', 'image/jpeg', 'image/svg+xml', 'image/gif'];
const WIDGET = 'application/vnd.jupyter.widget-view+json';
// Jupyter renders text/markdown outputs as Markdown with HTML allowed; so does the site.
const markdown = new MarkdownIt({ html: true });
// Plain hast nodes; `raw` passes HTML through (allowDangerousHtml below).
const u = (type, value) => ({ type, value });
const ANSI = /\u001b\[[0-9;]*[A-Za-z]/g;

// myst writes site-absolute paths ("/abc.png"); pages open from disk, so make them relative.
const publicUrl = (p) => (p && p.startsWith('/') ? `public${p}` : p);

function readPublic(p) {
  return fs.readFileSync(path.join(publicDir, p.replace(/^\//, '')), 'utf8');
}

// Terminal text as a terminal shows it: colours dropped, and a carriage return (progress
// bars) overwrites its line instead of stacking every update.
function terminalText(text) {
  return String(text ?? '')
    .replace(ANSI, '')
    .split('\n')
    .map((line) => line.split('\r').filter((s) => s !== '').pop() ?? '')
    .join('\n');
}

// Long outputs are moved by myst into public/ (`path`) and truncated in the AST.
function fullText(value, item) {
  if (item?.path && !IMAGE_TYPES.includes(item.content_type)) return readPublic(item.path);
  if (Array.isArray(value)) return value.join('');
  return value ?? '';
}

const el = (tagName, properties, children) => ({ type: 'element', tagName, properties, children });

function image(h, node, data) {
  for (const type of IMAGE_TYPES) {
    const item = data[type];
    if (!item) continue;
    const alt = node.caption ?? '';
    if (item.path) return h(node, 'img', { src: publicUrl(item.path), alt, className: ['output-image'] });
    if (type === 'image/svg+xml' && item.content) return u('raw', item.content);
    if (item.content) return h(node, 'img', { src: `data:${type};base64,${item.content}`, alt, className: ['output-image'] });
  }
  return null;
}

function mimeBundle(h, node, data) {
  const img = image(h, node, data);
  if (img) {
    if (!node.caption) return img;
    return h(node, 'figure', { className: ['output-figure'] }, [img, el('figcaption', {}, [u('text', node.caption)])]);
  }
  const html = data['text/html'];
  if (html) return h(node, 'div', { className: ['output-html'] }, [u('raw', fullText(html.content, html))]);
  const md = data['text/markdown'];
  if (md) return h(node, 'div', { className: ['output-markdown'] }, [u('raw', markdown.render(fullText(md.content, md)))]);
  const text = data['text/plain'];
  if (text) return h(node, 'pre', { className: ['output-text'] }, [u('text', terminalText(fullText(text.content, text)))]);
  return null;
}

function output(h, node) {
  const d = node.jupyter_data ?? {};
  switch (d.output_type) {
    case 'stream': {
      const text = terminalText(d.path ? readPublic(d.path) : fullText(d.text)).replace(/\s+$/, '');
      if (!text) return null; // e.g. a progress bar that cleared itself
      const pre = h(node, 'pre', { className: ['output-stream', d.name] }, [u('text', text)]);
      if (d.name !== 'stderr') return pre;
      const lines = text.split('\n').length;
      return el('details', { className: ['output-stderr'] }, [
        el('summary', {}, [u('text', `stderr · ${lines} line${lines === 1 ? '' : 's'}`)]), pre]);
    }
    case 'error': {
      const tb = Array.isArray(d.traceback) ? d.traceback.join('\n') : d.traceback;
      const text = d.path ? readPublic(d.path) : tb;
      return h(node, 'pre', { className: ['output-error'] }, [u('text', terminalText(text || `${d.ename}: ${d.evalue}`))]);
    }
    case 'display_data':
    case 'execute_result':
      if (d.data?.[WIDGET]) return null; // a widget (a progress bar): no state in a saved notebook
      return mimeBundle(h, node, d.data ?? {}) ?? h(node, 'div', { className: ['output-empty'] });
    default:
      return h(node, 'div', { className: ['output-empty'] });
  }
}

// Jupyter shows consecutive writes to one stream as one block (so "\r" progress bars collapse to their
// last state); the saved notebook keeps them apart.
function mergeStreams(children) {
  const merged = [];
  for (const child of children) {
    const d = child.jupyter_data ?? {};
    const last = merged.at(-1)?.jupyter_data;
    if (d.output_type === 'stream' && !d.path && last?.output_type === 'stream' && !last.path && last.name === d.name) {
      last.text = fullText(last.text) + fullText(d.text);
    } else {
      merged.push(d.output_type === 'stream' ? { ...child, jupyter_data: { ...d } } : child);
    }
  }
  return merged;
}

const isWidget = (c) => Boolean(c.jupyter_data?.data?.[WIDGET]);
const outputs = (h, node) => h(node, 'div', { className: ['cell-outputs'] },
  mergeStreams(node.children.filter((c) => !isWidget(c))).map((c) => output(h, c)).filter(Boolean));
// A notebook cell: its kind and tags as classes, so code and prose cells can be styled apart; its anchor
// (smolbook.site sets `cell-N`, the report card links to it); long code folded behind its first line.
function block(h, node) {
  const children = all(h, node);
  const code = node.children?.find((c) => c.type === 'code');
  const lines = code ? code.value.split('\n').length : 0;
  const pre = children.findIndex((c) => c.type === 'element' && c.tagName === 'pre');
  if (lines > foldLines && pre >= 0) {
    const first = code.value.split('\n').find((l) => l.trim()) ?? '';
    children[pre] = el('details', { className: ['code-fold'] }, [
      el('summary', {}, [el('code', {}, [u('text', first)]), u('text', ` … (${lines} lines of code)`)]), children[pre]]);
  }
  const id = node.data?.smolbook?.anchor;
  return h(node, 'div', { id, className: ['block', node.kind, ...(node.data?.tags ?? [])].filter(Boolean) }, children);
}
const math = (h, node) => (node.html ? u('raw', `<div class="math-display">${node.html}</div>`) : h(node, 'pre', { className: ['math-display'] }, [u('text', node.value)]));
const inlineMath = (h, node) => (node.html ? u('raw', node.html) : h(node, 'code', {}, [u('text', node.value)]));

// Cells tagged remove-input/remove-output/remove-cell are marked by myst, not dropped.
function dropRemoved(node) {
  if (!node.children) return node;
  node.children = node.children.filter((c) => c.visibility !== 'remove').map(dropRemoved);
  return node;
}

// myst links pages as "/slug#target"; the pages are files side by side ("slug.html", "index.html").
function pageUrl(url, target) {
  const [p, hash] = url.split('#');
  const slug = p.replace(/^\//, '');
  const anchor = target ?? hash;
  return `${slug ? `${slug}.html` : 'index.html'}${anchor ? `#${anchor}` : ''}`;
}

// Relative image and page links; code without the trailing blank lines that cells often end with.
function tidy(node) {
  if (node.type === 'image' && node.url) node.url = publicUrl(node.url);
  if (node.type === 'link' && node.internal && node.url?.startsWith('/')) node.url = pageUrl(node.url);
  if (node.type === 'crossReference' && node.remote && node.url?.startsWith('/')) {
    // A reference into another page: myst-to-html only resolves references within a page.
    Object.assign(node, { type: 'link', url: pageUrl(node.url, node.identifier) });
  }
  if (node.type === 'code' && typeof node.value === 'string') node.value = node.value.replace(/\s+$/, '');
  const captions = node.type === 'block' ? node.data?.smolbook?.captions : null;
  if (captions) {
    // smolbook.site numbered and captioned the cell's figures, in the order of its image outputs
    const images = [];
    const collect = (n) => (n.type === 'output' ? images.push(n) : (n.children ?? []).forEach(collect));
    collect(node);
    images.filter((o) => IMAGE_TYPES.some((t) => o.jupyter_data?.data?.[t])).forEach((o, i) => { o.caption = captions[i]; });
  }
  (node.children ?? []).forEach(tidy);
}

const pages = {};
for (const name of fs.readdirSync(contentDir).filter((f) => f.endsWith('.json')).sort()) {
  const page = JSON.parse(fs.readFileSync(path.join(contentDir, name), 'utf8'));
  const tree = dropRemoved(page.mdast);
  tidy(tree);
  const html = mystToHtml(tree, {
    hast: { allowDangerousHtml: true, handlers: { block, output, outputs, math, inlineMath } },
    stringifyHtml: { allowDangerousHtml: true },
  });
  const download = page.frontmatter?.exports?.find((e) => e.format === 'ipynb');
  pages[page.slug] = {
    title: page.frontmatter?.title ?? page.slug,
    short_title: page.frontmatter?.short_title ?? null,
    kind: page.kind,
    html,
    download: download ? { url: publicUrl(download.url), filename: download.filename } : null,
  };
}
fs.writeFileSync(outFile, JSON.stringify({ pages }));
