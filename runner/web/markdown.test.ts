import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { renderMarkdown } from './markdown.js';

describe('renderMarkdown', () => {
  it('renders the real task instructions (headings, tables, code, Chinese)', () => {
    const src = readFileSync(new URL('../../tasks/junior/serve/instructions.zh.md', import.meta.url), 'utf8');
    const html = renderMarkdown(src);
    expect(html).toMatch(/<h1[^>]*>使用 llama-server 在本地提供量化模型服务<\/h1>/);
    expect(html).toContain('<table>');
    expect(html).toContain('<code>llama-server</code>');
  });

  it('shows raw HTML as text', () => {
    const html = renderMarkdown('hi <script>alert(1)</script>\n\n<img src=x onerror=alert(1)>');
    expect(html).not.toMatch(/<script|<img/i);
    expect(html).toContain('&lt;script&gt;');
  });

  it('drops dangerous link schemes but keeps web links', () => {
    expect(renderMarkdown('[x](javascript:alert(1))')).not.toContain('href');
    expect(renderMarkdown('[x](JaVaScRiPt:alert(1))')).not.toContain('href');
    expect(renderMarkdown('[x](data:text/html,hi)')).not.toContain('href');
    expect(renderMarkdown('[doc](https://example.org/a?b=1&c=2)')).toContain('href="https://example.org/a?b=1&amp;c=2"');
    expect(renderMarkdown('[rel](notes.md)')).toContain('href="notes.md"');
  });

  it('escapes quotes in titles and alt text', () => {
    const html = renderMarkdown('[x](https://a.example "a\\" onmouseover=\\"1") ![a"b](pic.png)');
    expect(html).not.toMatch(/onmouseover="1"/);
    expect(html).toContain('alt="a&quot;b"');
  });

  it('renders no remote images (the exam room may be offline)', () => {
    expect(renderMarkdown('![diagram](https://example.org/x.png)')).not.toContain('<img');
  });
});
