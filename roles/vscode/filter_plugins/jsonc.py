"""jsonc_merge: the kit's entries into a VS Code JSON-with-comments file, keeping every other byte
(the logic lives in devkit.jsonc, shared with the tests)."""

from devkit.jsonc import merge


def jsonc_merge(text, key, template, field, name="file"):
    """`template`: the kit's whole file (its `key` array holds the kit's entries; its other
    members, such as "version", start a file that does not exist yet)."""
    base = {k: v for k, v in template.items() if k != key}
    return merge(text or "", key, list(template[key]), field, name, new_file=base)


class FilterModule:
    def filters(self):
        return {"jsonc_merge": jsonc_merge}
