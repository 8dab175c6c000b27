/**
 * The bridge's own credentials (createBridge({ credentials }), `wharf bridge --creds`), for
 * requests that come without any: a 401 from the upstream is answered as the Docker token protocol
 * says (a token from the challenge's realm, fetched with Basic credentials; or Basic itself where
 * the upstream asks for it), and the authorization is kept per repository for the next requests.
 * The client then never sees a challenge, so it keeps sending none of its own.
 */
import { basicAuthorization, parseChallenge, tokenOf, tokenUrl } from '../client/registry/challenge.js';
import type { Credentials } from '../client/registry/credentials.js';

export class UpstreamAuth {
  private readonly byRepository = new Map<string, string>();
  private readonly pending = new Map<string, Promise<string | undefined>>();

  constructor(private readonly credentials: Credentials) {}

  /** What a request path is authorized by: its repository ('' for /v2/ itself and the catalog). */
  static keyOf(path: string): string {
    return /^\/v2\/(.+?)\/(?:manifests|blobs|tags|referrers|_wharf)\//.exec(path)?.[1] ?? '';
  }

  /** The authorization last obtained for this key, if any. */
  cached(key: string): string | undefined {
    return this.byRepository.get(key);
  }

  /** Answers a 401 challenge for this key; undefined when there is nothing to try. */
  answer(key: string, challengeHeader: string | null): Promise<string | undefined> {
    const id = `${key}\n${challengeHeader ?? ''}`;
    let pending = this.pending.get(id);
    if (!pending) {
      pending = this.fetchAuthorization(challengeHeader)
        .then((authorization) => {
          if (authorization) this.byRepository.set(key, authorization);
          return authorization;
        })
        .finally(() => this.pending.delete(id));
      this.pending.set(id, pending);
    }
    return pending;
  }

  private async fetchAuthorization(challengeHeader: string | null): Promise<string | undefined> {
    const challenge = parseChallenge(challengeHeader);
    const basic = basicAuthorization(this.credentials);
    if (!challenge) return undefined;
    if (challenge.scheme === 'basic') return basic;
    const url = tokenUrl(challenge);
    if (!url) return undefined;
    const response = await fetch(url, { headers: { authorization: basic } });
    if (!response.ok) {
      // Wrong credentials: the client gets the upstream's challenge, as it would without the bridge.
      await response.arrayBuffer().catch(() => undefined);
      return undefined;
    }
    const token = tokenOf((await response.json()) as { token?: string; access_token?: string });
    return token ? `Bearer ${token}` : undefined;
  }
}
