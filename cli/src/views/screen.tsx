import { Text, useStdout } from 'ink';
import { useEffect, useState } from 'react';
import { padEnd, truncate } from '../output.js';

export interface ScreenSize {
  columns: number;
  rows: number;
}

/** The terminal's size, following resizes; `fixed` (tests) wins. 80×24 when unknown. */
export function useScreenSize(fixed?: ScreenSize): ScreenSize {
  const { stdout } = useStdout();
  const read = (): ScreenSize => fixed ?? { columns: stdout.columns || 80, rows: stdout.rows || 24 };
  const [size, setSize] = useState(read);
  useEffect(() => {
    if (fixed) return;
    const onResize = () => setSize(read());
    stdout.on('resize', onResize);
    return () => {
      stdout.off('resize', onResize);
    };
  }, [stdout, fixed]);
  return size;
}

/** Re-renders every `ms` so that "2m ago" stays true. */
export function useNow(ms: number, clock: () => number = Date.now): number {
  const [now, setNow] = useState(clock);
  useEffect(() => {
    const timer = setInterval(() => setNow(clock()), ms);
    return () => clearInterval(timer);
  }, [ms, clock]);
  return now;
}

/** One screen line, cut to the width so nothing ever wraps. */
export function Line(props: { text: string; width: number; color?: string | undefined; bold?: boolean; dim?: boolean; inverse?: boolean }) {
  const text = truncate(props.text, props.width);
  return (
    <Text
      wrap="truncate"
      {...(props.color ? { color: props.color } : {})}
      bold={props.bold ?? false}
      dimColor={props.dim ?? false}
      inverse={props.inverse ?? false}
    >
      {/* An empty Text takes no line at all: a space keeps the screen's rows where they belong. */}
      {props.inverse ? padEnd(text, props.width) : text || ' '}
    </Text>
  );
}

/** The bottom line: one key and one word per action, as in k9s. */
export function KeyLine(props: { keys: [string, string][]; width: number }) {
  let used = 0;
  const shown: [string, string][] = [];
  for (const [key, label] of props.keys) {
    const width = key.length + 1 + label.length + (shown.length ? 1 : 0);
    if (used + width > props.width) break;
    used += width;
    shown.push([key, label]);
  }
  return (
    <Text wrap="truncate">
      {shown.map(([key, label], i) => (
        <Text key={key}>
          {i ? ' ' : ''}
          <Text bold>{key}</Text>
          <Text dimColor>:{label}</Text>
        </Text>
      ))}
    </Text>
  );
}
