/**
 * HTTP to one registry, as the `wharf` client speaks it: the Docker token protocol (a 401 challenge
 * is answered by fetching a token from its realm, with Basic credentials when there are any, and the
 * request is sent again), Basic auth where a registry asks for it, and retries with exponential
 * backoff for what may pass (network errors, 429, 5xx). Requests with a one-shot body are not
 * retried here: the copy engine retries the whole blob.
 */
import { basicAuthorization, parseChallenge, tokenOf, tokenUrl } from './challenge.js';
import { sendStream } from './stream-upload.js';
import type { Credentials } from './credentials.js';

export interface RegistryHttpOptions {
  /** `https://host` or `http://host` */
  baseUrl: string;
  credentials?: Credentials;
  /** An Authorization header to start with (the bridge passes its caller's through). */
  authorization?: string;
  /** Attempts for a retryable request (default 4). */
  attempts?: number;
  /** First backoff in ms, doubled each attempt (default 250). */
  backoffMs?: number;
}

export class RegistryHttpError extends Error {
  override name = 'RegistryHttpError';
  constructor(
    readonly status: number,
    readonly code: string | undefined,
    message: string,
  ) {
    super(message);
  }
}

/** A 401 on a request whose body could not be replayed, answered: try the whole thing again. */
export class AuthorizationRenewedError extends Error {
  override name = 'AuthorizationRenewedError';
}

type Body = Uint8Array | AsyncIterable<Uint8Array> | undefined;

export interface RegistryRequestInit {
  method: string;
  /** A path (`/v2/...`) or an absolute URL (an upload Location). */
  url: string;
  headers?: Record<string, string>;
  body?: Body;
  /** Statuses the caller handles itself (no error thrown). */
  accept?: number[];
}

const RETRYABLE = new Set([408, 429, 500, 502, 503, 504]);

export class RegistryHttp {
  private authorization: string | undefined;
  private readonly attempts: number;
  private readonly backoffMs: number;

  constructor(private readonly opts: RegistryHttpOptions) {
    this.authorization = opts.authorization;
    this.attempts = opts.attempts ?? 4;
    this.backoffMs = opts.backoffMs ?? 250;
  }

  get baseUrl(): string {
    return this.opts.baseUrl;
  }

  resolve(url: string): string {
    return new URL(url, this.opts.baseUrl).toString();
  }

  async request(init: RegistryRequestInit): Promise<Response> {
    const replayable = !(init.body && !(init.body instanceof Uint8Array));
    for (let attempt = 1; ; attempt++) {
      let response: Response;
      try {
        response = await this.send(init);
        if (response.status === 401 && replayable && (await this.authenticate(response))) response = await this.send(init);
      } catch (error) {
        // What the registry (or its token service) answered is final here, unless it may pass;
        // asking again with wrong credentials only counts failed logins toward a lockout.
        if (!replayable || attempt >= this.attempts || !isRetryable(error)) throw error;
        await this.pause(attempt);
        continue;
      }
      if (response.status === 401 && !replayable && (await this.authenticate(response))) {
        // A token that expired while a streamed body was on its way: the body cannot be sent
        // again from here, but the new token is in place for the caller's fresh attempt.
        throw new AuthorizationRenewedError(`${init.method} ${init.url.slice(0, 200)}: 401, the token had expired; renewed`);
      }
      if (RETRYABLE.has(response.status) && replayable && attempt < this.attempts) {
        await response.arrayBuffer().catch(() => undefined);
        await this.pause(attempt, response.headers.get('retry-after'));
        continue;
      }
      if (response.ok || response.status === 307 || init.accept?.includes(response.status)) return response;
      throw await errorOf(init, response);
    }
  }

  private async send(init: RegistryRequestInit): Promise<Response> {
    const headers: Record<string, string> = { ...init.headers };
    if (this.authorization) headers.authorization = this.authorization;
    const url = this.resolve(init.url);
    try {
      return await this.fetch(url, init, headers);
    } catch (error) {
      throw networkError(init.method, url, error);
    }
  }

  private fetch(url: string, init: RegistryRequestInit, headers: Record<string, string>): Promise<Response> {
    if (init.body && !(init.body instanceof Uint8Array)) return sendStream(url, init.method, headers, init.body);
    return fetch(url, {
      method: init.method,
      headers,
      body: init.body as BodyInit | undefined,
      // A streamed body (AsyncIterable) needs half duplex in Node's fetch.
      ...(init.body && !(init.body instanceof Uint8Array) ? { duplex: 'half' } : {}),
      redirect: 'follow',
    } as RequestInit);
  }

  /**
   * Answers a 401 challenge; false when there is nothing more to try. Requests in parallel that
   * meet the same challenge share one answer (one token request, one login attempt).
   */
  private authenticate(response: Response): Promise<boolean> {
    const header = response.headers.get('www-authenticate') ?? '';
    const key = `${this.authorization ?? ''}\n${header}`;
    let pending = this.authenticating.get(key);
    if (!pending) {
      pending = this.answer(response).finally(() => this.authenticating.delete(key));
      this.authenticating.set(key, pending);
      return pending;
    }
    // The first one's answer (a new authorization) is ours to use too.
    return response
      .arrayBuffer()
      .catch(() => undefined)
      .then(() => pending);
  }

  private readonly authenticating = new Map<string, Promise<boolean>>();

  private async answer(response: Response): Promise<boolean> {
    await response.arrayBuffer().catch(() => undefined);
    const challenge = parseChallenge(response.headers.get('www-authenticate'));
    const { credentials } = this.opts;
    const basic = credentials && basicAuthorization(credentials);
    if (!challenge) return false;
    if (challenge.scheme === 'basic') {
      if (!basic || this.authorization === basic) return false;
      this.authorization = basic;
      return true;
    }
    const url = tokenUrl(challenge);
    if (!url) return false;
    const tokenResponse = await fetch(url, { headers: basic ? { authorization: basic } : {} }).catch((error: unknown) => {
      throw networkError('GET', url.toString(), error);
    });
    if (!tokenResponse.ok) throw await errorOf({ method: 'GET', url: url.toString() }, tokenResponse);
    const token = tokenOf((await tokenResponse.json()) as { token?: string; access_token?: string });
    if (!token) throw new RegistryHttpError(tokenResponse.status, undefined, `no token from ${url.origin}${url.pathname}`);
    const bearer = `Bearer ${token}`;
    if (bearer === this.authorization) return false;
    this.authorization = bearer;
    return true;
  }

  private pause(attempt: number, retryAfter?: string | null): Promise<void> {
    const seconds = Number(retryAfter);
    const ms = Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds * 1000, 30_000) : this.backoffMs * 2 ** (attempt - 1);
    return new Promise((resolve) => setTimeout(resolve, ms));
  }
}

/** `fetch failed` says little: name the request and the cause (and the likely fix for TLS). */
function networkError(method: string, url: string, error: unknown): Error {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  const why = cause?.code ?? cause?.message?.split('\n')[0];
  const { origin, pathname } = new URL(url);
  const tls = url.startsWith('https:') && why && /SSL|TLS|EPROTO|wrong version/i.test(why)
    ? ` (a plain HTTP registry? then say so: --tls-verify=false, --src-tls-verify=false or --dest-tls-verify=false)`
    : '';
  return new Error(`${method} ${origin}${pathname.slice(0, 200)}: ${(error as Error).message}${why ? `: ${why}` : ''}${tls}`, { cause: error });
}

/** Network errors and the statuses that may pass (429, 5xx); not a refusal. */
export function isRetryable(error: unknown): boolean {
  return !(error instanceof RegistryHttpError) || RETRYABLE.has(error.status);
}

/** The registry refused the credentials or the access (401, 403): asking again changes nothing. */
export function isRefusal(error: unknown): boolean {
  return error instanceof RegistryHttpError && (error.status === 401 || error.status === 403);
}

const STATUS_CODES: Record<number, string> = { 401: 'UNAUTHORIZED', 403: 'DENIED', 404: 'NOT_FOUND', 429: 'TOOMANYREQUESTS' };

async function errorOf(init: Pick<RegistryRequestInit, 'method' | 'url'>, response: Response): Promise<RegistryHttpError> {
  const text = await response.text().catch(() => '');
  let code: string | undefined;
  let message = text.slice(0, 300);
  try {
    const parsed = JSON.parse(text) as { errors?: { code?: string; message?: string }[] };
    const first = parsed.errors?.[0];
    if (first) {
      code = first.code;
      message = `${first.code}: ${first.message ?? ''}`;
    }
  } catch {
    // not a spec error body
  }
  // A HEAD answer has no body: name the error from its status, as the spec's codes would.
  if (!code && STATUS_CODES[response.status]) {
    code = STATUS_CODES[response.status];
    message = message ? `${code}: ${message}` : code;
  }
  if (response.status === 401) message += ' (give credentials: --creds / --src-creds / --dest-creds USER:PASSWORD, or log in: wharf login, docker login)';
  const where = init.url.startsWith('http') ? new URL(init.url).pathname : init.url;
  return new RegistryHttpError(response.status, code, `${init.method} ${where.slice(0, 200)}: ${response.status} ${message}`.trim());
}
