/**
 * The wire protocol as the package exports it (`agent-gateway/protocol`): event names and payload
 * shapes, error codes and close codes. Server and client import the files themselves; this entry
 * is for applications, and re-exports only, so it adds no cycle.
 */
export * from './close-codes.js';
export * from './error-codes.js';
export * from './events.js';
