/**
 * werift takes almost any text as a remote answer (it parsed
 * "v=0\r\ngarbage" into an empty session and went to `stable`), which would
 * leave a participant with a silent connection. So an answer is checked
 * against the offer it answers before it is applied: the same m-lines with
 * the same mids in the same order, and the ICE and DTLS attributes a
 * connection needs. Returns what is wrong, or null.
 */
export function answerProblem(offerSdp: string, answerSdp: string): string | null {
  if (!answerSdp.startsWith('v=0')) return 'an SDP starts with v=0';
  const offer = mediaSections(offerSdp);
  const answer = mediaSections(answerSdp);
  if (answer.sections.length !== offer.sections.length) return `the offer has ${offer.sections.length} m-lines, the answer ${answer.sections.length}`;
  for (let i = 0; i < offer.sections.length; i++) {
    const offered = offer.sections[i]!;
    const answered = answer.sections[i]!;
    if (answered.kind !== offered.kind) return `m-line ${i} is ${offered.kind} in the offer, ${answered.kind} in the answer`;
    if (answered.rejected || offered.rejected) continue;
    if (answered.mid !== offered.mid) return `m-line ${i} has mid ${String(offered.mid)} in the offer, ${String(answered.mid)} in the answer`;
  }
  const has = (name: string) => answer.session.includes(name) || answer.sections.some((s) => !s.rejected && s.lines.includes(name));
  for (const attribute of ['a=ice-ufrag:', 'a=ice-pwd:', 'a=fingerprint:', 'a=setup:']) {
    if (!has(attribute)) return `no ${attribute.slice(2, -1)}`;
  }
  return null;
}

interface Section {
  kind: string;
  rejected: boolean;
  mid: string | null;
  lines: string;
}

function mediaSections(sdp: string): { session: string; sections: Section[] } {
  const parts = sdp.split(/\r?\n(?=m=)/);
  const session = parts[0]!.startsWith('m=') ? '' : parts.shift()!;
  const sections = parts.map((lines) => {
    const m = /^m=(\S+) (\d+)/.exec(lines);
    const mid = /^a=mid:(\S+)/m.exec(lines)?.[1] ?? null;
    return { kind: m?.[1] ?? '?', rejected: m?.[2] === '0', mid, lines };
  });
  return { session, sections };
}
