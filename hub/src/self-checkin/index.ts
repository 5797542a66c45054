/**
 * Check-in without reception: the kiosk at the entrance, the clinic's QR
 * poster for phones, and appointments' arrivals. Every path ends in the
 * queue's one check-in (queue/checkin-patient.ts).
 */
export { SelfCheckinService, type SelfCheckinCaller, type SelfCheckinDeps } from './self-checkin-service.js';
export { createSelfCheckinRoutes, posterUrl } from './self-checkin-routes.js';
export type { SelfCheckinLimits } from './checkin-limits.js';
export { isOpen, nextOpening } from './opening-hours.js';
