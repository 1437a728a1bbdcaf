#!/usr/bin/env bash
# Our whole stack as a peer of ../shared/bench/gwbench/run_peer.sh (LiteLLM's proxy side by
# side, same fake upstream, same load, same run). run_peer.sh starts this inside its network
# namespace and watches this script's process tree for CPU and memory: Redis, one worker and
# the web (gunicorn) are its children, so all of them are counted.
#
#   T=/work/shared/bench/gwbench
#   PEERS=orch PEER_orch_URL=http://127.0.0.1:15200/v1 PEER_orch_KEY=sk-orch-gwbench-admin \
#   PEER_orch_READY=http://127.0.0.1:15200/api/v1/orchestrator/health \
#   PEER_orch_START="$PWD/bench/gwbench_peer.sh" STREAM_RATES=50 bash $T/run_peer.sh
#
# The fake upstream ($UPSTREAM_URL, model fake-model) is declared in a MODELS_FILE as an
# OpenAI-compatible provider that streams, as a user would add their own server; requests
# name fake-model, so routing pins it (the catalog, budgets and accounting still run). The key
# is ADMIN_API_KEY, as LiteLLM is called with its master key.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PORT="${ORCH_PEER_PORT:-15200}"
REDIS_PORT="${ORCH_PEER_REDIS_PORT:-16379}"
RUN="$(mktemp -d /tmp/orch-gwbench-peer.XXXXXX)"

cat >"$RUN/models.yaml" <<YAML
providers:
  gwbench: {kind: openai, base_url: "${UPSTREAM_URL:?run me from run_peer.sh}", api_key_env: GWBENCH_UPSTREAM_KEY}
models:
  fake-model:
    provider: gwbench
    context_window: 128000
    max_output_tokens: 4096
    capabilities: [streaming]
    prices: {input: 0.15, output: 0.6}
YAML

export REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0" MODELS_FILE="$RUN/models.yaml" GWBENCH_UPSTREAM_KEY=sk-fake-upstream
export ADMIN_API_KEY="${PEER_orch_KEY:-sk-orch-gwbench-admin}" LOG_LEVEL=WARNING

trap 'kill $(jobs -p) 2>/dev/null; wait; rm -rf "$RUN"' EXIT
trap 'exit 143' TERM INT
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$RUN" >"$RUN/redis.log" &
until redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; do sleep 0.1; done
"$ROOT/.venv/bin/orchestrator" worker >"$RUN/worker.log" 2>&1 &
"$ROOT/.venv/bin/orchestrator" web --bind "127.0.0.1:$PORT" >"$RUN/web.log" 2>&1 &
wait
