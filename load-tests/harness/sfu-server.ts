/**
 * The media-server's SFU alone, for `npm run bench:sfu -- --servers sfu`:
 * the same configuration and rooms as `npm run media`, without the audio tap
 * (which decodes every microphone for the AI workers) and recording, so the
 * forwarding cost can be told apart from theirs.
 */
import { loadMediaConfig } from '@clinic-hub/media-server';
import { startMediaServer } from '@clinic-hub/media-server';

const server = await startMediaServer(loadMediaConfig());
const stop = () => void server.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
