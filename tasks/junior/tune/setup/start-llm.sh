#!/usr/bin/env bash
# 当前的推理服务启动脚本（上线时的初始配置）。
# The inference service's launcher as it went live (its first configuration).
exec taskset -c 0 llama-server \
  -m /opt/models/tiny-llama-f16.gguf --alias tiny-llama \
  --host 0.0.0.0 --port 8080 \
  --threads 1 --parallel 1 --ctx-size 512 \
  --metrics
