import type { AppConfig } from './config/app-config.js';
import type { DependencyDeclaration } from './readiness/readiness.types.js';

/**
 * What must be initialised before this instance may serve chat, declared statically so readiness
 * knows the full list before any module starts. The agent needs the model and the thread store.
 */
export const APP_DEPENDENCIES = [
  { name: 'llm' },
  { name: 'threads' },
  { name: 'agent', dependsOn: ['llm', 'threads'] },
] as const satisfies readonly DependencyDeclaration[];

/** Fleet mode (`REDIS_URL`) adds the bus: its runs are followed through it from the first one. */
export const FLEET_DEPENDENCIES = [
  { name: 'llm' },
  { name: 'threads' },
  { name: 'bus' },
  { name: 'agent', dependsOn: ['llm', 'threads', 'bus'] },
] as const satisfies readonly DependencyDeclaration[];

export type AppDependency = (typeof FLEET_DEPENDENCIES)[number]['name'];

/** The dependencies of this configuration. */
export function appDependencies(config: AppConfig): readonly DependencyDeclaration[] {
  return config.fleet === undefined ? APP_DEPENDENCIES : FLEET_DEPENDENCIES;
}
