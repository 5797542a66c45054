export { createAudioTap, startAudioTap, type AudioTap, type AudioTapOptions } from './audio-tap.js';
