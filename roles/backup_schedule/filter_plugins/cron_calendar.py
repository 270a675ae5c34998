"""cron_to_oncalendar: five cron fields (BACKUP_CRON) as a systemd OnCalendar= value,
so one setting drives both the cron entry and the systemd timer."""

import re

_DAYS = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_FIELD = re.compile(r"^(\*|\d+(-\d+)?)(/\d+)?$")


def _part(part, first, weekday=False):
    if not _FIELD.match(part):
        raise ValueError(f"unsupported cron field part {part!r}")
    base, _, step = part.partition("/")
    if weekday:
        if step:
            raise ValueError(f"steps in the weekday field are not supported: {part!r}")
        if base == "*":
            return "*"
        start, _, end = base.partition("-")
        if int(start) > 7 or (end and int(end) > 7):
            raise ValueError(f"weekday out of range: {part!r}")
        return _DAYS[int(start)] + (f"..{_DAYS[int(end)]}" if end else "")
    if base == "*":
        base = str(first) if step else "*"
    start, _, end = base.partition("-")
    value = start.zfill(2) if start != "*" else "*"
    if end:
        value += f"..{end.zfill(2)}"
    return value + (f"/{step}" if step else "")


def _field(text, first, weekday=False):
    return ",".join(_part(part, first, weekday) for part in text.split(","))


def cron_to_oncalendar(cron):
    """'15 2 * * 1-5' -> 'Mon..Fri *-*-* 02:15:00'. Refuses what the two cannot both mean: cron
    runs when day-of-month OR weekday matches (both restricted), systemd needs both."""
    fields = str(cron).split()
    if len(fields) != 5:
        raise ValueError(f"{cron!r}: five cron fields needed (minute hour day month weekday)")
    minute, hour, day, month, weekday = fields
    days = _field(weekday, 0, weekday=True)
    when = f"*-{_field(month, 1)}-{_field(day, 1)} {_field(hour, 0)}:{_field(minute, 0)}:00"
    if day != "*" and weekday != "*":
        raise ValueError(f"{cron!r}: restrict the day of month or the weekday, not both")
    return when if days == "*" else f"{days} {when}"


class FilterModule:
    def filters(self):
        return {"cron_to_oncalendar": cron_to_oncalendar}
