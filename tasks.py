"""Invoke entry point: assembles the namespace from devkit/tasks/* and its config defaults."""

from devkit.settings.table import DEFAULTS
from devkit.tasks import db, doctor, fleet, images, redis, stack, testing, vscode
from devkit.tasks._cli import quiet_on_closed_pipe

ns = stack.ns
ns.add_task(testing.test)
ns.add_task(doctor.doctor)
ns.add_task(fleet.provision)
ns.add_task(fleet.verify)
ns.add_collection(images.ns)
ns.add_collection(db.ns)
ns.add_collection(redis.ns)
ns.add_collection(vscode.ns)
ns.configure({"devkit": DEFAULTS})
quiet_on_closed_pipe()
