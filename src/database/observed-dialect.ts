import type { CompiledQuery, DatabaseConnection, Dialect, Driver, QueryResult } from 'kysely';
import { storageUnavailable } from '../errors/client-errors.js';
import { isStorageUnavailable } from './storage-errors.js';

export interface StorageObserver {
  /** A query or connection succeeded. */
  up(): void;
  /** The database could not be reached (or could not take the write). */
  down(error: unknown): void;
  /** A statement was sent (BEGIN, COMMIT and ROLLBACK not included). */
  statement(): void;
  /** A transaction ended: a COMMIT, or a statement outside any explicit transaction. */
  transaction(): void;
}

const TRANSACTION_CONTROL = /^\s*(begin|commit|rollback|start transaction)\b/iu;

/**
 * Wraps a dialect so that every connection attempt and every query reports to `observer`, and a
 * database outage reaches callers as `STORAGE_UNAVAILABLE` (retryable) instead of a driver error
 * that would read as a bug. Other errors (constraint violations, SQL mistakes) pass unchanged.
 * This is the one place the service learns that its store went away or came back: no polling.
 */
export function observedDialect(dialect: Dialect, observer: StorageObserver): Dialect {
  return {
    createAdapter: () => dialect.createAdapter(),
    createQueryCompiler: () => dialect.createQueryCompiler(),
    createIntrospector: (db) => dialect.createIntrospector(db),
    createDriver: () => observedDriver(dialect.createDriver(), observer),
  };
}

function observedDriver(driver: Driver, observer: StorageObserver): Driver {
  const observed = new WeakSet<DatabaseConnection>();
  const inTransaction = new WeakSet<DatabaseConnection>();
  const translate = (error: unknown): unknown => {
    if (!isStorageUnavailable(error)) return error;
    observer.down(error);
    return storageUnavailable({ cause: error });
  };
  const observe = (connection: DatabaseConnection): DatabaseConnection => {
    if (observed.has(connection)) return connection;
    // Drivers reuse connection objects from their pool: patch each one once.
    const execute = connection.executeQuery.bind(connection);
    connection.executeQuery = async <R>(query: CompiledQuery): Promise<QueryResult<R>> => {
      if (!TRANSACTION_CONTROL.test(query.sql)) {
        observer.statement();
        if (!inTransaction.has(connection)) observer.transaction();
      }
      try {
        const result = await execute<R>(query);
        observer.up();
        return result;
      } catch (error) {
        throw translate(error);
      }
    };
    observed.add(connection);
    return connection;
  };
  // Explicit delegation: drivers keep their state in private fields, so they must be called as themselves.
  return {
    init: () => driver.init(),
    acquireConnection: async () => {
      try {
        return observe(await driver.acquireConnection());
      } catch (error) {
        throw translate(error);
      }
    },
    beginTransaction: async (connection, settings) => {
      await driver.beginTransaction(connection, settings);
      inTransaction.add(connection);
    },
    commitTransaction: async (connection) => {
      inTransaction.delete(connection);
      observer.transaction();
      await driver.commitTransaction(connection);
    },
    rollbackTransaction: async (connection) => {
      inTransaction.delete(connection);
      await driver.rollbackTransaction(connection);
    },
    ...(driver.savepoint === undefined
      ? {}
      : {
          savepoint: (connection, name, compile) => driver.savepoint?.(connection, name, compile) ?? Promise.resolve(),
        }),
    ...(driver.rollbackToSavepoint === undefined
      ? {}
      : {
          rollbackToSavepoint: (connection, name, compile) =>
            driver.rollbackToSavepoint?.(connection, name, compile) ?? Promise.resolve(),
        }),
    ...(driver.releaseSavepoint === undefined
      ? {}
      : {
          releaseSavepoint: (connection, name, compile) =>
            driver.releaseSavepoint?.(connection, name, compile) ?? Promise.resolve(),
        }),
    releaseConnection: (connection) => driver.releaseConnection(connection),
    destroy: () => driver.destroy(),
  } satisfies Driver;
}
