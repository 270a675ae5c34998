#!/usr/bin/env bash
# Installed by devkit (`devkit vscode.install`, `devkit setup`). VS Code's "devkit: start services"
# task runs `devkit-services.sh start`: it prints the ready line once PostgreSQL and Redis both
# accept authenticated connections (quickly when they already run), so F5 never races the
# databases, then keeps running until they stop (`devkit-services.sh stop`), which keeps WSL up.
set -euo pipefail
app_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
kit={{ vscode_kit_dir | quote }}
case "${1:-start}" in
  start)
    echo "devkit: starting the databases of $app_dir"
    exec env INVOKE_DEVKIT_APP_DIR="$app_dir" "$kit/scripts/devkit" up --hold ;;
  stop) exec env INVOKE_DEVKIT_APP_DIR="$app_dir" "$kit/scripts/devkit" down ;;
  status) exec env INVOKE_DEVKIT_APP_DIR="$app_dir" "$kit/scripts/devkit" status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
