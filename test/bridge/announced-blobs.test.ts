/**
 * The bridge's guess of what an upload carries (functions/bridge/announced-blobs.ts): only an
 * unambiguous, recent HEAD 404 in the same repository is taken, and only once.
 */
import { describe, expect, it } from 'vitest';
import { AnnouncedBlobs } from '../../functions/bridge/announced-blobs.js';

const A = `sha256:${'a'.repeat(64)}`;
const B = `sha256:${'b'.repeat(64)}`;

describe('AnnouncedBlobs', () => {
  it('gives the one blob a repository is waiting for, once', () => {
    const blobs = new AnnouncedBlobs();
    blobs.record('team/app', A, 1000);
    expect(blobs.claim('team/other', 1001)).toBeUndefined();
    expect(blobs.claim('team/app', 1001)).toBe(A);
    expect(blobs.claim('team/app', 1002)).toBeUndefined();
  });

  it('guesses nothing when two blobs are waiting (layers pushed in parallel)', () => {
    const blobs = new AnnouncedBlobs();
    blobs.record('team/app', A, 1000);
    blobs.record('team/app', B, 1001);
    blobs.record('team/app', A, 1002); // asked twice: still two candidates
    expect(blobs.claim('team/app', 1003)).toBeUndefined();
    // one of them turned out to be there: the other is the upload
    blobs.forget('team/app', B);
    expect(blobs.claim('team/app', 1004)).toBe(A);
  });

  it('forgets what was asked too long ago', () => {
    const blobs = new AnnouncedBlobs();
    blobs.record('team/app', A, 0);
    expect(blobs.claim('team/app', 60_000)).toBeUndefined();
    blobs.record('team/app', A, 0);
    blobs.record('team/app', B, 59_000);
    expect(blobs.claim('team/app', 61_000)).toBe(B);
  });
});
