/**
 * Opens the embedded backend's SQLite file the one way both stores on it need: WAL (readers never
 * wait for the writer), synchronous=FULL (a push the client saw succeed survives a power cut; see
 * metadata-store.ts), and a busy timeout so a second process (the CLI) waits instead of failing.
 */
import Database from 'better-sqlite3';

export function openDatabase(path: string): Database.Database {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
  return db;
}
