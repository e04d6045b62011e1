#!/usr/bin/env bash
# Also correct, without Python: iconv re-encodes the GBK export, sed/awk pull the pairs out of the
# three files (one line each, fields split by the ASCII unit separator), jq normalises them,
# drops the repeats and writes JSON Lines with every non-ASCII character escaped (\uXXXX), keys in
# another order, records in reverse sorted order.
set -euo pipefail
RAW=${RAW:-/opt/exam/dataset/raw}
OUT=${OUT:-/workspace/dataset}
mkdir -p "$OUT"
US=$'\037'
{
  # Markdown: "### Q：…" then "A：…"; bold and inline-code marks dropped.
  awk -v us="$US" '
    /^[[:space:]]*#+[[:space:]]*Q[[:space:]]*(:|：)/ { q = $0; sub(/^[[:space:]]*#+[[:space:]]*Q[[:space:]]*(:|：)/, "", q); next }
    q != "" && /^[[:space:]]*A[[:space:]]*(:|：)/ {
      a = $0; sub(/^[[:space:]]*A[[:space:]]*(:|：)/, "", a)
      gsub(/\*\*|`/, "", q); gsub(/\*\*|`/, "", a)
      print "md" us q us "" us a; q = ""
    }' "$RAW/faq.md"
  # HTML: only the <dl class="faq"> block; tags stripped here, entities decoded by jq below.
  sed -n '/<dl class="faq">/,/<\/dl>/p' "$RAW/help.html" | awk -v us="$US" '
    /<dt[ >]/ { q = $0; gsub(/<[^>]*>/, "", q); next }
    /<dd[ >]/ && q != "" { a = $0; gsub(/<[^>]*>/, "", a); print "html" us q us "" us a; q = "" }'
  # Tickets: GBK with CRLF → UTF-8 with LF; 问 / 补充 / 答 per ticket.
  iconv -f GB18030 -t UTF-8 "$RAW/tickets.txt" | tr -d '\r' | awk -v us="$US" '
    /^问(:|：)/   { q = $0; sub(/^问(:|：)/, "", q); x = ""; next }
    /^补充(:|：)/ { x = $0; sub(/^补充(:|：)/, "", x); next }
    /^答(:|：)/ && q != "" { a = $0; sub(/^答(:|：)/, "", a); print "txt" us q us x us a; q = "" }'
} | jq -R -n -c -a '
  def halfwidth: explode | map(if (. >= 65296 and . <= 65305) or (. >= 65313 and . <= 65338) or (. >= 65345 and . <= 65370) then . - 65248 else . end) | implode;
  def space: gsub("[\\s\u00a0\u3000]+"; " ") | sub("^ "; "") | sub(" $"; "");
  def entities: gsub("&nbsp;"; " ") | gsub("&lt;"; "<") | gsub("&gt;"; ">") | gsub("&quot;"; "\"") | gsub("&amp;"; "&");
  def norm($src): (if $src == "html" then entities else . end) | halfwidth | space;
  [inputs | split("\u001f") | .[0] as $src
    | {output: (.[3] | norm($src)), input: (.[2] | norm($src)), instruction: (.[1] | norm($src) | sub("\\?$"; "？"))}]
  | unique | reverse | .[]' > "$OUT/train.jsonl"
wc -l "$OUT/train.jsonl"
