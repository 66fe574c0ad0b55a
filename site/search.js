// The site's search box: a small client-side index (search-index.js, written by smolbook.site), loaded
// on first use. A script, not a fetch, because the site opens from disk (file://), where pages may not
// fetch files. Every word typed must appear in a page; title matches rank first.
(() => {
  const input = document.getElementById('search');
  if (!input) return;
  const results = input.parentElement.querySelector('.search-results');
  let loading = null;

  const load = () => {
    if (!loading) {
      loading = new Promise((resolve, reject) => {
        const script = document.createElement('script');
        script.src = '_static/search-index.js';
        script.onload = () => resolve(window.SMOLBOOK_SEARCH ?? []);
        script.onerror = reject;
        document.head.appendChild(script);
      });
    }
    return loading;
  };

  const snippet = (text, word) => {
    const at = text.toLowerCase().indexOf(word);
    if (at < 0) return text.slice(0, 140);
    const start = Math.max(0, at - 60);
    return (start > 0 ? '… ' : '') + text.slice(start, at + 100) + ' …';
  };

  const show = (docs, query) => {
    const words = query.toLowerCase().split(/\s+/).filter(Boolean);
    results.replaceChildren();
    if (!words.length) {
      results.hidden = true;
      return;
    }
    const hits = docs
      .map((d) => {
        const title = d.t.toLowerCase();
        const text = d.x.toLowerCase();
        if (!words.every((w) => title.includes(w) || text.includes(w))) return null;
        return { d, score: words.filter((w) => title.includes(w)).length * 100 - d.t.length / 100 };
      })
      .filter(Boolean)
      .sort((a, b) => b.score - a.score)
      .slice(0, 12);
    for (const { d } of hits) {
      const li = document.createElement('li');
      const a = document.createElement('a');
      a.href = d.u;
      a.textContent = d.t;
      const p = document.createElement('span');
      p.textContent = snippet(d.x, words[0]);
      li.append(a, p);
      results.append(li);
    }
    if (!hits.length) {
      const li = document.createElement('li');
      li.textContent = `Nothing found for “${query}”.`;
      results.append(li);
    }
    results.hidden = false;
  };

  input.addEventListener('focus', load, { once: true });
  input.addEventListener('input', () => load().then((docs) => show(docs, input.value)));
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') {
      input.value = '';
      results.hidden = true;
    }
    if (e.key === 'Enter') results.querySelector('a')?.click();
  });
  document.addEventListener('click', (e) => {
    if (!input.parentElement.contains(e.target)) results.hidden = true;
  });
})();
