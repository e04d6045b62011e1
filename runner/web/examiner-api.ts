import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SandboxDriver } from '../sandbox/driver.js';
import { sendJson } from './respond.js';

/** Compare digests so neither the length nor the content of the token leaks through timing. */
export function tokenMatches(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/**
 * /api/examiner/*: for examiners' tools, authorised only by `Authorization: Bearer <server.examinerToken>`.
 * A candidate's session cookie counts for nothing here. With no token configured the API is off.
 */
export async function handleExaminer(
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  opts: { driver: SandboxDriver; examinerToken: string | undefined },
): Promise<void> {
  if (!opts.examinerToken) {
    sendJson(res, 503, { error: { code: 'EXAMINER_API_DISABLED', message: { zh: '未配置监考接口令牌', en: 'examiner API is off (no server.examinerToken)' } } });
    return;
  }
  const m = /^Bearer ([\x21-\x7e]+)$/.exec(req.headers.authorization ?? '');
  if (!m || !tokenMatches(m[1]!, opts.examinerToken)) {
    res.setHeader('www-authenticate', 'Bearer realm="deploylab-examiner"');
    sendJson(res, 401, { error: { code: 'EXAMINER_UNAUTHORIZED', message: { zh: '需要监考令牌', en: 'examiner token required' } } });
    return;
  }
  if (req.method === 'GET' && path === '/api/examiner/seats') {
    const seats = await opts.driver.list();
    sendJson(res, 200, {
      seats: seats.map((s) => ({ session: s.ref.session, seat: s.ref.seat, task: s.task, state: s.state, createdAt: s.createdAt, containers: s.containers })),
    });
    return;
  }
  sendJson(res, 404, { error: { code: 'NOT_FOUND', message: { zh: '未找到', en: 'not found' } } });
}
