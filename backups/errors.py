"""The one error type backups raise to callers (pipeline, API, commands, pages)."""


class BackupError(Exception):
    """A backup, verify, restore or prune step failed.

    The message is meant for a school IT admin: it says what happened, why, and
    what to do next. Callers show it as is.
    """
