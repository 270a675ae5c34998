#!/usr/bin/env bash
# Installed by devkit (`devkit vscode.install`, `devkit setup`). VS Code's "devkit: start services"
# task runs `devkit-services.sh start`: it prints `devkit: ready` once PostgreSQL and Redis both
# accept authenticated connections (quickly when they already run), so F5 never races the
# databases, then keeps running until they stop (`devkit-services.sh stop`), which keeps WSL up.
# It holds no path of one machine: the app is where this file is, and `devkit` is the command
# setup puts on the PATH (~/.local/bin/devkit), so it can be committed and shared.
set -euo pipefail
app_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
devkit="$(command -v devkit || true)"
if [ -z "$devkit" ] && [ -x "$HOME/.local/bin/devkit" ]; then devkit="$HOME/.local/bin/devkit"; fi
if [ -z "$devkit" ]; then
  echo "devkit: error: the devkit command is not installed for $(id -un) (not on PATH, no ~/.local/bin/devkit)"
  echo "devkit: fix: in the kit's checkout run scripts/devkit setup --app-dir $app_dir"
  exit 1
fi
export INVOKE_DEVKIT_APP_DIR="$app_dir" DEVKIT_MARK_ERRORS=1  # errors as `devkit: error: …` lines
case "${1:-start}" in
  start)
    echo "devkit: starting the databases of $app_dir"
    exec "$devkit" up --hold ;;
  stop) exec "$devkit" down ;;
  status) exec "$devkit" status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
