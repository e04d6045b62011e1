import { Marked, type Tokens } from 'marked';
import { escapeHtml } from '../core/html.js';

/** Links only to the web or relative places: no javascript:, data:, vbscript: and the like. */
function safeUrl(href: string): string | null {
  const h = href.trim();
  if (/^(https?:|mailto:|#|\/(?!\/)|\.{0,2}\/)/i.test(h)) return h;
  if (!/^[a-z][a-z0-9+.-]*:/i.test(h) && !h.startsWith('//')) return h; // relative path
  return null;
}

/**
 * Task instructions → HTML. The content is ours, but the page runs next to a live terminal, so raw
 * HTML in the markdown is shown as text and URLs are limited to harmless schemes.
 */
const md = new Marked({
  gfm: true,
  renderer: {
    html(token: Tokens.HTML | Tokens.Tag): string {
      return escapeHtml(token.text);
    },
    link(this: { parser: { parseInline(t: Tokens.Generic[]): string } }, token: Tokens.Link): string {
      const text = this.parser.parseInline(token.tokens);
      const url = safeUrl(token.href);
      if (url === null) return text;
      const title = token.title ? ` title="${escapeHtml(token.title)}"` : '';
      return `<a href="${escapeHtml(url)}"${title} rel="noopener noreferrer">${text}</a>`;
    },
    image(token: Tokens.Image): string {
      const url = safeUrl(token.href);
      if (url === null || /^https?:|^\/\//i.test(url)) return escapeHtml(token.text); // offline room: no remote images
      return `<img src="${escapeHtml(url)}" alt="${escapeHtml(token.text)}">`;
    },
  },
});

export function renderMarkdown(source: string): string {
  return md.parse(source, { async: false });
}
