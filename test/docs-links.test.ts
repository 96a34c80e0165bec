import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { brokenLink, githubSlug, linksIn, markdownFiles } from './helpers/markdown-links.js';
import { ROOT } from './helpers/paths.js';

// The project carries its own documents: every relative link in its Markdown
// resolves inside the repository (the file exists; an #anchor into Markdown
// names a heading there), and nothing points at documents kept outside it.

/** Source and documentation files whose text may mention a document. */
const TEXT_FILES = /\.(md|ts|mjs|js|wat|json|sh|ya?ml|go|rs|c|h)$/;
const SKIP_DIRS = new Set(['node_modules', 'dist', 'build', '.git']);

function textFiles(dir = ROOT): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!SKIP_DIRS.has(entry.name)) out.push(...textFiles(p));
    } else if (TEXT_FILES.test(entry.name) && entry.name !== 'package-lock.json') {
      out.push(path.relative(ROOT, p));
    }
  }
  return out;
}

/** Every broken relative link under `root`, as "file:line: target: why". */
function brokenLinks(root: string): string[] {
  const broken: string[] = [];
  for (const file of markdownFiles(root)) {
    for (const link of linksIn(readFileSync(path.join(root, file), 'utf8'))) {
      const why = brokenLink(root, file, link.target);
      if (why) broken.push(`${file}:${link.line}: ${link.target}: ${why}`);
    }
  }
  return broken;
}

describe('the repository carries its own documents', () => {
  it('finds the Markdown files to check (README, ABI.md, the kit, samples, docs/, test READMEs)', () => {
    const files = markdownFiles(ROOT);
    for (const expected of ['README.md', 'plugin-pdk/ABI.md', 'plugin-pdk/assemblyscript/README.md', 'sample-plugins/hello-world/README.md', 'docs/hook-semantics.md', 'test/fixtures/README.md']) {
      assert.ok(files.includes(expected), `${expected} is checked`);
    }
    assert.ok(!files.some((f) => f.includes('node_modules')), 'dependencies are not checked');
  });

  it('every relative link in every Markdown file resolves inside the repository', () => {
    assert.deepEqual(brokenLinks(ROOT), []);
  });

  it('nothing mentions the design folder next to the repository', () => {
    const mentions = textFiles()
      .filter((f) => f !== 'test/docs-links.test.ts')
      .flatMap((f) => readFileSync(path.join(ROOT, f), 'utf8').split('\n').flatMap((line, i) => (/\.\.\/shared|shared\/design/.test(line) ? [`${f}:${i + 1}: ${line.trim()}`] : [])));
    assert.deepEqual(mentions, []);
  });

  it('every document named in upper case (SEMANTICS.md, ABI.md, ...) exists in the repository', () => {
    const names = new Set(markdownFiles(ROOT).map((f) => path.basename(f)));
    const missing = textFiles()
      .filter((f) => f !== 'test/docs-links.test.ts')
      .flatMap((f) =>
        readFileSync(path.join(ROOT, f), 'utf8')
          .split('\n')
          .flatMap((line, i) => [...line.matchAll(/\b([A-Z][A-Z0-9_-]*\.md)\b/g)].filter((m) => !names.has(m[1])).map((m) => `${f}:${i + 1}: ${m[1]}`)),
      );
    assert.deepEqual(missing, []);
  });
});

describe('the link checker', () => {
  it("makes GitHub's anchors from headings", () => {
    assert.equal(githubSlug('7.5 What a plugin may put into HTTP'), '75-what-a-plugin-may-put-into-http');
    assert.equal(githubSlug('4.2 Sandgate fast path (`sandgate:host/v1`)'), '42-sandgate-fast-path-sandgatehostv1');
    assert.equal(githubSlug('Why …?'), 'why-');
    assert.equal(githubSlug('Streaming: what the host does'), 'streaming-what-the-host-does');
    assert.equal(githubSlug('snake_case and [a link](x.md)'), 'snake_case-and-a-link');
  });

  it('reports a missing file, a missing heading, a link out of the repository; not code, URLs or good links', () => {
    const root = mkdtempSync(path.join(tmpdir(), 'sandgate-links-'));
    mkdirSync(path.join(root, 'docs'));
    writeFileSync(path.join(root, 'docs/a.md'), '# A title\n\n## Second part\n\n## Second part\n');
    writeFileSync(
      path.join(root, 'README.md'),
      [
        '# Top',
        '[ok](docs/a.md) [ok](docs/a.md#second-part) [ok](docs/a.md#second-part-1) [ok](#top) [ok](https://example.com/x.md) [ok](docs/)',
        '[gone](docs/missing.md)',
        '[no heading](docs/a.md#third-part)',
        '[outside](../elsewhere/SEMANTICS.md)',
        '[here](#nowhere)',
        '`[in code](nope.md)`',
        '```',
        '[in a block](nope.md)',
        '```',
        '[ref]: docs/ref-missing.md',
      ].join('\n'),
    );
    assert.deepEqual(brokenLinks(root), [
      'README.md:3: docs/missing.md: no such file: docs/missing.md',
      'README.md:4: docs/a.md#third-part: no heading "#third-part" in docs/a.md',
      'README.md:5: ../elsewhere/SEMANTICS.md: points outside the repository (../elsewhere/SEMANTICS.md)',
      'README.md:6: #nowhere: no heading "#nowhere" in README.md',
      'README.md:11: docs/ref-missing.md: no such file: docs/ref-missing.md',
    ]);
  });
});
