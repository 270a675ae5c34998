"""The docker role's view of WSL: the kit's own rule (devkit.wsl), never a copy in YAML."""

from devkit.wsl import host_file, wsl_conf_boot, wsl_version


class FilterModule:
    def filters(self):
        return {"wsl_version": wsl_version, "wsl_conf_boot": wsl_conf_boot, "host_file": host_file}
