"""The site's search: an index of every page's title, address and text, shipped as a script (pages opened from
disk may not fetch files) and read by ``site/search.js``."""
from __future__ import annotations

import html
import json
import re

SEARCH_TEXT_CHARS = 20000
TAGS = re.compile(r"<(script|style)\b.*?</\1>|<[^>]+>", re.S)


def search_index(pages: list[tuple[str, str, str]]) -> str:
    """A script defining the search index (title, address, text of every page): a script rather than JSON
    because pages opened from disk may not fetch files."""
    docs = [{"t": title, "u": href, "x": " ".join(html.unescape(TAGS.sub(" ", body)).split())[:SEARCH_TEXT_CHARS]}
            for title, href, body in pages]
    return "window.SMOLBOOK_SEARCH = " + json.dumps(docs, ensure_ascii=False) + ";\n"
