import { DependencyGraphError } from './readiness.errors.js';
import type { DependencyDeclaration } from './readiness.types.js';

/**
 * Rejects duplicate or empty names, references to undeclared dependencies and cycles, naming the
 * cycle (`agent → llm → agent`) so the boot error says exactly what to fix.
 */
export function validateDependencyGraph(declarations: readonly DependencyDeclaration[]): void {
  const byName = new Map<string, readonly string[]>();
  for (const { name, dependsOn = [] } of declarations) {
    if (name.trim() === '') throw new DependencyGraphError('a dependency has an empty name');
    if (byName.has(name)) throw new DependencyGraphError(`dependency "${name}" is declared twice`);
    byName.set(name, dependsOn);
  }
  for (const [name, dependsOn] of byName) {
    for (const required of dependsOn) {
      if (!byName.has(required)) {
        throw new DependencyGraphError(`dependency "${name}" depends on undeclared "${required}"`);
      }
    }
  }

  const done = new Set<string>();
  const visit = (name: string, path: readonly string[]): void => {
    if (done.has(name)) return;
    const at = path.indexOf(name);
    if (at !== -1) {
      const cycle = [...path.slice(at), name].join(' → ');
      throw new DependencyGraphError(`dependency cycle: ${cycle}`);
    }
    for (const required of byName.get(name) ?? []) visit(required, [...path, name]);
    done.add(name);
  };
  for (const name of byName.keys()) visit(name, []);
}
