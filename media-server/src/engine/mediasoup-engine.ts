import * as mediasoup from 'mediasoup';
import type { types as ms } from 'mediasoup';
import type { Logger } from 'pino';
import type { EngineCounters, MediaEngine, ParticipantTransport, RoomMediaInfo, RoomMediaReset, TransportOwner } from './engine-types.js';
import { MediasoupRoomMedia, type RoomMediaSettings, type WorkerSlot } from './mediasoup-room.js';
import { MediasoupTransport, type CounterSample, type MediaTransportDebug } from './mediasoup-transport.js';

export interface MediasoupEngineOptions {
  workerBin: string;
  /** Workers to run (one per core). */
  workers: number;
  /** Worker i's WebRtcServer listens on UDP and TCP port `firstPort + i`. */
  firstPort: number;
  /** The address the WebRtcServers listen on (0.0.0.0: every interface). */
  listenIp: string;
  /** What ICE candidates announce (the public address behind NAT), if not the listening address. */
  announcedAddress: string | null;
  /** The most a publisher's camera (all layers) and a shared screen send, bits per second. */
  videoMaxBitrate: { camera: number; screen: number };
  logger: Logger;
}

/** VP8 and Opus only: what recording writes and every browser sends. */
const MEDIA_CODECS: ms.RouterRtpCodecCapability[] = [
  { kind: 'audio', mimeType: 'audio/opus', clockRate: 48000, channels: 2, parameters: { useinbandfec: 1, minptime: 10 } },
  { kind: 'video', mimeType: 'video/VP8', clockRate: 90000, parameters: { 'x-google-start-bitrate': 600 } },
];

/** Counts read from the workers this recently are given again rather than read again (a scrape asks once per metric). */
const COUNTS_FRESH_MS = 1000;
/** How long the ids of closed objects whose last counts were kept are remembered (a read under way may still bring older counts of them). */
const GONE_MEMORY_MS = 60_000;

/** How long a replacement for a dead worker may take before rooms are given up (their participants rejoin through the hub). */
const RESPAWN_ATTEMPTS = 5;

/**
 * The SFU on mediasoup: one worker process per core, each with a
 * WebRtcServer (one UDP and one TCP port), a router per consultation on the
 * least-loaded worker. A worker that dies (crash, SIGKILL) is noticed at once
 * (mediasoup's `died`): a new one is started on the same ports, its rooms get
 * new routers, and their participants' clients are told to make their
 * transports again (`media-reset`) — nobody leaves the room.
 */
export class MediasoupEngine implements MediaEngine {
  readonly name = 'mediasoup' as const;
  private readonly slots: (WorkerSlot | null)[];
  private readonly rooms = new Map<string, MediasoupRoomMedia>();
  private readonly opening = new Map<string, Promise<MediasoupRoomMedia>>();
  private readonly resetListeners = new Set<(reset: RoomMediaReset) => void>();
  private readonly settings: RoomMediaSettings;
  private readonly retired: EngineCounters = zeroCounters();
  /** The last counts read, by transport, producer and consumer id; what closed ones counted goes to `retired`. */
  private readonly lastStats = new Map<string, Partial<EngineCounters>>();
  /** Closed objects whose last counts went to `retired`, and when: reads still under way must not count them again. */
  private readonly gone = new Map<string, number>();
  private bitrate = { in: 0, out: 0 };
  private reading: Promise<void> | null = null;
  private readAt = 0;
  private closing = false;
  /** Workers that died since start (for /healthz and tests). */
  workerDeaths = 0;

  private constructor(private readonly options: MediasoupEngineOptions) {
    this.slots = Array.from({ length: options.workers }, () => null);
    this.settings = {
      maxIncomingBitrate: options.videoMaxBitrate.camera + options.videoMaxBitrate.screen + 128_000,
      initialOutgoingBitrate: 1_000_000,
    };
  }

  static async create(options: MediasoupEngineOptions): Promise<MediasoupEngine> {
    const engine = new MediasoupEngine(options);
    try {
      for (let index = 0; index < options.workers; index += 1) engine.slots[index] = await engine.startSlot(index);
    } catch (error) {
      await engine.close();
      throw error;
    }
    return engine;
  }

  private get logger(): Logger {
    return this.options.logger;
  }

  private async startSlot(index: number): Promise<WorkerSlot> {
    const worker = await mediasoup.createWorker({ workerBin: this.options.workerBin, logLevel: 'warn', appData: { index } });
    const port = this.options.firstPort + index;
    const announced = this.options.announcedAddress ? { announcedAddress: this.options.announcedAddress } : {};
    let webRtcServer: ms.WebRtcServer;
    try {
      webRtcServer = await worker.createWebRtcServer({
        listenInfos: [
          { protocol: 'udp', ip: this.options.listenIp, port, ...announced },
          { protocol: 'tcp', ip: this.options.listenIp, port, ...announced },
        ],
      });
    } catch (error) {
      worker.close();
      throw new Error(`mediasoup worker ${index} could not listen on UDP and TCP port ${port} (${this.options.listenIp}): ${error instanceof Error ? error.message : String(error)}`);
    }
    const slot: WorkerSlot = { index, worker, webRtcServer };
    worker.on('died', (error) => void this.workerDied(slot, error));
    this.logger.info({ worker: index, pid: worker.pid, port }, 'mediasoup worker started (UDP and TCP)');
    return slot;
  }

  // ---- rooms ----

  async openRoom(clinic: string, roomId: string): Promise<RoomMediaInfo> {
    const room = await this.roomMedia(clinic, roomId);
    return { engine: 'mediasoup', routerRtpCapabilities: room.rtpCapabilities() as unknown as Record<string, unknown> };
  }

  private roomMedia(clinic: string, roomId: string): Promise<MediasoupRoomMedia> {
    const key = roomKey(clinic, roomId);
    const existing = this.rooms.get(key);
    if (existing && !existing.closed) return Promise.resolve(existing);
    let opening = this.opening.get(key);
    if (!opening) {
      opening = this.placeRoom(key).finally(() => this.opening.delete(key));
      this.opening.set(key, opening);
    }
    return opening;
  }

  private async placeRoom(key: string): Promise<MediasoupRoomMedia> {
    const slot = this.leastLoaded();
    if (!slot) throw new Error('no mediasoup worker is running');
    const room = await MediasoupRoomMedia.create(key, slot, MEDIA_CODECS, this.settings, this.logger.child({ room: key }));
    this.rooms.set(key, room);
    this.logger.debug({ room: key, worker: slot.index }, 'room placed');
    return room;
  }

  /** The live worker with the fewest participants' transports, then the fewest rooms. */
  private leastLoaded(): WorkerSlot | null {
    let best: { slot: WorkerSlot; load: [number, number] } | null = null;
    for (const slot of this.slots) {
      if (!slot || slot.worker.died || slot.worker.closed) continue;
      let transports = 0;
      let rooms = 0;
      for (const room of this.rooms.values()) {
        if (room.slot !== slot) continue;
        rooms += 1;
        transports += room.transports.size;
      }
      const load: [number, number] = [transports, rooms];
      if (!best || load[0] < best.load[0] || (load[0] === best.load[0] && load[1] < best.load[1])) best = { slot, load };
    }
    return best?.slot ?? null;
  }

  closeRoom(clinic: string, roomId: string): void {
    const key = roomKey(clinic, roomId);
    const room = this.rooms.get(key);
    if (!room) return;
    this.rooms.delete(key);
    room.close();
  }

  onRoomReset(listener: (reset: RoomMediaReset) => void): () => void {
    this.resetListeners.add(listener);
    return () => this.resetListeners.delete(listener);
  }

  /** The room's router may still be on its way (or made again after the room emptied under a join): the transport waits for it. */
  createTransport(owner: TransportOwner): ParticipantTransport {
    return new MediasoupTransport(owner, this.roomMedia(owner.clinic, owner.roomId), this.logger, (samples) => void samples.then((read) => this.retire(read)));
  }

  // ---- a worker died ----

  private async workerDied(slot: WorkerSlot, error: Error): Promise<void> {
    if (this.closing) return;
    this.workerDeaths += 1;
    const affected = [...this.rooms.values()].filter((room) => room.slot === slot);
    this.logger.error({ worker: slot.index, pid: slot.worker.pid, err: error, rooms: affected.length }, 'mediasoup worker died; starting another and moving its rooms');
    if (this.slots[slot.index] === slot) this.slots[slot.index] = null;
    for (const room of affected) room.close();
    const replacement = this.respawn(slot.index);
    // Another live worker takes the rooms at once; with none, they wait for the replacement.
    if (!this.leastLoaded()) await replacement;
    for (const old of affected) {
      const [clinic, roomId] = splitRoomKey(old.key);
      let moved: MediasoupRoomMedia | null = null;
      try {
        if (this.rooms.get(old.key) === old) this.rooms.delete(old.key);
        moved = await this.roomMedia(clinic, roomId);
      } catch (moveError) {
        this.logger.error({ err: moveError, room: old.key }, 'room could not be moved to another worker');
      }
      for (const listener of this.resetListeners) listener({ clinic, roomId, reason: 'worker-died', moved: moved !== null });
      if (!moved) continue;
      for (const transport of [...old.transports]) transport.reset(moved);
      this.logger.info({ room: old.key, worker: moved.slot.index, participants: moved.transports.size }, 'room moved to another worker');
    }
  }

  private async respawn(index: number): Promise<void> {
    for (let attempt = 1; attempt <= RESPAWN_ATTEMPTS && !this.closing; attempt += 1) {
      try {
        // The dead worker's ports are free once its process is gone.
        const slot = await this.startSlot(index);
        if (this.closing) {
          slot.worker.close();
          return;
        }
        this.slots[index] = slot;
        return;
      } catch (error) {
        this.logger.error({ err: error, worker: index, attempt }, 'replacement mediasoup worker did not start');
        await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
      }
    }
  }

  // ---- figures ----

  /** Live workers' process ids (what the benchmark measures and the crash test kills). */
  workerPids(): number[] {
    return this.slots.flatMap((slot) => (slot && !slot.worker.died && !slot.worker.closed ? [slot.worker.pid] : []));
  }

  /** The worker a room is on, or null. */
  roomWorkerPid(clinic: string, roomId: string): number | null {
    return this.rooms.get(roomKey(clinic, roomId))?.slot.worker.pid ?? null;
  }

  forwardedStreams(): number {
    let count = 0;
    for (const room of this.rooms.values()) for (const transport of room.transports) count += transport.subscriptionCount;
    return count;
  }

  counters(): EngineCounters {
    void this.refreshCounters();
    const totals = { ...this.retired };
    for (const last of this.lastStats.values()) addCounts(totals, last);
    return totals;
  }

  currentBitrate(): { in: number; out: number } {
    return { ...this.bitrate };
  }

  /**
   * Bytes and bitrates of every transport, packets and keyframe requests of
   * every producer and consumer, read from the workers when asked (a scrape;
   * a read of counters()) and at most once a second — not on a timer: a
   * room's 24 reads every 5 s were most of what this process did for it.
   * What closes in between is read just before it closes (retire).
   */
  refreshCounters(): Promise<void> {
    if (this.reading) return this.reading;
    if (Date.now() - this.readAt < COUNTS_FRESH_MS) return Promise.resolve();
    this.reading = this.pollStats().finally(() => {
      this.readAt = Date.now();
      this.reading = null;
    });
    return this.reading;
  }

  private async pollStats(): Promise<void> {
    const seen = new Set<string>();
    const bitrate = { in: 0, out: 0 };
    for (const room of [...this.rooms.values()]) {
      // One participant's reads at a time: a worker answering hundreds at once would hold its packets back meanwhile.
      for (const transport of [...room.transports]) {
        for (const { id, counts, bitrate: rate } of await transport.counterSamples().catch(() => [])) {
          if (this.gone.has(id)) continue;
          seen.add(id);
          this.lastStats.set(id, counts);
          if (rate) {
            bitrate.in += rate.in;
            bitrate.out += rate.out;
          }
        }
      }
    }
    this.bitrate = bitrate;
    for (const [id, last] of this.lastStats) {
      if (seen.has(id)) continue;
      addCounts(this.retired, last);
      this.lastStats.delete(id);
    }
  }

  /** The last counts of objects that are closing: counted for good, and not again by a read that was under way. */
  private retire(samples: CounterSample[]): void {
    const now = Date.now();
    for (const [id, at] of this.gone) if (now - at > GONE_MEMORY_MS) this.gone.delete(id);
    for (const { id, counts } of samples) {
      if (this.gone.has(id)) continue;
      this.gone.set(id, now);
      this.lastStats.delete(id);
      addCounts(this.retired, counts);
    }
  }

  /** Every room's transports, producers and consumers (layers, ICE protocol): GET /debug/media. */
  async describe(): Promise<{ engine: 'mediasoup'; workers: { index: number; pid: number }[]; workerDeaths: number; rooms: { room: string; worker: number; activeSpeaker: string | null; participants: MediaTransportDebug[] }[] }> {
    const rooms = [];
    for (const room of this.rooms.values()) {
      rooms.push({ room: room.key, worker: room.slot.index, activeSpeaker: room.activeSpeaker, participants: await Promise.all([...room.transports].map((transport) => transport.describe())) });
    }
    return {
      engine: 'mediasoup',
      workers: this.slots.flatMap((slot) => (slot && !slot.worker.died ? [{ index: slot.index, pid: slot.worker.pid }] : [])),
      workerDeaths: this.workerDeaths,
      rooms,
    };
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const room of this.rooms.values()) {
      for (const transport of [...room.transports]) await transport.close();
      room.close();
    }
    this.rooms.clear();
    for (const slot of this.slots) slot?.worker.close();
  }
}

function addCounts(totals: EngineCounters, counts: Partial<EngineCounters>): void {
  for (const key of Object.keys(counts) as (keyof EngineCounters)[]) totals[key] += counts[key] ?? 0;
}

function zeroCounters(): EngineCounters {
  return { bytesIn: 0, bytesOut: 0, packetsIn: 0, packetsOut: 0, plisSent: 0, plisReceived: 0, rembsSent: 0, videoPacketsHeldBack: 0 };
}

function roomKey(clinic: string, roomId: string): string {
  return `${clinic}/${roomId}`;
}

function splitRoomKey(key: string): [string, string] {
  const slash = key.indexOf('/');
  return [key.slice(0, slash), key.slice(slash + 1)];
}
