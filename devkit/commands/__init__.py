"""The use cases: what a task does, as one library function each that returns a result the task
prints (pipx's commands/). A use case that asks the user first is a `prepare` (checks, changes
nothing) and a `run`; the task asks in between."""
