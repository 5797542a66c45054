import type { Role } from '@clinic-hub/protocol';
import type { ConnectionState } from './connection.js';
import { bilingual, h } from './dom.js';
import { ERROR_TEXT_JA, TEXT, type Bilingual } from './i18n.js';
import { decodeToken, tokenFromFragment, type TokenInfo } from './token.js';

/**
 * The token from the address, if it is one this page can use. Otherwise the
 * page is replaced by a bilingual explanation and null is returned.
 */
export function pageToken(roles: readonly Role[]): { token: string; info: TokenInfo } | null {
  const token = tokenFromFragment();
  const info = token ? decodeToken(token) : null;
  if (!token || !info) {
    showFatal(TEXT.noToken);
    return null;
  }
  if (!info.role || !roles.includes(info.role)) {
    showFatal(TEXT.wrongTokenRole);
    return null;
  }
  return { token, info };
}

export function showFatal(text: Bilingual, detail?: string): void {
  document.body.replaceChildren(h('main', { class: 'fatal', role: 'alert' }, bilingual(text), detail ? h('p', { class: 'detail' }, detail) : null));
}

/**
 * The connection indicator. It also mirrors the state on <html data-connection>,
 * which the stylesheets use to mark stale content and tests use to wait.
 */
export function connectionIndicator(): { element: HTMLElement; update(state: ConnectionState): void } {
  const element = h('div', { class: 'connection', role: 'status', 'aria-live': 'polite' });
  const update = (state: ConnectionState) => {
    document.documentElement.dataset.connection = state.kind;
    const text: Bilingual =
      state.kind === 'live'
        ? TEXT.live
        : state.kind === 'connecting'
          ? TEXT.connecting
          : state.kind === 'reconnecting'
            ? TEXT.reconnecting
            : { ja: `${TEXT.rejected.ja}：${rejectionJa(state.code)}`, en: `${TEXT.rejected.en}: ${state.code} ${state.message}`.trim() };
    element.replaceChildren(h('span', { class: 'dot', 'aria-hidden': 'true' }), bilingual(text));
    element.dataset.state = state.kind;
  };
  update({ kind: 'connecting' });
  return { element, update };
}

function rejectionJa(code: string): string {
  return (Object.hasOwn(ERROR_TEXT_JA, code) ? ERROR_TEXT_JA[code as keyof typeof ERROR_TEXT_JA] : undefined) ?? code;
}
