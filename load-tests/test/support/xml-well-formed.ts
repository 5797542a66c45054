/**
 * A small XML well-formedness check for the SVG the harness writes (no parser
 * dependency): one root element, every tag closed in order, attributes
 * quoted and unique, `&` only in the five predefined or numeric entities,
 * no `<` in text or attribute values. Returns the problems found (none: well-formed).
 */
export function xmlProblems(text: string): string[] {
  const problems: string[] = [];
  const stack: string[] = [];
  let roots = 0;
  const entity = /&(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/y;
  const checkAmps = (s: string, where: string) => {
    for (let i = s.indexOf('&'); i >= 0; i = s.indexOf('&', i + 1)) {
      entity.lastIndex = i;
      if (!entity.test(s)) problems.push(`bare & in ${where}`);
    }
  };
  let i = text.startsWith('<?xml') ? text.indexOf('?>') + 2 : 0;
  while (i < text.length) {
    const lt = text.indexOf('<', i);
    const chunk = lt < 0 ? text.slice(i) : text.slice(i, lt);
    if (stack.length === 0 && chunk.trim() !== '') problems.push(`text outside the root: ${chunk.trim().slice(0, 40)}`);
    checkAmps(chunk, 'text');
    if (lt < 0) break;
    if (text.startsWith('<!--', lt)) {
      const end = text.indexOf('-->', lt);
      if (end < 0) return [...problems, 'unclosed comment'];
      i = end + 3;
      continue;
    }
    const gt = text.indexOf('>', lt);
    if (gt < 0) return [...problems, 'unclosed tag'];
    const tag = text.slice(lt + 1, gt);
    if (tag.includes('<')) problems.push(`< inside a tag: ${tag.slice(0, 40)}`);
    if (tag.startsWith('/')) {
      const name = tag.slice(1).trim();
      const open = stack.pop();
      if (open !== name) problems.push(`</${name}> closes <${open ?? 'nothing'}>`);
    } else {
      const selfClosing = tag.endsWith('/');
      const body = selfClosing ? tag.slice(0, -1) : tag;
      const m = /^([A-Za-z_][\w:.-]*)((?:\s+[A-Za-z_][\w:.-]*\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*$/.exec(body);
      if (!m) {
        problems.push(`malformed tag: <${tag.slice(0, 60)}>`);
      } else {
        const names = [...m[2]!.matchAll(/([A-Za-z_][\w:.-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)];
        const seen = new Set<string>();
        for (const a of names) {
          if (seen.has(a[1]!)) problems.push(`duplicate attribute ${a[1]} on <${m[1]}>`);
          seen.add(a[1]!);
          checkAmps(a[2] ?? a[3] ?? '', `attribute ${a[1]}`);
        }
        if (stack.length === 0) roots++;
        if (!selfClosing) stack.push(m[1]!);
      }
    }
    i = gt + 1;
  }
  if (stack.length > 0) problems.push(`unclosed: ${stack.join(' > ')}`);
  if (roots !== 1) problems.push(`${roots} root elements`);
  return problems;
}
