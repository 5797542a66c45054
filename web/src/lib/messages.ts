import { byId, h } from './dom.js';

/**
 * A dismissable line at the top of the page's `#messages` list (newest
 * first, at most `keep`): an action's outcome or an error with its code.
 * Outcomes go away by themselves after 8 s; errors stay until dismissed.
 */
export function showMessage(kind: 'ok' | 'error', content: string | Node, code?: string, keep = 5): void {
  const list = byId('messages');
  const item = h(
    'div',
    { class: `message ${kind}`, 'data-code': code },
    h('span', { class: 'text' }, content),
    h('button', { type: 'button', class: 'dismiss', 'aria-label': '閉じる / Dismiss', onclick: () => item.remove() }, '✕'),
  );
  list.prepend(item);
  while (list.children.length > keep) list.lastElementChild?.remove();
  if (kind === 'ok') setTimeout(() => item.remove(), 8000);
}
