"""The message an exception in a DataLoader worker was raised with.

torch re-raises a worker's exception in the main process as the same type with a new message, "Caught
<Type> in DataLoader worker process <n>.\nOriginal Traceback ...": the dataset's one line (which names the
file and the fix) comes only at the bottom of a traceback. The CLI prints this one line instead.
"""

import re

_WRAPPED = re.compile(r"^Caught \w+ in (DataLoader worker process \d+|pin memory thread)")


def user_message(err):
    """str(err), or for a worker's re-raised exception the message the worker raised."""
    text = str(err)
    if not _WRAPPED.match(text):
        return text
    # The traceback ends with "<module>.<Type>: <message>" (traceback.format_exception_only).
    head, sep, message = text.rpartition(f"{type(err).__name__}: ")
    return message.strip() if sep else text.splitlines()[0]
