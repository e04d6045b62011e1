#!/usr/bin/env bash
# Shortcut: the Markdown and HTML pairs done right, but the ticket export's pairs written in the
# GBK bytes they came in (never re-encoded): the file mixes UTF-8 and GBK lines.
# The pairs are read as the reference solution reads them; only what is written differs.
set -euo pipefail
RAW=${RAW:-/opt/exam/dataset/raw}
OUT=${OUT:-/workspace/dataset}
mkdir -p "$OUT"
python3 - "$RAW" "$OUT/train.jsonl" <<'PY'
import html.parser, json, re, sys
raw, out = sys.argv[1], sys.argv[2]

FULLWIDTH = {c: chr(ord(c) - 0xFEE0) for c in map(chr, range(0xFF10, 0xFF5B)) if c.isalnum()}

def norm(s, question=False):
    s = ''.join(FULLWIDTH.get(c, c) for c in s)
    s = re.sub(r'[\s\u00a0\u3000]+', ' ', s).strip()
    if question and s.endswith('?'):
        s = s[:-1] + '？'
    return s

def unmark(s):
    return s.replace('**', '').replace('`', '')

pairs = []
# Markdown: "### Q：..." headings, each answered by the next "A：..." line.
q = None
for line in open(f'{raw}/faq.md', encoding='utf-8'):
    m = re.match(r'\s*#{1,6}\s*Q\s*[:：](.*)', line)
    if m:
        q = m.group(1)
        continue
    m = re.match(r'\s*A\s*[:：](.*)', line)
    if m and q is not None:
        pairs.append((norm(unmark(q), True), '', norm(unmark(m.group(1)))))
        q = None

# HTML: the <dt>/<dd> pairs of <dl class="faq"> (the navigation and the hot-question list are not pairs).
class Faq(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.depth, self.cur, self.text, self.q = 0, None, '', None
    def handle_starttag(self, tag, attrs):
        if tag == 'dl' and 'faq' in (dict(attrs).get('class') or '').split():
            self.depth += 1
        elif self.depth and tag in ('dt', 'dd'):
            self.cur, self.text = tag, ''
    def handle_endtag(self, tag):
        if tag == 'dl' and self.depth:
            self.depth -= 1
        elif self.depth and tag == self.cur:
            if tag == 'dt':
                self.q = self.text
            elif self.q is not None:
                pairs.append((norm(self.q, True), '', norm(self.text)))
                self.q = None
            self.cur = None
    def handle_data(self, data):
        if self.cur:
            self.text += data
p = Faq()
p.feed(open(f'{raw}/help.html', encoding='utf-8').read())
p.close()

TICKETS_FROM = len(pairs)
# Tickets (GBK): blocks of 问/补充/答 lines between the separators.
q = extra = None
for line in open(f'{raw}/tickets.txt', encoding='gb18030').read().splitlines():
    line = line.strip()
    for key, val in (('问', 'q'), ('补充', 'x'), ('答', 'a')):
        if re.match(key + r'\s*[:：]', line):
            text = re.split(r'[:：]', line, maxsplit=1)[1]
            if val == 'q':
                q, extra = text, ''
            elif val == 'x':
                extra = text
            elif q is not None:
                pairs.append((norm(q, True), norm(extra), norm(text)))
                q = None

seen, lines = set(), []
for i, rec in enumerate(pairs):
    if rec in seen:
        continue
    seen.add(rec)
    line = json.dumps(dict(zip(('instruction', 'input', 'output'), rec)), ensure_ascii=False) + '\n'
    # The tickets' text goes out in the bytes it came in.
    lines.append(line.encode('gbk' if i >= TICKETS_FROM else 'utf-8'))
open(out, 'wb').write(b''.join(lines))
PY
# Exit 0 only once the shortcut is really in the file.
python3 - "$OUT/train.jsonl" <<'PY'
import sys
data = open(sys.argv[1], 'rb').read()
try:
    data.decode('utf-8')
    sys.exit('the file is valid UTF-8: no GBK bytes in it')
except UnicodeDecodeError:
    pass
assert '日志文件保存在哪里'.encode('gbk') in data, 'no GBK-encoded ticket in the file'
PY
