/** A process that never ends by itself (hub/test/parent-watchdog.test.ts). */
setInterval(() => undefined, 1000);
