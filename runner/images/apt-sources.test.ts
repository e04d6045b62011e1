import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isDeploylabError } from '../core/errors.js';
import { debianSourcesFor, parseDeb822, parseOneLine, readHostAptSources, renderSourcesList } from './apt-sources.js';

const ONE_LINE = `# main archive
deb http://mirror.example.org/debian bookworm main contrib
deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.example.org/debian bookworm-updates main
deb-src http://mirror.example.org/debian bookworm main
deb http://security.example.org/debian-security bookworm-security main # trailing comment
deb http://other.example.org/ubuntu jammy main
`;

const DEB822 = `Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.example.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb deb-src
URIs: http://deb.example.org/debian-security
Suites: bookworm-security
Components: main

Types: deb
URIs: http://disabled.example.org/debian
Suites: bookworm
Components: main
Enabled: no
`;

describe('apt sources, one-line format', () => {
  it('reads type, uri, suite and components, skipping options and comments', () => {
    const s = parseOneLine(ONE_LINE);
    expect(s).toHaveLength(5);
    expect(s[0]).toEqual({ type: 'deb', uri: 'http://mirror.example.org/debian', suites: ['bookworm'], components: ['main', 'contrib'] });
    expect(s[1]).toEqual({ type: 'deb', uri: 'http://mirror.example.org/debian', suites: ['bookworm-updates'], components: ['main'] });
    expect(s[2]!.type).toBe('deb-src');
    expect(s[3]!.components).toEqual(['main']);
  });
});

describe('apt sources, deb822 format', () => {
  it('reads stanzas, expands multiple types, ignores comment lines and disabled stanzas', () => {
    const s = parseDeb822(DEB822);
    expect(s).toEqual([
      { type: 'deb', uri: 'http://deb.example.org/debian', suites: ['bookworm', 'bookworm-updates'], components: ['main'] },
      { type: 'deb', uri: 'http://deb.example.org/debian-security', suites: ['bookworm-security'], components: ['main'] },
      { type: 'deb-src', uri: 'http://deb.example.org/debian-security', suites: ['bookworm-security'], components: ['main'] },
    ]);
  });
});

describe('Debian sources for a bootstrapped image', () => {
  it('keeps only binary bookworm sources, main archive first, and renders them one per line', () => {
    const picked = debianSourcesFor(parseOneLine(ONE_LINE), 'bookworm');
    expect(picked[0]!.uri).toBe('http://mirror.example.org/debian');
    expect(picked.some((s) => s.uri.includes('ubuntu'))).toBe(false);
    expect(renderSourcesList(picked)).toBe(
      [
        'deb http://mirror.example.org/debian bookworm main contrib',
        'deb http://mirror.example.org/debian bookworm-updates main',
        'deb http://security.example.org/debian-security bookworm-security main',
        '',
      ].join('\n'),
    );
  });

  it('puts the main archive first even when security is listed first', () => {
    const s = parseDeb822(DEB822).reverse();
    expect(debianSourcesFor(s, 'bookworm')[0]!.uri).toBe('http://deb.example.org/debian');
  });

  it('an explicit mirror replaces the main archive but keeps security', () => {
    const picked = debianSourcesFor(parseDeb822(DEB822), 'bookworm', 'http://centre.example.org/debian');
    expect(picked.map((s) => s.uri)).toEqual(['http://centre.example.org/debian', 'http://deb.example.org/debian-security']);
  });

  it('no Debian source for the suite is a config error with a code', () => {
    try {
      debianSourcesFor(parseOneLine('deb http://x.example.org/ubuntu jammy main\n'), 'bookworm');
      expect.unreachable();
    } catch (e) {
      expect(isDeploylabError(e) && e.code).toBe('DEBIAN_MIRROR_UNKNOWN');
    }
  });

  it('reads a host layout with both formats and ignores other files in sources.list.d', () => {
    const root = mkdtempSync(join(tmpdir(), 'apt-'));
    mkdirSync(join(root, 'sources.list.d'));
    writeFileSync(join(root, 'sources.list'), 'deb http://a.example.org/debian bookworm main\n');
    writeFileSync(join(root, 'sources.list.d', 'debian.sources'), DEB822);
    writeFileSync(join(root, 'sources.list.d', 'x.list.disabled'), 'deb http://no.example.org/debian bookworm main\n');
    const s = readHostAptSources(root);
    expect(s.map((x) => x.uri)).toEqual([
      'http://a.example.org/debian',
      'http://deb.example.org/debian',
      'http://deb.example.org/debian-security',
      'http://deb.example.org/debian-security',
    ]);
  });
});
