/** k6's console, its logger: @types/k6 does not declare it, and these scripts have neither DOM nor Node types. */
declare const console: {
  log(...values: unknown[]): void;
  info(...values: unknown[]): void;
  warn(...values: unknown[]): void;
  error(...values: unknown[]): void;
  debug(...values: unknown[]): void;
};
