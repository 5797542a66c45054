/**
 * Run in a page (page.evaluate of this file's text, called with options):
 * everything a person could find wrong with a laid-out page, as a list of
 * readable problems. Plain JavaScript, so that nothing a TypeScript
 * transform adds travels into the page.
 *
 * - content larger than its box (scrollWidth/scrollHeight beyond the client
 *   size), unless deliberately abbreviated (text-overflow: ellipsis with the
 *   full text in `title`);
 * - a box outside the viewport;
 * - two sibling boxes overlapping, or a fixed/absolute box over other content;
 * - Japanese text wrapped inside a word (a line starting where
 *   Intl.Segmenter sees no word boundary);
 * - text smaller than `minFontPx`.
 */
(options) => {
  const { minFontPx = 0, root = 'body' } = options ?? {};
  const problems = [];
  const vw = document.documentElement.clientWidth;
  const vh = document.documentElement.clientHeight;
  const name = (el) => {
    const id = el.id ? `#${el.id}` : '';
    const cls = typeof el.className === 'string' && el.className.trim() ? `.${el.className.trim().split(/\s+/).join('.')}` : '';
    const text = (el.textContent ?? '').replace(/\s+/g, ' ').trim().slice(0, 40);
    return `${el.tagName.toLowerCase()}${id}${cls}${text ? ` "${text}"` : ''}`;
  };
  const shown = (el) => {
    if (el.closest('[hidden]')) return false;
    for (let node = el; node; node = node.parentElement) {
      const style = getComputedStyle(node);
      if (style.display === 'none' || style.visibility === 'hidden' || Number(style.opacity) === 0) return false;
    }
    const rect = el.getBoundingClientRect();
    return rect.width > 0 && rect.height > 0;
  };
  const top = document.querySelector(root);
  if (!top) return [`no ${root}`];
  const elements = [top, ...top.querySelectorAll('*')].filter((el) => el.tagName !== 'WBR' && el.tagName !== 'SCRIPT' && el.tagName !== 'STYLE' && shown(el));
  const isBox = (style) => style.display !== 'inline' && style.display !== 'contents';
  const ownText = (el) => [...el.childNodes].some((n) => n.nodeType === Node.TEXT_NODE && n.textContent.trim() !== '');
  /*
   * A line whose line-height is under its font's own height (ascent + descent)
   * reaches past its line box by half the difference above and below: the
   * browser counts that in scrollHeight, but it is the font's empty top and
   * bottom, not ink. That much is allowed, measured per font.
   */
  const canvas = document.createElement('canvas').getContext('2d');
  const fontSlack = new Map();
  const slackOf = (el) => {
    const style = getComputedStyle(el);
    const font = `${style.fontStyle} ${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
    const key = `${font}|${style.lineHeight}`;
    if (!fontSlack.has(key)) {
      canvas.font = font;
      const metrics = canvas.measureText('あA');
      const height = metrics.fontBoundingBoxAscent + metrics.fontBoundingBoxDescent;
      const lineHeight = style.lineHeight === 'normal' ? height : parseFloat(style.lineHeight);
      fontSlack.set(key, Math.max(0, (height - lineHeight) / 2));
    }
    return fontSlack.get(key);
  };
  const textSlack = (el) => {
    let slack = ownText(el) ? slackOf(el) : 0;
    for (const inner of el.querySelectorAll('*')) if (ownText(inner)) slack = Math.max(slack, slackOf(inner));
    return slack;
  };

  for (const el of elements) {
    const style = getComputedStyle(el);
    const rect = el.getBoundingClientRect();
    if (rect.left < -0.5 || rect.top < -0.5 || rect.right > vw + 0.5 || rect.bottom > vh + 0.5) {
      problems.push(`outside the ${vw}×${vh} viewport (${Math.round(rect.left)},${Math.round(rect.top)} to ${Math.round(rect.right)},${Math.round(rect.bottom)}): ${name(el)}`);
    }
    if (el instanceof HTMLElement && isBox(style) && !(el instanceof HTMLHtmlElement) && !(el instanceof HTMLBodyElement && style.overflow !== 'hidden')) {
      const wide = el.scrollWidth > el.clientWidth + 1;
      const tall = el.scrollHeight > el.clientHeight + 1 && el.scrollHeight > el.clientHeight + 1 + textSlack(el);
      const scrolls = /(auto|scroll)/.test(style.overflowY) && !wide;
      const abbreviated = style.textOverflow === 'ellipsis' && el.title.trim() !== '';
      if ((wide || (tall && !scrolls)) && !abbreviated) {
        problems.push(`content larger than its box (${el.scrollWidth}×${el.scrollHeight} in ${el.clientWidth}×${el.clientHeight}): ${name(el)}`);
      }
    }
    if (minFontPx > 0 && ownText(el) && parseFloat(style.fontSize) < minFontPx - 0.01) {
      problems.push(`text of ${parseFloat(style.fontSize).toFixed(1)} px (under ${minFontPx}): ${name(el)}`);
    }
  }

  // Sibling boxes must not overlap; a fixed or absolute box must not lie over anything it is not part of.
  const overlap = (a, b) => {
    const x = Math.min(a.right, b.right) - Math.max(a.left, b.left);
    const y = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
    return x > 1 && y > 1;
  };
  const boxes = elements.filter((el) => isBox(getComputedStyle(el)));
  const boxSet = new Set(boxes);
  for (const parent of [top, ...boxes]) {
    const kids = [...parent.children].filter((el) => boxSet.has(el));
    for (let i = 0; i < kids.length; i++) {
      for (let j = i + 1; j < kids.length; j++) {
        if (overlap(kids[i].getBoundingClientRect(), kids[j].getBoundingClientRect())) problems.push(`overlap: ${name(kids[i])} and ${name(kids[j])}`);
      }
    }
  }
  const leaves = boxes.filter((el) => ownText(el) || el.matches('button, img, video, canvas, svg, input, select, textarea'));
  for (const el of boxes) {
    const position = getComputedStyle(el).position;
    if (position !== 'fixed' && position !== 'absolute') continue;
    const rect = el.getBoundingClientRect();
    for (const leaf of leaves) {
      if (el.contains(leaf) || leaf.contains(el)) continue;
      if (overlap(rect, leaf.getBoundingClientRect())) problems.push(`${position} box over content: ${name(el)} over ${name(leaf)}`);
    }
  }

  // Japanese must wrap only between words.
  const segmenter = new Intl.Segmenter('ja', { granularity: 'word' });
  const boxOf = (node) => {
    let box = node.parentElement;
    while (box && !isBox(getComputedStyle(box))) box = box.parentElement;
    return box;
  };
  for (const block of boxes) {
    // One box's own lines (text in inline elements inside it, not in boxes inside it), read as one string.
    const walker = document.createTreeWalker(block, NodeFilter.SHOW_TEXT);
    const chars = [];
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const nodeLang = node.parentElement?.closest('[lang]')?.getAttribute('lang') ?? '';
      if (boxOf(node) !== block || !nodeLang.startsWith('ja') || !shown(node.parentElement)) {
        chars.push(null);
        continue;
      }
      for (let i = 0; i < node.length; i++) {
        const range = document.createRange();
        range.setStart(node, i);
        range.setEnd(node, i + 1);
        const rects = range.getClientRects();
        chars.push({ char: node.data[i], rect: rects[0] ?? null });
      }
    }
    // Each run of Japanese characters on its own.
    let run = [];
    const flush = () => {
      if (run.length > 1) {
        const text = run.map((c) => c.char).join('');
        const boundaries = new Set([...segmenter.segment(text)].map((segment) => segment.index));
        for (let i = 1; i < run.length; i++) {
          const a = run[i - 1].rect;
          const b = run[i].rect;
          if (!a || !b) continue;
          const newLine = b.top > a.top + a.height / 2;
          if (newLine && !boundaries.has(i) && !/\s/.test(run[i - 1].char) && !/\s/.test(run[i].char)) {
            problems.push(`Japanese broken inside a word: "${text.slice(0, i)}|${text.slice(i)}" in ${name(block)}`);
          }
        }
      }
      run = [];
    };
    for (const c of chars) {
      if (c) run.push(c);
      else flush();
    }
    flush();
  }
  return [...new Set(problems)];
};
