import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SandboxDriver } from '../sandbox/driver.js';
import { sendThrottled, type ExaminerGate } from './examiner-auth.js';
import { sendJson } from './respond.js';

/**
 * /api/examiner/*: for examiners' tools, authorised only by `Authorization: Bearer <server.examinerToken>`.
 * A candidate's session cookie counts for nothing here. With no token configured the API is off.
 */
export async function handleExaminer(
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  opts: { driver: SandboxDriver; gate: ExaminerGate },
): Promise<void> {
  if (!opts.gate.token) {
    sendJson(res, 503, { error: { code: 'EXAMINER_API_DISABLED', message: { zh: '未配置监考接口令牌', en: 'examiner API is off (no server.examinerToken)' } } });
    return;
  }
  const verdict = opts.gate.bearer(req);
  if (verdict.kind === 'throttled') {
    sendThrottled(res, verdict.waitMs);
    return;
  }
  if (verdict.kind !== 'ok') {
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
