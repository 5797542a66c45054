import type { Bilingual } from './i18n.js';
import { breakable } from './line-breaks.js';

type Child = Node | string | null | undefined | false;
type Attributes = Record<string, string | number | boolean | null | undefined | ((event: Event) => void)>;

/**
 * Builds an element. Text always goes in as text nodes, never as HTML, so
 * nothing that arrives from the network can become markup.
 */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attributes: Attributes = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (typeof value === 'function') element.addEventListener(name.replace(/^on/, ''), value);
    else if (name === 'class') element.className = String(value);
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child);
  }
  return element;
}

/**
 * Japanese above English, each in its own span for styling. `breakable`
 * marks where the Japanese may wrap (between words: line-breaks.ts), for
 * text styled `word-break: keep-all`.
 */
export function bilingual(text: Bilingual, className = '', options: { breakable?: boolean } = {}): HTMLSpanElement {
  return h(
    'span',
    { class: `bi ${className}`.trim() },
    h('span', { class: 'ja', lang: 'ja' }, options.breakable ? breakable(text.ja) : text.ja),
    h('span', { class: 'en', lang: 'en' }, text.en),
  );
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (!element) throw new Error(`#${id} is missing from the page`);
  return element as T;
}

export function replaceChildren(parent: Element, ...children: Child[]): void {
  parent.replaceChildren(...children.filter((c): c is Node | string => c !== null && c !== undefined && c !== false));
}
