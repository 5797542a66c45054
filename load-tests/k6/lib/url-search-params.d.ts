/**
 * protocol/src/consult-events.ts, whose types the consultation script
 * imports, builds page links with URLSearchParams (`consultPagePath`), and
 * these scripts have no DOM types. Declared only as far as that file uses it,
 * so it type-checks here. k6 itself has no URLSearchParams: a script must
 * not call it (the scripts import that file's types only, which the bundle
 * drops).
 */
declare class URLSearchParams {
  constructor(init?: Record<string, string>);
  toString(): string;
}
