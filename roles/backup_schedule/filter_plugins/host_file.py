"""Where the role looks at its host: the kit's own list of host files (devkit.wsl.HostFiles)."""

from devkit.wsl import host_file


class FilterModule:
    def filters(self):
        return {"host_file": host_file}
