"""The one exception type for problems a user can cause and fix (bad path, bad file, bad setting).

The command line turns it into one sentence on stderr and exit status 2; anything else that goes
wrong is a bug in the kit and exits with status 1 and a traceback.
"""


class KitInputError(Exception):
    """Bad input: the message is one sentence that names the file or setting and the fix."""
