import type { LogLevel } from '@nestjs/common';

/** The whole configuration, parsed and validated once at boot from the environment. */
export interface AppConfig {
  readonly env: 'development' | 'production' | 'test';
  readonly http: { readonly port: number; readonly host: string };
  readonly auth: {
    readonly jwtSecret: string;
    /** True when `JWT_SECRET` was not set and the development default is in use. */
    readonly usingDevelopmentSecret: boolean;
    readonly issuer?: string;
    readonly audience?: string;
  };
  readonly readiness: { readonly startupTimeoutMs: number };
  readonly ws: {
    readonly readyWaitMs: number;
    readonly maxPayloadBytes: number;
    readonly heartbeatMs: number;
    /** Empty: every origin is allowed. */
    readonly allowedOrigins: readonly string[];
  };
  readonly llm: {
    readonly local: { readonly warmupMs: number; readonly tokenDelayMs: number };
  };
  readonly log: { readonly level: LogLevel; readonly format: 'json' | 'text' };
}
