export * from './errors.js';
export * from './roles.js';
export * from './clinic.js';
export * from './queue.js';
export * from './events.js';
export * from './wait.js';
export * from './queue-follower.js';
export * from './notify.js';
