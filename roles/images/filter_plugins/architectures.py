"""The images role's filters over devkit/architectures.py: which architecture a machine is in
Docker's names, the names of builds made for another one, the controller's image for each
server, and why a server must not be provisioned or get some images. The rule lives there, never a copy in YAML."""

from devkit.architectures import (
    arch_name,
    controller_candidates,
    controller_choice,
    docker_arch,
    image_problems,
    machine,
    machine_problems,
)


class FilterModule:
    def filters(self):
        return {
            "docker_arch": docker_arch,
            "arch_machine": machine,
            "arch_name": arch_name,
            "controller_candidates": controller_candidates,
            "controller_choice": controller_choice,
            "image_arch_problems": image_problems,
            "machine_arch_problems": machine_problems,
        }
