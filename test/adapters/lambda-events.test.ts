/**
 * The Lambda entry's non-HTTP side, without AWS: scheduled job events (the garbage collection
 * rule of infra/constructs/operations.ts) and the EMF request metrics of metrics.ts.
 */
import { describe, expect, it } from 'vitest';
import { handleScheduledJob, handler, isScheduledJob } from '../../functions/adapters/lambda/handler.js';
import { bodyBytes, requestMetrics } from '../../functions/adapters/lambda/metrics.js';

const functionUrlEvent = {
  version: '2.0',
  rawPath: '/v2/',
  rawQueryString: '',
  headers: {},
  isBase64Encoded: false,
  requestContext: { domainName: 'x.lambda-url.us-east-1.on.aws', http: { method: 'GET', path: '/v2/' } },
};

describe('scheduled jobs', () => {
  it('tells a scheduled job from a Function URL event', () => {
    expect(isScheduledJob({ wharf: 'gc' })).toBe(true);
    expect(isScheduledJob(functionUrlEvent)).toBe(false);
    expect(isScheduledJob({ ...functionUrlEvent, wharf: 'gc' })).toBe(false);
    expect(isScheduledJob({})).toBe(false);
    expect(isScheduledJob(null)).toBe(false);
    expect(isScheduledJob('gc')).toBe(false);
  });

  it('answers an unknown job without throwing, with one log line', async () => {
    const lines: string[] = [];
    const result = await handleScheduledJob({ wharf: 'compact' }, (l) => lines.push(l));
    expect(result).toEqual({ ok: false, job: 'compact', reason: 'unknown scheduled job "compact"' });
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toEqual({ job: 'compact', ok: false, reason: 'unknown scheduled job "compact"' });
  });

  it('answers an unknown job through the deployed handler without any AWS configuration', async () => {
    const saved = { ...process.env };
    delete process.env.BUCKET_NAME;
    delete process.env.TABLE_NAME;
    const log = console.log;
    console.log = () => {};
    try {
      await expect(handler({ wharf: 'compact' })).resolves.toMatchObject({ ok: false, job: 'compact' });
    } finally {
      console.log = log;
      process.env = saved;
    }
  });

  it('fails the gc job loudly without the AWS configuration: one log line, then the error (test/adapters/gc-job.test.ts runs it)', async () => {
    const saved = { ...process.env };
    delete process.env.BUCKET_NAME;
    delete process.env.TABLE_NAME;
    const lines: string[] = [];
    try {
      await expect(handleScheduledJob({ wharf: 'gc' }, (l) => lines.push(l))).rejects.toThrow(/BUCKET_NAME and TABLE_NAME/);
      expect(lines).toHaveLength(1);
      expect(JSON.parse(lines[0]!)).toMatchObject({ job: 'gc', ok: false, error: expect.stringMatching(/BUCKET_NAME/) });
    } finally {
      process.env = saved;
    }
  });
});

describe('EMF request metrics', () => {
  const base = { method: 'GET', path: '/v2/a/manifests/x', operation: 'manifest', ms: 12, bytes: 0 };

  it('has the CloudWatch EMF shape: namespace Wharf, dimension Operation, five metrics', () => {
    const emf = requestMetrics({ ...base, status: 200 }, 1_700_000_000_000);
    expect(emf._aws).toEqual({
      Timestamp: 1_700_000_000_000,
      CloudWatchMetrics: [
        {
          Namespace: 'Wharf',
          Dimensions: [['Operation']],
          Metrics: [
            { Name: 'Requests', Unit: 'Count' },
            { Name: 'Errors', Unit: 'Count' },
            { Name: 'ClientErrors', Unit: 'Count' },
            { Name: 'Bytes', Unit: 'Bytes' },
            { Name: 'UploadSessions', Unit: 'Count' },
          ],
        },
      ],
    });
    // Every dimension and metric named in _aws is a top-level member, as EMF requires.
    const record = emf as unknown as Record<string, unknown>;
    for (const name of ['Operation', 'Requests', 'Errors', 'ClientErrors', 'Bytes', 'UploadSessions']) {
      expect(record[name], name).toBeDefined();
    }
    expect(emf).toMatchObject({ method: 'GET', path: '/v2/a/manifests/x', operation: 'manifest', Operation: 'manifest', status: 200, ms: 12 });
  });

  it.each([
    [200, 'manifest', 0, 0, 0],
    [404, 'manifest', 0, 1, 0],
    [416, 'upload-session', 0, 1, 0],
    [500, 'blob', 1, 0, 0],
    [503, 'blob', 1, 0, 0],
    [202, 'upload', 0, 0, 1],
    [201, 'upload', 0, 0, 0],
    [202, 'upload-session', 0, 0, 0],
  ])('status %i on %s: Errors %i, ClientErrors %i, UploadSessions %i', (status, operation, errors, clientErrors, sessions) => {
    const emf = requestMetrics({ ...base, operation, status });
    expect(emf).toMatchObject({ Requests: 1, Errors: errors, ClientErrors: clientErrors, UploadSessions: sessions });
  });

  it('measures request bodies in decoded bytes', () => {
    expect(bodyBytes(undefined, false)).toBe(0);
    expect(bodyBytes('', true)).toBe(0);
    expect(bodyBytes('héllo', false)).toBe(6);
    for (const n of [1, 2, 3, 4, 5, 1000, 4 * 1024 * 1024 + 1]) {
      expect(bodyBytes(Buffer.alloc(n, 7).toString('base64'), true), `${n} bytes`).toBe(n);
    }
  });
});
