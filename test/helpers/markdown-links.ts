import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

// What the docs-links test needs to know about Markdown: which files there
// are, the links in them, and the anchors GitHub makes from their headings.

/** Folders that hold no documentation of the project's own (dependencies, build output). */
const SKIP_DIRS = new Set(['node_modules', 'dist', 'build', '.git']);

/** Every Markdown file under `root`, as paths relative to it. */
export function markdownFiles(root: string, dir = root): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) {
      if (!SKIP_DIRS.has(entry.name) && !entry.name.startsWith('.')) out.push(...markdownFiles(root, path.join(dir, entry.name)));
    } else if (entry.name.endsWith('.md')) {
      out.push(path.relative(root, path.join(dir, entry.name)));
    }
  }
  return out.sort();
}

/** The lines of a Markdown file with fenced code blocks blanked (line numbers kept). */
export function linesOutsideFences(markdown: string): string[] {
  let fence: string | null = null;
  return markdown.split('\n').map((line) => {
    const marker = /^\s*(`{3,}|~{3,})/.exec(line)?.[1];
    if (fence) {
      if (marker && marker[0] === fence[0] && marker.length >= fence.length) fence = null;
      return '';
    }
    if (marker) fence = marker;
    return marker ? '' : line;
  });
}

/** The text outside fenced code blocks and inline code spans: where a link is a link. */
export function proseLines(markdown: string): string[] {
  return linesOutsideFences(markdown).map((line) => line.replace(/(`+)[^`]*?\1/g, ''));
}

export interface MarkdownLink {
  target: string;
  line: number;
}

/** Inline links and images `[text](target "title")` and reference definitions `[id]: target`. */
export function linksIn(markdown: string): MarkdownLink[] {
  const links: MarkdownLink[] = [];
  proseLines(markdown).forEach((line, i) => {
    for (const m of line.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) links.push({ target: m[1], line: i + 1 });
    const def = /^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$/.exec(line);
    if (def) links.push({ target: def[1], line: i + 1 });
  });
  return links;
}

/**
 * The anchor GitHub gives a heading: its text without Markdown syntax,
 * lower-cased, every character that is not a letter, digit, space, `-` or `_`
 * dropped, spaces turned into `-`.
 *
 * @example githubSlug('7.5 What a plugin may put into HTTP') // '75-what-a-plugin-may-put-into-http'
 */
export function githubSlug(heading: string): string {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // a link's text only
    .replace(/<[^>]+>/g, '') // inline HTML
    .replace(/[`*]/g, '');
  return text
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/ /g, '-');
}

/** Every anchor a Markdown file has: one per heading, a repeated one suffixed -1, -2, ... as GitHub does. */
export function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const line of linesOutsideFences(markdown)) {
    const m = /^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const slug = githubSlug(m[1]);
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    anchors.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return anchors;
}

/**
 * Why a relative link from `file` (relative to `root`) does not resolve, or
 * null when it does: the target must be a file or folder inside the
 * repository and, for `#anchor` into a Markdown file, a heading there.
 */
export function brokenLink(root: string, file: string, target: string): string | null {
  if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('//')) return null; // absolute URL, mailto:
  const [rawPath, anchor] = target.split('#', 2) as [string, string | undefined];
  const decoded = decodeURIComponent(rawPath);
  const resolved = rawPath === '' ? path.join(root, file) : decoded.startsWith('/') ? path.join(root, decoded) : path.resolve(root, path.dirname(file), decoded);
  const inside = path.relative(root, resolved);
  if (inside.startsWith('..') || path.isAbsolute(inside)) return `points outside the repository (${inside})`;
  if (!existsSync(resolved)) return `no such file: ${inside}`;
  if (anchor === undefined || anchor === '') return null;
  if (statSync(resolved).isDirectory() || !resolved.endsWith('.md')) return null; // anchors into code are line numbers: not checked
  const anchors = anchorsOf(readFileSync(resolved, 'utf8'));
  return anchors.has(decodeURIComponent(anchor).toLowerCase()) ? null : `no heading "#${anchor}" in ${inside}`;
}
