"""The one exception type for bad user input.

Library functions raise :class:`InputError` (a ``ValueError``) with a message that names the file, field or
option at fault and says how to fix it. The CLI prints the message as one line on stderr and exits with 2.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input from the user: a file, a field, an option or a model that cannot be used as given."""
