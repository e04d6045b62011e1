import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DeploylabError } from '../core/errors.js';

/** One apt source: a repository URI with the suites and components taken from it. */
export interface AptSource {
  type: 'deb' | 'deb-src';
  uri: string;
  suites: string[];
  components: string[];
}

/** One-line format (`sources.list`): `deb [opts] URI SUITE COMPONENT...`. */
export function parseOneLine(text: string): AptSource[] {
  const out: AptSource[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim();
    if (!line) continue;
    // Options in brackets may contain spaces: drop them as a whole.
    const words = line.replace(/\[[^\]]*\]/, ' ').split(/\s+/).filter(Boolean);
    const [type, uri, suite, ...components] = words;
    if ((type !== 'deb' && type !== 'deb-src') || !uri || !suite) continue;
    out.push({ type, uri, suites: [suite], components });
  }
  return out;
}

/** deb822 format (`*.sources`): stanzas separated by blank lines, `Key: value` fields. */
export function parseDeb822(text: string): AptSource[] {
  const out: AptSource[] = [];
  const stanzas = text.split(/\n\s*\n/);
  for (const stanza of stanzas) {
    const fields = new Map<string, string>();
    let last: string | undefined;
    for (const raw of stanza.split('\n')) {
      if (raw.startsWith('#')) continue;
      if (/^\s/.test(raw) && last) {
        // Continuation line (e.g. an inline Signed-By key block).
        fields.set(last, `${fields.get(last) ?? ''} ${raw.trim()}`);
        continue;
      }
      const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(raw);
      if (!m) continue;
      last = m[1]!.toLowerCase();
      fields.set(last, m[2]!.trim());
    }
    if (fields.get('enabled')?.toLowerCase() === 'no') continue;
    const words = (k: string): string[] => (fields.get(k) ?? '').split(/\s+/).filter(Boolean);
    for (const type of words('types')) {
      if (type !== 'deb' && type !== 'deb-src') continue;
      for (const uri of words('uris')) {
        out.push({ type, uri, suites: words('suites'), components: words('components') });
      }
    }
  }
  return out.filter((s) => s.suites.length > 0);
}

/** The apt sources of this host: /etc/apt/sources.list and /etc/apt/sources.list.d/*.{list,sources}. */
export function readHostAptSources(root = '/etc/apt'): AptSource[] {
  const out: AptSource[] = [];
  try {
    out.push(...parseOneLine(readFileSync(join(root, 'sources.list'), 'utf8')));
  } catch {
    // absent on deb822-only hosts
  }
  let names: string[];
  try {
    names = readdirSync(join(root, 'sources.list.d')).sort();
  } catch {
    names = [];
  }
  for (const name of names) {
    const path = join(root, 'sources.list.d', name);
    if (name.endsWith('.list')) out.push(...parseOneLine(readFileSync(path, 'utf8')));
    else if (name.endsWith('.sources')) out.push(...parseDeb822(readFileSync(path, 'utf8')));
  }
  return out;
}

/**
 * The Debian sources a bootstrapped image should use, for `suite` (e.g. bookworm): every binary
 * source whose suites belong to it (bookworm, bookworm-updates, bookworm-security...). The first is
 * the mirror debootstrap fetches from. An explicit mirror replaces the main archive entry.
 */
export function debianSourcesFor(sources: AptSource[], suite: string, mirror = ''): AptSource[] {
  const ours = sources
    .filter((s) => s.type === 'deb')
    .map((s) => ({ ...s, suites: s.suites.filter((x) => x === suite || x.startsWith(`${suite}-`) || x.startsWith(`${suite}/`)) }))
    .filter((s) => s.suites.length > 0);
  if (mirror) {
    const rest = ours.filter((s) => !s.suites.includes(suite));
    return [{ type: 'deb', uri: mirror, suites: [suite, `${suite}-updates`], components: ['main'] }, ...rest];
  }
  const main = ours.findIndex((s) => s.suites.includes(suite));
  if (main < 0) {
    throw new DeploylabError({
      code: 'DEBIAN_MIRROR_UNKNOWN',
      fault: 'config',
      message: {
        zh: `在本机 apt 源中找不到 ${suite} 的 Debian 镜像`,
        en: `no Debian mirror for ${suite} found in this host's apt sources`,
      },
      hint: {
        zh: '在配置中设置 images.debianMirror（例如本中心的镜像地址），或在 /etc/apt/sources.list 中配置 Debian 源',
        en: 'set images.debianMirror in the config (e.g. your centre\'s mirror), or configure a Debian source in /etc/apt/sources.list',
      },
    });
  }
  // The main archive first: debootstrap takes its mirror from the first entry.
  return [ours[main]!, ...ours.filter((_, i) => i !== main)];
}

/** Render sources in the one-line format, which every apt version reads. */
export function renderSourcesList(sources: AptSource[]): string {
  const lines: string[] = [];
  for (const s of sources) {
    for (const suite of s.suites) lines.push(`${s.type} ${s.uri} ${suite} ${s.components.join(' ')}`.trimEnd());
  }
  return lines.join('\n') + '\n';
}
