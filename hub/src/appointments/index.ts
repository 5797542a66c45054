/**
 * The appointments domain: appointments given by a clinic's booking system or
 * staff, their arrival codes and links, and their import in bulk. Their
 * arrival is a check-in (self-checkin domain, queue's check-in script); their
 * reminders are the notify domain's.
 */
export { AppointmentService, arrivalUrl, type AppointmentServiceDeps } from './appointment-service.js';
export { AppointmentStore, type AppointmentRecord } from './appointment-store.js';
export { createAppointmentRoutes } from './appointment-routes.js';
