#!/usr/bin/env bash
# 启动模型服务 / start the model service. Settings come from /opt/exam/service/llm.env.
set -euo pipefail
# shellcheck disable=SC1091
source /opt/exam/service/llm.env
echo "$(date '+%Y-%m-%d %H:%M:%S') run-llm: starting llama-server (model=${MODEL_PATH}, port=${PORT})"
exec llama-server --model "${MODEL_PATH}" --alias "${MODEL_ALIAS}" \
  --host 0.0.0.0 --port "${PORT}" --threads "${THREADS}" --ctx-size "${CTX_SIZE}" --metrics
