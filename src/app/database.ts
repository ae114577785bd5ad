/** The service database: DATABASE_URL when set, else the embedded PostgreSQL of the data directory; migrated. */
import type { DataSource } from 'typeorm';
import { openDatabase, redactUrl } from '../db/data-source.js';
import { startEmbeddedPostgres } from '../db/embedded.js';
import type { ServiceConfig } from './config.js';
import { loadOrCreateDevSecret } from './keys.js';

export interface ServiceDatabase {
  ds: DataSource;
  /** where it is, password redacted */
  where: string;
  embedded: boolean;
  /** closes the pool, and stops the embedded cluster if this process started it */
  close(): Promise<void>;
}

/** `adoptOrphan`: the server takes over its data directory's cluster left running by a server killed with -9 (see EmbeddedOptions). */
export async function openServiceDatabase(
  cfg: Pick<ServiceConfig, 'databaseUrl' | 'dataDir' | 'embeddedPgPort'>,
  opts: { adoptOrphan?: boolean } = {},
): Promise<ServiceDatabase> {
  if (cfg.databaseUrl) {
    const ds = await openDatabase({ url: cfg.databaseUrl });
    return { ds, where: redactUrl(cfg.databaseUrl), embedded: false, close: () => ds.destroy() };
  }
  const password = loadOrCreateDevSecret(cfg.dataDir, 'pg-password').value.toString('utf8');
  const pg = await startEmbeddedPostgres({ dataDir: cfg.dataDir, port: cfg.embeddedPgPort, password, adoptOrphan: opts.adoptOrphan });
  let ds: DataSource;
  try {
    ds = await openDatabase({ url: pg.url });
  } catch (e) {
    await pg.stop();
    throw e;
  }
  return {
    ds,
    where: `${redactUrl(pg.url)} (embedded, ${pg.adopted ? `left running by a server that stopped without stopping it, taken over: cluster in ${pg.dir}` : pg.owned ? `started here, cluster in ${pg.dir}` : 'already running'})`,
    embedded: true,
    close: async () => {
      await ds.destroy();
      await pg.stop();
    },
  };
}
