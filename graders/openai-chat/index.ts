/**
 * The `openai-chat` probe kind: an OpenAI-compatible chat completion, judged on its shape, usage
 * and the reference model server's own answers.
 */
import { defineKind } from '../probe-kind.js';
import { OpenAIChatParamsSchema } from './params.js';
import { openaiChatProbe } from './openai-chat.js';

export const openaiChatKind = defineKind({
  kind: 'openai-chat',
  params: OpenAIChatParamsSchema,
  probe: openaiChatProbe,
  latencySensitive: true,
  needs: [],
});
