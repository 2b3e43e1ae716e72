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

export type AppDependency = (typeof APP_DEPENDENCIES)[number]['name'];
