/** `@clinic-hub/platform/config`: what every service's typed config module uses to read and check its variables. */
export { ConfigError, describeEnvIssues } from './config-error.js';
export { withSecretFiles, secretFileVariable } from './secret-files.js';
