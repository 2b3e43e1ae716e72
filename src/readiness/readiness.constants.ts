/** DI token of the {@link ReadinessOptions} the {@link ReadinessService} is built from. */
export const READINESS_OPTIONS = Symbol('agent-gateway:readiness-options');
