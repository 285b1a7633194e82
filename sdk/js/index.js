// Plugboard client: send named app events from the host product's backend
// (or any runtime with fetch) to a Plugboard server. No dependencies.
//
//   import { createClient, PlugboardError } from '@plugboard/client';
//   const pb = createClient({ baseUrl: 'https://plugboard.example.com', token });
//   const { flows, correlationIds } = await pb.sendAppEvent('contact-created', { email: 'ada@example.com' });

/**
 * An answer other than 2xx. The server answers with an RFC 9457 problem
 * document; its fields are copied here and the whole document is kept in
 * `problem`.
 */
export class PlugboardError extends Error {
  /**
   * @param {number} status HTTP status code
   * @param {object} problem the problem document (or one made from the answer)
   */
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.name = 'PlugboardError';
    /** HTTP status code, e.g. 401. */
    this.status = status;
    /** Problem type URI ("about:blank" for plain HTTP errors). */
    this.type = problem.type ?? 'about:blank';
    /** Short summary, e.g. "Unauthorized". */
    this.title = problem.title ?? '';
    /** What went wrong with this request. */
    this.detail = problem.detail ?? '';
    /** The request path the problem is about. */
    this.instance = problem.instance ?? '';
    /** The whole problem document. */
    this.problem = problem;
  }
}

/**
 * Creates a client.
 *
 * @param {object} options
 * @param {string} options.baseUrl the server's root URL, e.g. "https://plugboard.example.com"
 * @param {string} options.token an access token (a user's, or an admin's to send on behalf of users)
 * @param {typeof fetch} [options.fetch] the fetch to use (default: the global one)
 */
export function createClient({ baseUrl, token, fetch: fetchImpl = globalThis.fetch } = {}) {
  if (typeof baseUrl !== 'string' || baseUrl === '') {
    throw new TypeError('createClient: baseUrl must be the server URL');
  }
  if (typeof token !== 'string' || token === '') {
    throw new TypeError('createClient: token must be an access token');
  }
  if (typeof fetchImpl !== 'function') {
    throw new TypeError('createClient: no fetch available; pass options.fetch');
  }
  const root = baseUrl.replace(/\/+$/, '');

  return {
    /**
     * Sends a named app event. Every running flow of the user whose
     * core.OnAppEvent trigger has this name starts, with `data` as the
     * trigger output's data. Resolves once the server has stored the runs.
     *
     * @param {string} event the event name, e.g. "contact-created"
     * @param {*} [data] any JSON value; undefined sends no body (null data)
     * @param {{userId?: string}} [options] userId: send on behalf of this user (admin tokens only)
     * @returns {Promise<{flows: number, correlationIds: string[]}>}
     * @throws {PlugboardError} when the server answers other than 2xx
     */
    async sendAppEvent(event, data, { userId } = {}) {
      if (typeof event !== 'string' || event === '') {
        throw new TypeError('sendAppEvent: event must be a non-empty string');
      }
      let url = `${root}/api/v1/app-events/${encodeURIComponent(event)}`;
      if (userId !== undefined) {
        url += `?userId=${encodeURIComponent(userId)}`;
      }
      const res = await fetchImpl(url, {
        method: 'POST',
        headers: {
          Authorization: `Bearer ${token}`,
          'Content-Type': 'application/json',
          Accept: 'application/json, application/problem+json',
        },
        body: data === undefined ? undefined : JSON.stringify(data),
      });
      return answer(res);
    },
  };
}

// answer parses a JSON answer, or throws a PlugboardError for a non-2xx one.
async function answer(res) {
  const text = await res.text();
  let body;
  if (text !== '') {
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
  }
  if (res.ok) {
    if (body === undefined && text !== '') {
      throw new PlugboardError(res.status, {
        title: 'Unexpected answer',
        detail: `the server answered ${res.status} with a body that is not JSON`,
      });
    }
    return body;
  }
  const problem = body !== null && typeof body === 'object' && !Array.isArray(body)
    ? body
    : { type: 'about:blank', title: res.statusText || `HTTP ${res.status}`, status: res.status, detail: text.slice(0, 500) };
  throw new PlugboardError(res.status, problem);
}
