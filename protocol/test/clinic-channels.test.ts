import { describe, expect, it } from 'vitest';
import { clinicChannel, clinicOfChannel, consultAiChannel, consultControlChannel } from '../src/index.js';

describe('clinic channel names', () => {
  it('builds and parses ch:{clinic}:<kind>', () => {
    expect(clinicChannel('tokyo-1', 'live')).toBe('ch:{tokyo-1}:live');
    expect(consultAiChannel('tokyo-1')).toBe('ch:{tokyo-1}:consult-ai');
    expect(clinicOfChannel(clinicChannel('tokyo-1', 'live'), 'live')).toBe('tokyo-1');
    expect(clinicOfChannel(consultControlChannel('a:b'), 'consult-control')).toBe('a:b');
  });

  it('gives null for another kind, an empty clinic or another layout', () => {
    expect(clinicOfChannel('ch:{tokyo-1}:chat', 'live')).toBeNull();
    expect(clinicOfChannel('ch:{tokyo-1}:consult-ai', 'ai')).toBeNull();
    expect(clinicOfChannel('ch:{}:live', 'live')).toBeNull();
    expect(clinicOfChannel('xx:{tokyo-1}:live', 'live')).toBeNull();
  });
});
