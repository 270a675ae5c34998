"""The stack role's filters over the kit's own rules (devkit.dotenv, devkit.volumes,
devkit.passwords, devkit.services): the env file merged by the one .env parser, the volume-owner
rule, the password policy, what each service needs in the env file, and which containers run
otherwise than compose.yaml says (devkit.compose)."""

from devkit.compose import runs_otherwise
from devkit.dotenv import env_keys, merge_env
from devkit.envfile import COMPOSE_INPUTS
from devkit.passwords import password_problem
from devkit.services import PASSWORD_KEYS, SERVICES
from devkit.volumes import current_owner, volume_conflict


def stack_image_env(images):
    """The env file's image keys (DEVKIT_<IMAGE>_IMAGE) from the images role's `images_selected`
    (image name -> reference)."""
    return {s.image_key: images[s.image] for s in SERVICES.values()}


def stack_missing_inputs(stack_env):
    """The keys compose.yaml needs that `stack_env` lacks (images aside: the role adds them)."""
    return [key for key in COMPOSE_INPUTS if key not in stack_env]


def stack_password_keys(_=None):
    return list(PASSWORD_KEYS)


def stack_merge_env(text, values):
    """`text` (the current env file, or "") with the kit's keys set, every other line kept."""
    try:
        return merge_env(text or "", {str(k): str(v) for k, v in values.items()})
    except ValueError as exc:  # the message names the line, never a value
        raise ValueError(f"the env file cannot be read as Compose reads it: {exc}") from None


def stack_volume_conflict(volume_info, stack_env, current_text, container_info=None, moved_from=""):
    """ "" when the project's database volume may be used by this app, else the cause and fix.
    `volume_info`, `container_info`: community.docker's docker_volume_info and
    docker_container_info results (the stack's database volume and container); `moved_from`:
    the directory the app moved from, as setup proved it (stack_moved_from)."""
    owner = None
    if volume_info.get("exists"):
        container = (container_info or {}).get("container") or {}
        owner = current_owner(
            (volume_info.get("volume") or {}).get("Labels"),
            (container.get("Config") or {}).get("Labels"),
        )
    had_password = "PGPASSWORD" in env_keys(current_text or "")
    conflict = volume_conflict(
        stack_env["DEVKIT_PROJECT_NAME"],
        owner,
        stack_env.get("DEVKIT_APP_DIR", ""),
        had_password,
        moved_from or "",
    )
    return f"{conflict.cause}; fix: {conflict.hint}" if conflict else ""


def stack_runs_otherwise(inspected, services):
    """The services whose container runs otherwise than compose.yaml's SERVICES say
    (devkit.compose.runs_otherwise), from docker_container_info's results looped over the
    compose project's containers."""
    drifted = []
    for result in inspected or []:
        container = result.get("container") or {}
        service = (result.get("item") or {}).get("Service", "")
        if not container or service not in services:
            continue
        policy = container.get("HostConfig", {}).get("RestartPolicy", {}).get("Name", "")
        timeout = container.get("Config", {}).get("StopTimeout")
        if runs_otherwise(services[service], policy, timeout):
            drifted.append(service)
    return sorted(drifted)


class FilterModule:
    def filters(self):
        return {
            "merge_env": stack_merge_env,
            "volume_conflict": stack_volume_conflict,
            "password_problem": password_problem,
            "image_env": stack_image_env,
            "missing_inputs": stack_missing_inputs,
            "password_keys": stack_password_keys,
            "runs_otherwise": stack_runs_otherwise,
        }
