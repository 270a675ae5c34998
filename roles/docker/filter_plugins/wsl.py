"""The docker role's view of WSL: the kit's own rule (devkit.wsl), never a copy in YAML."""

from devkit.wsl import wsl_conf_boot, wsl_version


class FilterModule:
    def filters(self):
        return {"wsl_version": wsl_version, "wsl_conf_boot": wsl_conf_boot}
