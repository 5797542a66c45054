import { Counter, Gauge, Registry } from 'prom-client';
import { collectProcessMetrics } from '@clinic-hub/platform/process';
import type { EngineCounters, MediaEngine } from './engine/engine-types.js';

const BITRATE_WINDOW_SECONDS = 10;


/**
 * The media-server's Prometheus metrics, every series labelled with the node.
 * Engine totals are read when scraped (mediasoup: from its workers, then);
 * the bitrates are the engine's own (mediasoup: the workers' rates, read at
 * the scrape) or averaged over the last ten seconds, sampled once a second
 * (werift).
 */
export class MediaMetrics {
  readonly registry = new Registry();
  readonly signalErrors: Counter<'code'>;
  readonly joins: Counter;
  private readonly samples: { at: number; bytesIn: number; bytesOut: number }[] = [];
  private readonly sampler: NodeJS.Timeout | null = null;

  constructor(
    nodeId: string,
    private readonly engine: MediaEngine,
    counts: () => { rooms: number; participants: number },
    draining: () => boolean,
  ) {
    this.registry.setDefaultLabels({ node: nodeId });
    collectProcessMetrics(this.registry, 'clinic_media_');
    new Gauge({ name: 'clinic_media_rooms', help: 'Rooms hosted on this node', registers: [this.registry], collect() { this.set(counts().rooms); } });
    new Gauge({ name: 'clinic_media_participants', help: 'Participants connected to this node', registers: [this.registry], collect() { this.set(counts().participants); } });
    new Gauge({
      name: 'clinic_media_forwarded_streams',
      help: 'Tracks forwarded to subscribers now (one per track and subscriber)',
      registers: [this.registry],
      collect() {
        this.set(engine.forwardedStreams());
      },
    });
    new Gauge({ name: 'clinic_media_draining', help: '1 while this node drains (takes no new rooms)', registers: [this.registry], collect() { this.set(draining() ? 1 : 0); } });

    const totals = (name: string, help: string, labelNames: string[], read: (c: EngineCounters) => Record<string, number>) => {
      // Counters must only go up: each scrape adds what the engine counted since the last one.
      let last: Record<string, number> = {};
      new Counter({
        name,
        help,
        labelNames,
        registers: [this.registry],
        async collect() {
          await engine.refreshCounters();
          const now = read(engine.counters());
          for (const [label, value] of Object.entries(now)) {
            const delta = value - (last[label] ?? 0);
            if (delta < 0) continue;
            if (labelNames.length > 0) this.inc({ [labelNames[0]!]: label }, delta);
            else this.inc(delta);
          }
          last = now;
        },
      });
    };
    totals('clinic_media_rtp_bytes_total', 'RTP bytes received from publishers (in) and sent to subscribers (out)', ['direction'], (c) => ({ in: c.bytesIn, out: c.bytesOut }));
    totals('clinic_media_rtp_packets_total', 'RTP packets received from publishers (in) and sent to subscribers (out)', ['direction'], (c) => ({ in: c.packetsIn, out: c.packetsOut }));
    totals('clinic_media_keyframe_requests_total', 'Picture loss indications: from subscribers (received) and to publishers after coalescing (sent)', ['direction'], (c) => ({ received: c.plisReceived, sent: c.plisSent }));
    totals('clinic_media_remb_sent_total', 'Bandwidth limits (REMB) sent to publishers of video, about one a second per track', [], (c) => ({ total: c.rembsSent }));
    totals('clinic_media_video_packets_held_back_total', 'Video packets not forwarded: the subscriber waits for a keyframe or its link is poor', [], (c) => ({ total: c.videoPacketsHeldBack }));

    const samples = this.samples;
    new Gauge({
      name: 'clinic_media_bitrate_bits_per_second',
      help: `RTP bitrate in from publishers and out to subscribers: werift over the last ${BITRATE_WINDOW_SECONDS} s, mediasoup the workers' own rates (RTP over 2.5 s, retransmissions over 1 s)`,
      labelNames: ['direction'],
      registers: [this.registry],
      async collect() {
        await engine.refreshCounters();
        const own = engine.currentBitrate();
        if (own) {
          this.set({ direction: 'in' }, own.in);
          this.set({ direction: 'out' }, own.out);
          return;
        }
        const first = samples[0];
        const last = samples[samples.length - 1];
        const seconds = first && last ? (last.at - first.at) / 1000 : 0;
        this.set({ direction: 'in' }, seconds > 0 ? ((last!.bytesIn - first!.bytesIn) * 8) / seconds : 0);
        this.set({ direction: 'out' }, seconds > 0 ? ((last!.bytesOut - first!.bytesOut) * 8) / seconds : 0);
      },
    });
    this.signalErrors = new Counter({ name: 'clinic_media_signal_errors_total', help: 'Errors answered to signalling clients, by code', labelNames: ['code'], registers: [this.registry] });
    this.joins = new Counter({ name: 'clinic_media_joins_total', help: 'Participants admitted to a room on this node', registers: [this.registry] });
    if (engine.currentBitrate() === null) {
      this.sample();
      this.sampler = setInterval(() => this.sample(), 1000);
      this.sampler.unref();
    }
  }

  private sample(): void {
    const { bytesIn, bytesOut } = this.engine.counters();
    this.samples.push({ at: Date.now(), bytesIn, bytesOut });
    if (this.samples.length > BITRATE_WINDOW_SECONDS + 1) this.samples.shift();
  }

  close(): void {
    if (this.sampler) clearInterval(this.sampler);
  }
}
